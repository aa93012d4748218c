"""Dungeon physics and captions: moving, turning, walls, scenes."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np

import reverie  # noqa: F401

A = {n: i for i, n in enumerate(["noop", "forward", "back", "turn_left", "turn_right",
                                  "strafe_left", "strafe_right", "forward_left", "forward_right"])}  # fmt: skip


def make(seed: int = 0, **kw):
    env = gym.make("reverie/Dungeon-v0", render_mode="rgb_array", width=64, height=64, **kw)
    obs, info = env.reset(seed=seed)
    return env, obs, info


def test_action_names_match() -> None:
    env, _, _ = make()
    assert {n: i for i, n in enumerate(env.unwrapped.action_names)} == A


def test_forward_moves_pose_and_view() -> None:
    env, obs0, info0 = make(seed=1)
    # turn until there is room ahead, then walk
    moved = False
    for _ in range(60):
        obs, _, _, _, info = env.step(A["forward"])
        if not info["blocked"]:
            moved = True
            break
        env.step(A["turn_left"])
    assert moved
    x0, y0, _a0 = info0["pose"]
    x1, y1, _a1 = info["pose"]
    assert math.hypot(x1 - x0, y1 - y0) > 0.05
    assert not np.array_equal(obs0, obs)


def test_turning_rotates_pose_and_view() -> None:
    env, obs0, info0 = make(seed=2)
    obs, _, _, _, info = env.step(A["turn_right"])
    assert info["pose"][:2] == info0["pose"][:2]
    d = (info["pose"][2] - info0["pose"][2] + math.pi) % (2 * math.pi) - math.pi
    assert abs(d) > math.radians(2)
    assert not np.array_equal(obs0, obs)
    _, _, _, _, back = env.step(A["turn_left"])
    assert abs(back["pose"][2] - info0["pose"][2]) % (2 * math.pi) < 1e-6 or math.isclose(
        math.cos(back["pose"][2]), math.cos(info0["pose"][2]), abs_tol=1e-6
    )


def test_walls_block() -> None:
    env, _, info = make(seed=3)
    blocked_steps = 0
    last = info["pose"]
    for _ in range(400):
        _, _, _, _, info = env.step(A["forward"])
        if info["blocked"]:
            blocked_steps += 1
            # a blocked step moves the player (at most sliding) far less than a free step
            assert math.hypot(info["pose"][0] - last[0], info["pose"][1] - last[1]) < 0.12
        last = info["pose"]
    assert blocked_steps > 0, "walking straight for 400 steps never hit a wall"
    u = env.unwrapped
    x, y = info["pose"][:2]
    assert u._free(x, y)


def test_captions_follow_the_scene() -> None:
    """Wandering through several regions changes the caption, and it always matches info['scene']."""
    from reverie.worlds.explore import make_policy

    env, obs, info = make(seed=4)
    policy = make_policy("explorer", env, seed=4)
    seen: dict[int, str] = {}
    for _ in range(3000):
        obs, _, _, _, info = env.step(policy(obs, info))
        region = info["region"]
        scene = info["scene"]
        assert scene == env.unwrapped.scene(region) | {"objects": list(scene["objects"])}
        for key in ("material", "color", "light", "kind"):
            assert key in scene
        # the caption names the wall colour of the region the player stands in
        assert scene["color"].split()[0] in info["caption"] or scene["color"] in info["caption"]
        # stable while in the same region
        if region in seen:
            assert seen[region] == info["caption"]
        seen[region] = info["caption"]
    assert len(seen) >= 2, "the walk never left the first region"
    assert len(set(seen.values())) >= 2
