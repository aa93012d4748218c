"""Ctrl-C during `reverie record` says what was kept and how to record the rest; following that
advice gives the store the recording would have made."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import reverie.data.record as rec
from reverie.cli import app
from reverie.data.store import EpisodeStore


def test_ctrl_c_keeps_whole_episodes_and_prints_how_to_continue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "store"
    real, calls = rec._record_one, []

    def third_is_interrupted(args: Any) -> Any:
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(args)

    monkeypatch.setattr(rec, "_record_one", third_is_interrupted)
    argv = "record --world reverie/Dungeon-v0 --episodes 5 --steps 4 --size 32x32 --seed 10 --workers 1 -q"
    res = CliRunner().invoke(app, [*argv.split(), "--out", str(out)])
    assert res.exit_code == 130
    assert "kept 2 new episodes (seeds 10-11)" in res.stderr and "continue from seed 12" in res.stderr
    command = res.stderr.strip().splitlines()[-1].split()
    assert command[:2] == ["reverie", "record"] and "--episodes 3" in " ".join(command)
    assert [ep.meta["seed"] for ep in EpisodeStore.open(out)] == [10, 11]

    monkeypatch.setattr(rec, "_record_one", real)
    res = CliRunner().invoke(app, [*shlex.split(" ".join(command[1:])), "--workers", "1", "-q"])
    assert res.exit_code == 0, res.output
    assert [ep.meta["seed"] for ep in EpisodeStore.open(out)] == [10, 11, 12, 13, 14]


def test_ctrl_c_before_any_episode_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(args: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(rec, "_record_one", interrupted)
    out = tmp_path / "store"
    res = CliRunner().invoke(
        app,
        ["record", "--world", "reverie/Dungeon-v0", "--size", "32x32", "-j", "1", "-q", "--out", str(out)],
    )
    assert res.exit_code == 130 and "before the first episode" in res.stderr
    assert not out.exists()
