"""Exploration policies: determinism, human-like run statistics, reacting to walls, replay."""

from __future__ import annotations

import math
from typing import ClassVar

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from reverie.errors import ReverieError
from reverie.worlds.action_spec import ActionSpec
from reverie.worlds.actions import action_spec
from reverie.worlds.explore import (
    TEMPERAMENTS,
    ExplorePolicy,
    RandomPolicy,
    ReplayPolicy,
    make_policy,
    run_lengths,
)
from reverie.worlds.explore_roles import Roles
from reverie.worlds.make import make_world

DUNGEON_NAMES = [
    "noop", "forward", "back", "turn_left", "turn_right",
    "strafe_left", "strafe_right", "forward_left", "forward_right",
]  # fmt: skip
DRIVE_NAMES = ["noop", "accelerate", "brake", "left", "right", "accelerate_left", "accelerate_right"]
TURNS = {"turn_left", "turn_right", "forward_left", "forward_right", "back"}


class FakeRoom(gymnasium.Env):
    """A square room following the built-in world contract: walls stop you and set info["blocked"].

    report_blocked=False hides the flag (like third-party games); the frame then stops changing.
    """

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"]}

    def __init__(self, continuous: bool = False, report_blocked: bool = True, side: float = 20.0) -> None:
        self.continuous, self.report_blocked, self.side = continuous, report_blocked, side
        if continuous:
            self.action_space = spaces.Box(-1, 1, (3,), np.float32)
            self.action_names = ["move", "strafe", "turn"]
        else:
            self.action_space = spaces.Discrete(len(DUNGEON_NAMES))
            self.action_names = DUNGEON_NAMES
        self.observation_space = spaces.Box(0, 255, (16, 16, 3), np.uint8)
        self.render_mode = "rgb_array"

    def _frame(self) -> np.ndarray:
        frame = np.zeros((16, 16, 3), np.uint8)
        frame[..., 0] = int(self.x / self.side * 255)
        frame[..., 1] = int(self.y / self.side * 255)
        frame[..., 2] = int((self.heading % (2 * math.pi)) / (2 * math.pi) * 255)
        return frame

    def _info(self, blocked: bool) -> dict:
        info = {"pose": (self.x, self.y, self.heading), "caption": "a bare room", "scene": {"room": 0}}
        if self.report_blocked:
            info["blocked"] = blocked
        return info

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.y, self.heading = self.side / 2, self.side / 2, float(self.np_random.uniform(0, 6.28))
        return self._frame(), self._info(False)

    def step(self, action):
        if self.continuous:
            move, strafe, turn = (float(v) for v in np.asarray(action))
        else:
            name = DUNGEON_NAMES[int(action)]
            move = 1.0 if "forward" in name else -1.0 if name == "back" else 0.0
            strafe = -1.0 if name == "strafe_left" else 1.0 if name == "strafe_right" else 0.0
            turn = -1.0 if name.endswith("left") and "strafe" not in name else 0.0
            turn = 1.0 if name.endswith("right") and "strafe" not in name else turn
        self.heading += 0.25 * turn
        dx = 0.3 * (move * math.cos(self.heading) - strafe * math.sin(self.heading))
        dy = 0.3 * (move * math.sin(self.heading) + strafe * math.cos(self.heading))
        nx, ny = self.x + dx, self.y + dy
        blocked = not (0 <= nx <= self.side and 0 <= ny <= self.side) and (dx or dy)
        if not blocked:
            self.x, self.y = nx, ny
        return self._frame(), 0.0, False, False, self._info(bool(blocked))

    def render(self):
        return self._frame()


def play(policy, env, steps: int, seed: int = 0) -> tuple[list, list[dict]]:
    obs, info = env.reset(seed=seed)
    policy.reset(seed)
    actions, infos = [], [info]
    for _ in range(steps):
        a = policy(obs, info)
        obs, _, _, _, info = env.step(a)
        actions.append(a)
        infos.append(info)
    return actions, infos


def test_deterministic_per_seed_and_different_across_seeds():
    env = FakeRoom()
    a1, _ = play(make_policy("explore", env, seed=3), env, 300, seed=3)
    a2, _ = play(make_policy("explore", env, seed=3), env, 300, seed=3)
    a3, _ = play(make_policy("explore", env, seed=4), env, 300, seed=4)
    assert a1 == a2
    assert a1 != a3


def test_runs_are_long_and_heavy_tailed_unlike_uniform_random():
    env = FakeRoom()
    means, maxima, medians = [], [], []
    for seed in range(6):
        actions, _ = play(make_policy("explore", env, seed), env, 800, seed=seed)
        runs = run_lengths(actions)
        means.append(np.mean(runs))
        maxima.append(max(runs))
        medians.append(np.median(runs))
    rand, _ = play(make_policy("random", env, 0), env, 2000)
    rand_mean = np.mean(run_lengths(rand))
    assert rand_mean < 1.5  # 9 actions uniform: expected 9/8
    assert min(means) > 3 and np.mean(means) > 3 * rand_mean
    # A heavy tail: some runs are many times the typical one.
    assert np.mean(maxima) > 4 * np.mean(medians)


