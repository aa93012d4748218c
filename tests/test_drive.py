"""Drive physics and captions: throttle, steering, grass, scenes."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import reverie  # noqa: F401

A = {
    n: i
    for i, n in enumerate(
        ["noop", "accelerate", "brake", "left", "right", "accelerate_left", "accelerate_right"]
    )
}


def make(seed: int = 0, **kw):
    env = gym.make("reverie/Drive-v0", render_mode="rgb_array", width=64, height=64, **kw)
    obs, info = env.reset(seed=seed)
    return env, obs, info


def test_throttle_increases_speed_and_distance() -> None:
    env, obs0, info0 = make(seed=1)
    for _ in range(30):
        obs, _reward, _, _, info = env.step(A["accelerate"])
    assert info["speed"] > info0["speed"]
    assert info["pose"][0] > info0["pose"][0]
    assert not np.array_equal(obs0, obs)
    speed = info["speed"]
    for _ in range(20):
        _, _, _, _, info = env.step(A["brake"])
    assert info["speed"] < speed


def test_steering_changes_lateral_offset() -> None:
    offsets = {}
    for a in ("accelerate_left", "accelerate_right"):
        env, _, info = make(seed=2)
        for _ in range(25):
            _, _, _, _, info = env.step(A[a])
        offsets[a] = info["pose"][1]
    assert offsets["accelerate_left"] < offsets["accelerate_right"]


def test_offroad_slows_the_car() -> None:
    def run(steer_away: bool) -> tuple[float, bool]:
        env, _, info = make(seed=5, continuous=True)
        for t in range(120):
            steer = 1.0 if steer_away and t < 40 else 0.0
            _, _, _, _, info = env.step(np.array([steer, 1.0, 0.0], np.float32))
        return info["speed"], info["offroad"]

    on_speed, on_off = run(False)
    off_speed, off_off = run(True)
    assert off_off and not on_off
    assert off_speed < on_speed


def test_scene_changes_and_captions_follow() -> None:
    from reverie.worlds.explore import make_policy

    env, obs, info = make(seed=7)
    policy = make_policy("explore", env, seed=7)
    roads, captions = set(), set()
    for _ in range(600):
        obs, _, _, _, info = env.step(policy(obs, info))
        roads.add(info["scene"]["road"])
        captions.add(info["caption"])
    assert len(roads) >= 2, "the track never curved in 600 steps"
    assert len(captions) >= 2
    assert info["scene"]["time"] in ("day", "dusk", "night")
