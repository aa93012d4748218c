"""The world model as a Gymnasium env."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from test_model_backend import make_tiny_run

from reverie.engine.world_model_env import WorldModelEnv


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_tiny_run(tmp_path_factory.mktemp("env"))


def test_check_env_and_spaces(tiny_run: str) -> None:
    env = WorldModelEnv(tiny_run, steps=1, max_steps=5)
    assert env.action_space == gymnasium.spaces.Discrete(9)
    assert env.observation_space.shape == (64, 64, 3) and env.observation_space.dtype == np.uint8
    check_env(env, skip_render_check=False)
    env.close()


def test_reward_zero_truncates_at_max_steps(tiny_run: str) -> None:
    env = WorldModelEnv(tiny_run, steps=1, max_steps=3)
    obs, _ = env.reset(seed=1)
    assert obs.shape == (64, 64, 3)
    flags = []
    for _ in range(3):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert reward == 0.0 and not terminated
        flags.append(truncated)
    assert flags == [False, False, True]
    frame = env.render()
    assert frame is not None and np.array_equal(frame, obs)


def test_deterministic_for_a_seed(tiny_run: str) -> None:
    def roll(seed: int) -> np.ndarray:
        env = WorldModelEnv(tiny_run, steps=1)
        frames = [env.reset(seed=seed)[0]]
        frames += [env.step(a)[0] for a in (1, 1, 3, 0, 2)]
        return np.stack(frames)

    np.testing.assert_array_equal(roll(4), roll(4))
    assert not np.array_equal(roll(4), roll(5))


def test_box_and_video_spaces(tmp_path: Path) -> None:
    box = {"type": "box", "shape": [2], "low": [-1.0, 0.0], "high": [1.0, 1.0], "names": ["x", "y"]}
    env = WorldModelEnv(make_tiny_run(tmp_path, spec=box, world=None), steps=1, max_steps=4)
    assert isinstance(env.action_space, gymnasium.spaces.Box) and env.action_space.shape == (2,)
    check_env(env)
    video = WorldModelEnv(make_tiny_run(tmp_path, spec={"type": "none"}, world=None), steps=1)
    assert video.action_space == gymnasium.spaces.Discrete(1)
    video.reset(seed=0, options={"prompt": "a cave"})
    assert video.step(0)[0].shape == (64, 64, 3)