def test_forward_dominates_with_named_actions():
    env = FakeRoom()
    actions, _ = play(make_policy("explore", env, 1), env, 2000, seed=1)
    counts = np.bincount(actions, minlength=9)
    assert counts[DUNGEON_NAMES.index("forward")] == counts.max()


@pytest.mark.parametrize("report_blocked", [True, False])
def test_turns_away_after_blocked(report_blocked):
    """Walls are reported (built-ins) or only visible as a frame that stops changing (third-party)."""
    env = FakeRoom(report_blocked=report_blocked, side=3.0)
    blocked = reacted = 0
    for seed in range(4):
        policy = ExplorePolicy(action_spec(env), seed)
        obs, info = env.reset(seed=seed)
        for _ in range(600):
            before = policy.describe()["events"].get("blocked", 0)
            a = policy(obs, info)
            if policy.describe()["events"].get("blocked", 0) > before:
                blocked += 1
                reacted += DUNGEON_NAMES[int(a)] in TURNS  # turns or steps back, does not push on
            obs, _, _, _, info = env.step(a)
    assert blocked >= 4
    assert reacted >= 0.9 * blocked


def test_turns_round_to_revisit_places():
    env = FakeRoom()
    revisits = long_turns = 0
    for seed in range(6):
        policy = ExplorePolicy(action_spec(env), seed, temperament="cautious")
        actions, _ = play(policy, env, 800, seed=seed)
        revisits += policy.describe()["events"].get("revisit", 0)
        # Only turning round holds a standing turn this long (other turns are capped shorter).
        runs, i = [], 0
        for n in run_lengths(actions):
            runs.append((DUNGEON_NAMES[actions[i]], n))
            i += n
        long_turns += sum(name.startswith("turn") and n >= 18 for name, n in runs)
    assert revisits > 0 and long_turns > 0


def test_temperaments_differ_across_seeds():
    spec = {"type": "discrete", "n": 9, "names": DUNGEON_NAMES}
    found = {ExplorePolicy(spec, seed).describe()["temperament"] for seed in range(30)}
    assert found == set(TEMPERAMENTS)
    env = FakeRoom()
    stats = {}
    for seed in range(30):
        policy = ExplorePolicy(action_spec(env), seed)
        play(policy, env, 600, seed=seed)
        d = policy.describe()
        stats.setdefault(d["temperament"], []).append(d)
    pauses = {k: np.mean([s["action_counts"].get(0, 0) for s in v]) for k, v in stats.items()}
    assert pauses["cautious"] > 2 * pauses["explorer"]  # cautious players stop and look more


def test_continuous_is_smooth_and_in_bounds():
    env = FakeRoom(continuous=True)
    explore, _ = play(make_policy("explore", env, 2), env, 1000, seed=2)
    rand, _ = play(make_policy("random", env, 2), env, 1000, seed=2)
    ex, rx = np.stack(explore), np.stack(rand)
    assert ex.shape == (1000, 3) and ex.dtype == np.float32
    assert ex.min() >= -1 and ex.max() <= 1
    assert np.abs(np.diff(ex, axis=0)).mean() < 0.3 * np.abs(np.diff(rx, axis=0)).mean()
    assert ex[:, 0].mean() > 0.2  # mostly moving forward
    assert make_policy("explore", env, 2).describe()["steps"] == 0
    policy = make_policy("explore", env, 2)
    play(policy, env, 1000, seed=2)
    assert policy.describe()["mean_run"] > 3  # targets are held for a while


def test_pedals_rest_at_zero():
    spec = {"type": "box", "shape": [3], "low": [-1.0, 0.0, 0.0], "high": [1.0, 1.0, 1.0]}
    spec["names"] = ["steer", "throttle", "brake"]
    policy = ExplorePolicy(spec, 0, temperament="jittery")  # the noisiest hands
    acts = np.stack([policy(None, {"lane_offset": 0.0}) for _ in range(2000)])
    assert (acts[:, 2] == 0).mean() > 0.6  # the brake is mostly fully released
    assert acts[:, 1].mean() > 3 * acts[:, 2].mean()  # and used far less than the throttle


def test_lane_keeping_steers_back_towards_the_centre():
    spec = {"type": "discrete", "n": len(DRIVE_NAMES), "names": DRIVE_NAMES}
    policy = ExplorePolicy(spec, 0)
    acts = [DRIVE_NAMES[policy(None, {"lane_offset": 1.0})] for _ in range(400)]
    left = sum(a.endswith("left") for a in acts)
    right = sum(a.endswith("right") for a in acts)
    assert left > 3 * right
    assert sum(a.startswith("accelerate") for a in acts) > len(acts) / 2


