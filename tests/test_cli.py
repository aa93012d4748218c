"""The `reverie` command: every subcommand explains itself, and the worlds commands run."""

from __future__ import annotations

import json
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from reverie.cli import app

runner = CliRunner()


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # typer vendors its own click, so groups are told by their interface, not their class
    out = []
    ctx = group.make_context("reverie", [], resilient_parsing=True)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        path = (*prefix, name)
        out += _commands(cmd, path) if hasattr(cmd, "list_commands") else [path]
    return out


ALL = _commands(typer.main.get_command(app))  # type: ignore[arg-type]


def test_the_command_set_is_complete() -> None:
    names = {" ".join(c) for c in ALL}
    for expected in ("worlds", "record", "import-video", "data info", "data show", "train autoencoder",
                     "train dynamics", "play", "bench world", "bench data", "bench train", "bench engine"):  # fmt: skip
        assert expected in names


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p))
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output


def test_worlds_lists_builtins_as_json() -> None:
    result = runner.invoke(app, ["worlds", "--json"])
    assert result.exit_code == 0
    ids = [json.loads(line)["id"] for line in result.output.splitlines()]
    assert ids == ["reverie/Dungeon-v0", "reverie/Drive-v0"]


def test_bench_world_prints_one_json_line_per_world_and_size() -> None:
    result = runner.invoke(
        app, ["bench", "world", "--json", "--steps", "20", "--size", "64x64", "--size", "96x64"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["world"], r["width"], r["height"]) for r in rows] == [
        ("reverie/Dungeon-v0", 64, 64), ("reverie/Dungeon-v0", 96, 64),
        ("reverie/Drive-v0", 64, 64), ("reverie/Drive-v0", 96, 64),
    ]  # fmt: skip
    assert all(r["fps"] > 0 and r["frame_ms_p50"] > 0 for r in rows)


def test_bad_size_is_a_clear_error() -> None:
    result = runner.invoke(app, ["bench", "world", "--steps", "5", "--size", "64by64"])
    assert result.exit_code != 0
    assert "WIDTHxHEIGHT" in str(result.exception)
