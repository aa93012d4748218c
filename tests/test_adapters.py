"""Normalised actions for every kind of Gymnasium space, and the rendered-frame adapter."""

from __future__ import annotations

import json
from typing import ClassVar

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from reverie.errors import ReverieError
from reverie.sizes import Size
from reverie.worlds.actions import (
    MAX_COMBOS,
    UNBOUNDED_SCALE,
    ActionMapper,
    NormalizedActions,
    action_features,
    action_spec,
    decode_action,
    encode_action,
    null_action,
)
from reverie.worlds.adapters import RenderedFrames, fit_frame, generic_caption, world_title

# ---- action specs ---------------------------------------------------------------------------


def test_discrete_and_box_specs_are_json_and_named():
    spec = action_spec(spaces.Discrete(4))
    assert spec == {"type": "discrete", "n": 4, "names": ["a0", "a1", "a2", "a3"]}
    box = action_spec(spaces.Box(np.array([-1, 0, 0]), np.array([1, 1, 1]), dtype=np.float32))
    assert box["type"] == "box" and box["shape"] == [3]
    assert box["low"] == [-1.0, 0.0, 0.0] and box["high"] == [1.0, 1.0, 1.0]
    json.dumps(spec), json.dumps(box)
    assert action_spec(None) == {"type": "none"}


def test_multibinary_becomes_every_combination_when_small():
    mapper = ActionMapper(spaces.MultiBinary(3), names=["ATTACK", "MOVE_LEFT", "MOVE_RIGHT"])
    spec = mapper.spec
    assert spec["type"] == "discrete" and spec["n"] == 8
    assert spec["names"][0] == "noop" and "attack" in spec["names"]
    natives = [tuple(mapper.to_native(i)) for i in range(8)]
    assert len(set(natives)) == 8 and natives[0] == (0, 0, 0)
    assert tuple(mapper.to_native(spec["names"].index("move_left"))) == (0, 1, 0)


def test_large_button_sets_keep_noop_singles_and_useful_pairs():
    buttons = ["MOVE_FORWARD", "MOVE_BACKWARD", "TURN_LEFT", "TURN_RIGHT", "ATTACK"] + [
        f"SELECT_{i}" for i in range(9)
    ]
    mapper = ActionMapper(spaces.MultiBinary(len(buttons)), names=buttons)
    names = mapper.spec["names"]
    assert len(names) <= MAX_COMBOS
    assert names[0] == "noop" and all(b.lower() in names for b in buttons)
    assert "move_forward+turn_left" in names and "move_forward+attack" in names
    a = mapper.to_native(names.index("move_forward+turn_left"))
    assert a.sum() == 2 and a[0] == 1 and a[2] == 1


def test_multidiscrete_product_or_one_at_a_time():
    small = ActionMapper(spaces.MultiDiscrete([3, 4]))
    assert small.spec["n"] == 12
    assert {tuple(small.to_native(i)) for i in range(12)} == {(i, j) for i in range(3) for j in range(4)}
    big = ActionMapper(spaces.MultiDiscrete([5, 5, 5]))
    assert big.spec["n"] == 1 + 3 * 4  # noop, then one component away from zero at a time
    assert all(np.count_nonzero(big.to_native(i)) <= 1 for i in range(big.spec["n"]))


def test_dict_with_continuous_part_flattens_to_box():
    inf = np.finfo(np.float32).max
    space = spaces.Dict(
        {"binary": spaces.MultiBinary(2), "continuous": spaces.Box(-inf, inf, (2,), np.float32)}
    )
    mapper = ActionMapper(
        space, names={"binary": ["ATTACK", "USE"], "continuous": ["TURN_DELTA", "LOOK_DELTA"]}
    )
    spec = mapper.spec
    assert spec["type"] == "box" and spec["shape"] == [4]
    assert spec["names"] == ["attack", "use", "turn_delta", "look_delta"]
    assert spec["low"] == [-1.0] * 4 and spec["high"] == [1.0] * 4  # unbounded axes scaled
    native = mapper.to_native(np.array([0.7, -0.2, 0.5, -1.0], np.float32))
    assert list(native["binary"]) == [1, 0]
    np.testing.assert_allclose(native["continuous"], [0.5 * UNBOUNDED_SCALE, -UNBOUNDED_SCALE])
    assert space.contains(native)


def test_dict_and_tuple_of_discrete_parts_stay_discrete():
    space = spaces.Dict({"move": spaces.Discrete(3), "fire": spaces.MultiBinary(1)})
    mapper = ActionMapper(space)
    assert mapper.spec["type"] == "discrete" and mapper.spec["n"] == 6
    assert mapper.spec["names"][0] == "noop"
    assert all(space.contains(mapper.to_native(i)) for i in range(6))
    tup = spaces.Tuple((spaces.Discrete(2), spaces.Box(-1, 1, (1,), np.float32)))
    tmap = ActionMapper(tup)
    assert tmap.spec["type"] == "box" and tmap.spec["shape"] == [2]
    assert tup.contains(tmap.to_native(np.array([1.0, 0.5], np.float32)))


def test_unsupported_space_is_a_clear_error():
    with pytest.raises(ReverieError, match="accepted Discrete, Box"):
        action_spec(spaces.Text(5))


