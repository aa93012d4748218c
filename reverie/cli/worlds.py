"""`reverie worlds`, `reverie record`, `reverie import-video`, `reverie bench world`."""

from __future__ import annotations

import json

import typer

from reverie.cli.apps import app


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
