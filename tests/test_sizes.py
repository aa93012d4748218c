"""One frame-size rule, checked where the size is typed: record, import, play and the worlds agree
with what training accepts."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import pytest
from typer.testing import CliRunner

import reverie  # noqa: F401  (registers the built-in worlds)
from reverie.cli import app
from reverie.errors import ReverieError
from reverie.models.autoencoder import PRESETS
from reverie.sizes import MIN_SIDE, MULTIPLE, Size, parse_size


def test_the_rule_is_the_autoencoders_stride_and_one_range() -> None:
    assert {cfg.stride for cfg in PRESETS.values()} == {MULTIPLE}  # every preset trains on these sizes
    assert parse_size("64X64") == parse_size("64x64") == parse_size(" 64 × 64 ") == Size(64, 64)
    assert parse_size("128x72") == Size(128, 72)
    with pytest.raises(ReverieError, match=r"width 63 is not a multiple of 8 .*try 56 or 64"):
        parse_size("63x64")
    with pytest.raises(ReverieError, match=rf"height 8 is outside {MIN_SIDE}\.\.1024"):
        parse_size("64x8")
    with pytest.raises(ReverieError, match="outside"):
        parse_size("2048x64")


def test_record_refuses_a_size_training_would_refuse_before_recording(tmp_path: Path) -> None:
    out = tmp_path / "store"
    res = CliRunner().invoke(
        app, ["record", "--world", "reverie/Dungeon-v0", "--size", "63x64", "--out", str(out)]
    )
    assert isinstance(res.exception, ReverieError) and "multiple of 8" in str(res.exception)
    assert not out.exists()
    res = CliRunner().invoke(
        app, ["import-video", str(tmp_path / "x.mp4"), "--size", "64x60", "--out", str(out)]
    )
    assert isinstance(res.exception, ReverieError) and "height 60" in str(res.exception)


def test_the_worlds_follow_the_same_rule() -> None:
    for world in ("reverie/Dungeon-v0", "reverie/Drive-v0"):
        with pytest.raises(ReverieError, match="multiple of 8"):
            gymnasium.make(world, width=60, height=64)
        with pytest.raises(ReverieError, match=r"outside 16\.\.1024"):
            gymnasium.make(world, width=8, height=8)