def test_null_encode_decode_features():
    d = {"type": "discrete", "n": 3, "names": ["noop", "left", "right"]}
    b = {
        "type": "box",
        "shape": [3],
        "low": [-1.0, 0.0, 0.0],
        "high": [1.0, 1.0, 1.0],
        "names": ["s", "t", "b"],
    }
    assert null_action(d) == 0
    np.testing.assert_array_equal(null_action(b), [0, 0, 0])
    e = encode_action(d, 2)
    assert e.dtype == np.int64 and e.shape == () and decode_action(d, e) == 2
    with pytest.raises(ReverieError, match=r"outside 0\.\.2"):
        encode_action(d, 3)
    v = encode_action(b, [2.0, 0.5, -1.0])  # clipped into the box
    np.testing.assert_allclose(v, [1.0, 0.5, 0.0])
    np.testing.assert_allclose(decode_action(b, v), v)
    np.testing.assert_array_equal(action_features(d, 1), [0, 1, 0])
    np.testing.assert_allclose(action_features(b, [0.0, 0.5, 1.0]), [0.0, 0.0, 1.0])


class Buttons(gymnasium.Env):
    """Records the native actions it receives."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"]}

    def __init__(self) -> None:
        self.action_space = spaces.MultiBinary(2)
        self.observation_space = spaces.Box(-1, 1, (4,), np.float32)
        self.render_mode = "rgb_array"
        self.received: list = []
        self.t = 0

    def get_action_meanings(self) -> list[str]:
        return ["FIRE", "UP"]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(4, np.float32), {}

    def step(self, action):
        self.received.append(np.asarray(action).copy())
        self.t += 1
        return np.zeros(4, np.float32), 1.0, False, False, {}

    def render(self):
        frame = np.zeros((80, 240, 3), np.uint8)  # 3:1 frame: red, green, blue thirds
        frame[:, :80, 0] = 255
        frame[:, 80:160, 1] = 255
        frame[:, 160:, 2] = 255
        frame[0, 0] = self.t  # changes per step
        return frame


def test_normalized_actions_wrapper_names_and_native_actions():
    env = NormalizedActions(Buttons())
    spec = action_spec(env)
    assert spec["names"] == ["noop", "fire", "up", "fire+up"]
    env.reset(seed=0)
    env.step(spec["names"].index("up"))
    np.testing.assert_array_equal(env.unwrapped.received[-1], [0, 1])


# ---- frames and captions --------------------------------------------------------------------


def test_fit_frame_preserves_aspect_and_centre_crops():
    frame = Buttons().render()
    out = fit_frame(frame, Size(32, 32))
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    # Height fits; the 3:1 frame is cropped to its centre third (green), not squashed.
    assert out[4:-4, 4:-4, 1].min() > 240 and out[4:-4, 4:-4, 0].max() < 15
    tall = fit_frame(np.full((200, 50, 3), 77, np.uint8), Size(64, 48))
    assert tall.shape == (48, 64, 3) and np.all(tall == 77)  # constant stays constant


def test_fit_frame_pad_and_stretch():
    frame = Buttons().render()  # 3:1, red | green | blue
    padded = fit_frame(frame, Size(30, 30), "pad")
    assert padded.shape == (30, 30, 3)
    assert padded[:8].max() == 0 and padded[-8:].max() == 0  # letterbox bars above and below
    assert padded[15, 2, 0] > 200 and padded[15, 15, 1] > 200 and padded[15, 27, 2] > 200
    stretched = fit_frame(frame, Size(30, 30), "stretch")
    assert stretched[:, 2, 0].min() > 200 and stretched[:, 27, 2].min() > 200  # all three thirds kept
    with pytest.raises(ReverieError, match="accepted crop, pad, stretch"):
        fit_frame(frame, Size(30, 30), "zoom")


@pytest.mark.parametrize(
    "frame",
    [
        np.full((30, 40), 128, np.uint8),
        np.full((30, 40, 4), 128, np.uint8),
        np.full((30, 40, 3), 128 / 255, np.float32),
    ],
)
def test_fit_frame_accepts_gray_rgba_and_float(frame):
    out = fit_frame(frame, Size(16, 12))
    assert out.shape == (12, 16, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - 128).max() <= 1


def test_world_titles_and_captions():
    assert world_title("ALE/Breakout-v5") == ("atari", "Breakout")
    assert world_title("VizdoomMyWayHome-MultiBinary-v1") == ("doom", "my way home")
    assert world_title("MiniWorld-FourRooms-v0") == ("miniworld", "four rooms")
    assert world_title("CarRacing-v3") == ("gym", "car racing")
    captions = {generic_caption("ALE/Breakout-v5", v) for v in range(8)}
    assert len(captions) > 1 and all("Breakout" in c for c in captions)


def test_rendered_frames_observation_render_and_caption():
    env = RenderedFrames(Buttons(), Size(48, 32), "ALE/Pong-v5")
    assert env.observation_space.shape == (32, 48, 3)
    obs, info = env.reset(seed=3)
    assert obs.shape == (32, 48, 3) and obs.dtype == np.uint8
    assert "Pong" in info["caption"] and info["scene"]["family"] == "atari"
    obs2, reward, _, _, info2 = env.step(np.array([1, 0]))
    assert info2["caption"] == info["caption"]  # stable inside an episode
    assert np.array_equal(env.render(), obs2) and isinstance(reward, float)
    _, again = RenderedFrames(Buttons(), Size(48, 32), "ALE/Pong-v5").reset(seed=3)
    assert again["caption"] == info["caption"]  # deterministic per seed
    seen = {
        RenderedFrames(Buttons(), Size(48, 32), "ALE/Pong-v5").reset(seed=s)[1]["caption"] for s in range(12)
    }
    assert len(seen) > 1  # phrasing varies across episodes


def test_rendered_frames_needs_rgb_array():
    env = Buttons()
    env.render_mode = "human"
    with pytest.raises(ReverieError, match="rgb_array"):
        RenderedFrames(env, Size(32, 32), "Buttons-v0")
