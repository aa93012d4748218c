"""Recorded clips play at game speed: a world's frame rate counts the frames each step skips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pytest

from reverie.data.record import RecordConfig, record
from reverie.sizes import Size
from reverie.worlds.frame_rate import frame_rate
from reverie.worlds.make import make_world


class _Clock(gymnasium.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}  # noqa: RUF012
    observation_space = gymnasium.spaces.Box(0, 255, (4, 4, 3), np.uint8)
    action_space = gymnasium.spaces.Discrete(2)


class _Skip(gymnasium.Wrapper):
    def __init__(self, env: Any, frame_skip: int) -> None:
        super().__init__(env)
        self.frame_skip = frame_skip


def test_render_fps_divided_by_every_layers_frame_skip() -> None:
    assert frame_rate(_Clock()) == 50
    assert frame_rate(_Skip(_Clock(), 4)) == 12.5
    assert frame_rate(_Skip(_Skip(_Clock(), 2), 5)) == 5
    assert frame_rate(make_world("reverie/Dungeon-v0", "64x64")) == 30


def test_atari_runs_at_60_hz_over_its_frame_skip() -> None:
    pytest.importorskip("ale_py")
    assert frame_rate(make_world("ALE/Breakout-v5", "64x64")) == 15  # v5 skips 4 frames a step
    assert frame_rate(make_world("ALE/Breakout-v5", "64x64", frameskip=1)) == 60
    assert (
        frame_rate(make_world("ALE/Breakout-v5", "64x64", frameskip=(2, 5))) == 20
    )  # 2, 3 or 4: 3 on average


def test_an_atari_store_records_its_real_frame_rate(tmp_path: Path) -> None:
    pytest.importorskip("ale_py")
    store = record(
        RecordConfig("ALE/Breakout-v5", Size(64, 64), episodes=1, steps=3),
        str(tmp_path / "s"),
        progress=False,
    )
    assert store.fps == 15
