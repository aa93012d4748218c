"""make_world: built-ins, any Gymnasium id as frames, optional env families, clear errors."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from reverie.errors import ReverieError
from reverie.worlds import BUILTIN_WORLDS
from reverie.worlds.actions import action_spec
from reverie.worlds.explore import make_policy
from reverie.worlds.make import list_worlds, make_world

CONTRACT_NAMES = {
    "reverie/Dungeon-v0": (
        [
            *("noop", "forward", "back", "turn_left", "turn_right"),
            *("strafe_left", "strafe_right", "forward_left", "forward_right"),
        ],
        ["move", "strafe", "turn"],
    ),
    "reverie/Drive-v0": (
        ["noop", "accelerate", "brake", "left", "right", "accelerate_left", "accelerate_right"],
        ["steer", "throttle", "brake"],
    ),
}


def _rollout(env, steps: int, seed: int) -> tuple[list[np.ndarray], list[dict]]:
    policy = make_policy("explore", env, seed)
    obs, info = env.reset(seed=seed)
    frames, infos = [obs], [info]
    for _ in range(steps):
        obs, _, term, trunc, info = env.step(policy(obs, info))
        frames.append(obs)
        infos.append(info)
        if term or trunc:
            break
    return frames, infos


@pytest.mark.parametrize("world_id", list(BUILTIN_WORLDS))
@pytest.mark.parametrize("continuous", [False, True])
def test_builtin_worlds(world_id, continuous):
    env = make_world(world_id, "64x48", continuous=continuous, seed=0)
    spec = action_spec(env)
    names = CONTRACT_NAMES[world_id][int(continuous)]
    assert spec["type"] == ("box" if continuous else "discrete") and spec["names"] == names
    frames, infos = _rollout(env, 20, seed=1)
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)
    assert all(isinstance(i["caption"], str) and i["caption"] and "blocked" in i for i in infos)
    again, _ = _rollout(make_world(world_id, "64x48", continuous=continuous, seed=0), 20, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(frames, again))


def test_cartpole_observation_is_the_resized_frame():
    pytest.importorskip("pygame")  # gymnasium draws classic-control frames with pygame
    env = make_world("CartPole-v1", "64x64", seed=0)
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert obs.std() > 5  # a picture (cart, pole, track), not a 4-number state
    assert "cart pole" in info["caption"]
    assert action_spec(env) == {"type": "discrete", "n": 2, "names": ["push_left", "push_right"]}
    obs2, reward, _, _, _ = env.step(1)
    assert obs2.shape == (64, 64, 3) and reward == 1.0
    assert np.array_equal(env.render(), obs2)
    with pytest.raises(ReverieError, match="only discrete"):
        make_world("CartPole-v1", "64x64", continuous=True)


def test_unknown_world_lists_builtins_and_close_matches():
    with pytest.raises(ReverieError) as e:
        make_world("CartPol-v1", "64x64")
    msg = str(e.value)
    assert "CartPole-v1" in msg  # close match
    assert all(w in msg for w in BUILTIN_WORLDS) and "Gymnasium id" in msg


def test_bad_size():
    with pytest.raises(ReverieError, match="WIDTHxHEIGHT"):
        make_world("CartPole-v1", "64by64")
    with pytest.raises(ReverieError, match="outside"):
        make_world("CartPole-v1", "4x4")


@pytest.mark.parametrize(
    "world_id,module,extra",
    [
        ("ALE/Breakout-v5", "ale_py", "atari"),
        ("VizdoomBasic-v1", "vizdoom.gymnasium_wrapper", "vizdoom"),
        ("MiniWorld-Hallway-v0", "miniworld", "miniworld"),
        ("CarRacing-v3", "Box2D", "box2d"),
    ],
)
def test_missing_family_package_names_the_extra(monkeypatch, world_id, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail as if not installed
    with pytest.raises(ReverieError, match=rf'pip install "reverie\[{extra}\]"'):
        make_world(world_id, "64x64")


def test_missing_pygame_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "pygame", None)
    with pytest.raises(ReverieError, match="pygame-ce"):
        make_world("CartPole-v1", "64x64")


def test_list_worlds():
    worlds = {w.id: w for w in list_worlds()}
    assert set(BUILTIN_WORLDS) <= set(worlds)
    assert {"ALE/Breakout-v5", "CarRacing-v3", "VizdoomBasic-v1", "MiniWorld-Hallway-v0"} <= set(worlds)
    assert worlds["ALE/Breakout-v5"].extra == "atari"
    assert worlds["ALE/Breakout-v5"].installed == (importlib.util.find_spec("ale_py") is not None)


# ---- optional families (each skipped when its package is not installed) ------------------------


def test_atari():
    pytest.importorskip("ale_py")
    env = make_world("ALE/Breakout-v5", "64x64", seed=0)
    assert action_spec(env)["names"] == ["noop", "fire", "right", "left"]
    frames, infos = _rollout(env, 10, seed=0)
    assert frames[-1].shape == (64, 64, 3) and "Breakout" in infos[0]["caption"]

    # Stretched, not centre-cropped: the red paddle near the bottom edge stays in the picture.
    def paddle(frame: np.ndarray) -> int:
        bottom = frame[-10:].astype(int)
        return int(((bottom[..., 0] > 150) & (bottom[..., 1] < 110)).sum())

    cropped = make_world("ALE/Breakout-v5", "64x64", fit="crop").reset(seed=0)[0]
    assert paddle(frames[0]) > 0 and paddle(cropped) == 0
    env.close()


def test_box2d_car_racing():
    pytest.importorskip("Box2D")
    pytest.importorskip("pygame")
    env = make_world("CarRacing-v3", "64x64", continuous=True, seed=0)
    spec = action_spec(env)
    assert spec["names"] == ["steer", "gas", "brake"] and spec["low"] == [-1.0, 0.0, 0.0]
    frames, _ = _rollout(env, 10, seed=0)
    assert frames[-1].shape == (64, 64, 3)
    assert action_spec(make_world("CarRacing-v3", "64x64"))["n"] == 5


def test_vizdoom_discrete_multibinary_and_dict():
    pytest.importorskip("vizdoom")
    basic = make_world("VizdoomBasic-v1", "64x48", seed=0)
    assert action_spec(basic)["names"] == ["noop", "attack", "move_right", "move_left"]
    frames, _ = _rollout(basic, 10, seed=0)
    assert frames[-1].shape == (48, 64, 3)
    multi = action_spec(make_world("VizdoomDeadlyCorridor-MultiBinary-v1", "64x48"))  # 7 buttons
    assert multi["type"] == "discrete" and multi["names"][0] == "noop" and multi["n"] < 2**7
    assert {"attack", "turn_left", "move_forward", "move_forward+turn_left"} <= set(multi["names"])
    death = make_world("VizdoomDeathmatch-v1", "64x48", seed=0)  # Dict(binary, continuous)
    spec = action_spec(death)
    assert spec["type"] == "box" and "turn_left_right_delta" in spec["names"]
    frames, _ = _rollout(death, 5, seed=0)
    assert frames[-1].shape == (48, 64, 3)


def test_miniworld():
    pytest.importorskip("miniworld")
    env = make_world("MiniWorld-Hallway-v0", "64x64", seed=0)
    assert action_spec(env)["names"] == ["turn_left", "turn_right", "move_forward"]
    frames, infos = _rollout(env, 10, seed=0)
    assert frames[-1].shape == (64, 64, 3) and "hallway" in infos[0]["caption"]