@pytest.mark.parametrize(
    "space",
    [
        spaces.Discrete(5),
        spaces.Box(-2, 3, (4,), np.float32),
        spaces.MultiBinary(3),
        spaces.MultiDiscrete([3, 4]),
    ],
)
def test_generic_specs(space):
    spec = action_spec(space)
    actions = ActionSpec.from_dict(spec)
    policy = make_policy("explore", spec, seed=0)
    acts = [policy(None, {}) for _ in range(300)]
    if actions.is_discrete:
        assert all(0 <= a < actions.n for a in acts)
        assert np.mean(run_lengths(acts)) > 3
    else:
        arr = np.stack(acts)
        assert (arr >= np.asarray(actions.low)).all() and (arr <= np.asarray(actions.high)).all()


def test_roles_read_from_names():
    box = {"type": "box", "shape": [5], "low": [-1.0] * 5, "high": [1.0] * 5}
    box["names"] = ["attack", "move_left", "move_forward", "turn_left", "turn_left_right_delta"]
    assert Roles.from_spec(box).axes == {"move": 2, "turn": 4}  # one-way buttons are not sticks
    drive = Roles.from_spec({"type": "discrete", "n": 7, "names": DRIVE_NAMES})
    assert list(drive.fwd) == [0, 1, -1, 0, 0, 1, 1] and list(drive.lat) == [0, 0, 0, -1, 1, -1, 1]
    atari = Roles.from_spec({"type": "discrete", "n": 4, "names": ["noop", "upright", "downfire", "left"]})
    assert list(atari.fwd) == [0, 1, -1, 0] and list(atari.lat) == [0, 1, 0, -1] and atari.noop[0]
    assert not Roles.from_spec({"type": "discrete", "n": 3, "names": ["a0", "a1", "a2"]}).known


def test_replay_policy_replays_exactly():
    recorded = [3, 1, 1, 4, 0, 8]
    policy = ReplayPolicy(recorded)
    assert [policy(None, {}) for _ in recorded] == recorded
    with pytest.raises(IndexError):
        policy(None, {})
    policy.reset(7)
    assert policy(None, {}) == 3
    boxes = [np.array([0.1, -0.2, 0.3], np.float32), np.array([1.0, 0.0, -1.0], np.float32)]
    replay = ReplayPolicy(boxes)
    assert all(np.array_equal(replay(None, {}), b) for b in boxes)


def test_random_policy_is_uniform_and_seeded():
    spec = {"type": "discrete", "n": 4, "names": ["noop", "a", "b", "c"]}
    a = [RandomPolicy(spec, 5)(None, {}) for _ in range(1)]
    p1, p2 = RandomPolicy(spec, 5), RandomPolicy(spec, 5)
    s1, s2 = [p1(None, {}) for _ in range(400)], [p2(None, {}) for _ in range(400)]
    assert s1 == s2 and a[0] == s1[0]
    assert np.bincount(s1, minlength=4).min() > 60


def test_unknown_policy_name():
    with pytest.raises(ReverieError, match="explore, random"):
        make_policy("wander", {"type": "discrete", "n": 3, "names": ["noop", "a", "b"]})
    with pytest.raises(ReverieError):
        ExplorePolicy({"type": "none"})


# ---- on the built-in worlds ---------------------------------------------------------------------


def _builtin(world_id: str, **kwargs):
    return make_world(world_id, "32x32", **kwargs)


@pytest.mark.parametrize("continuous", [False, True])
def test_drive_explorer_keeps_to_the_road(continuous):
    offroad, speed = [], []
    for seed in range(3):
        env = _builtin("reverie/Drive-v0", continuous=continuous)
        policy = make_policy("explore", env, seed)
        _, infos = play(policy, env, 300, seed=seed)
        offroad += [i["offroad"] for i in infos]
        speed += [i["speed"] for i in infos]
        assert policy.describe()["events"].get("lane_keep", 0) > 0
    assert np.mean(offroad) < 0.15  # uniform random steering spends about half its time off the road
    assert np.mean(speed) > 8.0


def test_dungeon_explorer_covers_more_ground_than_random():
    cells = {}
    for name in ("explore", "random"):
        seen = set()
        for seed in range(2):
            env = _builtin("reverie/Dungeon-v0")
            _, infos = play(make_policy(name, env, seed), env, 400, seed=seed)
            seen |= {(seed, int(i["pose"][0]), int(i["pose"][1])) for i in infos}
        cells[name] = len(seen)
    assert cells["explore"] > 1.3 * cells["random"]
