"""`reverie worlds` and `reverie bench world`."""

from __future__ import annotations

import json

import typer

from reverie.cli.apps import app, bench_app


@app.command("worlds")
def worlds_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per world."),
) -> None:
    """List the built-in worlds (any Gymnasium id with rgb_array rendering works too).

    Example:  reverie worlds
    """
    from reverie.worlds import BUILTIN_WORLDS, DESCRIPTIONS

    for env_id in BUILTIN_WORLDS:
        if as_json:
            print(json.dumps({"id": env_id, "description": DESCRIPTIONS[env_id]}))
        else:
            typer.echo(f"{env_id:22s} {DESCRIPTIONS[env_id]}")
    if not as_json:
        typer.echo(
            "\nAlso: any Gymnasium id with render_mode='rgb_array', e.g. ALE/Breakout-v5 (extra 'atari'),"
            " CarRacing-v3 ('box2d'), VizdoomBasic-v1 ('vizdoom'), MiniWorld-Hallway-v0 ('miniworld')."
        )


@bench_app.command("world")
def bench_world_cmd(
    world: list[str] = typer.Option(
        None, "--world", "-w", help="World id (repeatable); default: all built-ins."
    ),
    size: list[str] = typer.Option(
        None, "--size", "-s", help="WIDTHxHEIGHT (repeatable); default 64x64, 128x72."
    ),
    steps: int = typer.Option(2000, help="Steps timed per world and size, after warm-up."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per world and size."),
) -> None:
    """Frames per second of each world (step plus render) on one core.

    Example:  reverie bench world --json
    """
    from reverie.sizes import parse_size
    from reverie.worlds import BUILTIN_WORLDS
    from reverie.worlds.bench import bench_world

    for env_id in world or list(BUILTIN_WORLDS):
        for s in size or ["64x64", "128x72"]:
            result = bench_world(env_id, parse_size(s), steps)
            if as_json:
                print(json.dumps(result), flush=True)
            else:
                typer.echo(f"{env_id:22s} {s:>8s} {result['fps']:10.0f} frames/s")
