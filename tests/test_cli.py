"""The `reverie` command: every subcommand explains itself, and the worlds commands run."""

from __future__ import annotations

import json
import re
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


def _settings() -> dict[str, list[tuple[str, Any]]]:
    from reverie.models.autoencoder import preset_config
    from reverie.models.dynamics import dynamics_preset
    from reverie.models.flow import FlowConfig
    from reverie.models.latent_actions import latent_action_preset
    from reverie.train.config import TrainConfig
    from reverie.train.dynamics_task import DynamicsTask

    train = [("", TrainConfig())]
    return {
        "autoencoder": [*train, ("model.", preset_config("small"))],
        "dynamics": [
            *train, ("model.", dynamics_preset("small")),
            ("flow.", FlowConfig()), ("sampler.", DynamicsTask.default_play(FlowConfig())),
        ],
        "latent-actions": [*train, ("model.", latent_action_preset("small"))],
    }  # fmt: skip


@pytest.mark.parametrize("command", ["autoencoder", "dynamics", "latent-actions"])
def test_train_help_lists_every_setting_with_its_default_and_a_note(command: str) -> None:
    from dataclasses import fields

    result = runner.invoke(app, ["train", command, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    rows = 0
    for prefix, config in _settings()[command]:
        for f in fields(config):
            value = getattr(config, f.name)
            shown = value if isinstance(value, str) else repr(value)
            # KEY, its default, then a note: a field added without a comment beside it fails here
            row = rf"^ *{re.escape(prefix + f.name)} +{re.escape(shown)} +\S"
            assert re.search(row, result.output, re.MULTILINE), f"{prefix}{f.name}={shown} not in --help"
            rows += 1
    assert rows >= 20
    assert re.search(r"^ *lr +0\.0005 +peak learning rate", result.output, re.MULTILINE)


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
