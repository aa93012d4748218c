"""`reverie bind-keys`: name a latent-action model's codes so the usual keys play them."""

from __future__ import annotations

import typer

from reverie.cli.apps import app
from reverie.errors import ReverieError


@app.command("bind-keys")
def bind_keys_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Dynamics run (trained on a latent stream)."),
    pairs: list[str] = typer.Argument(None, help="CODE=ACTION pairs, e.g. c1=forward c3=turn_left."),
    show: bool = typer.Option(False, "--show", help="Print the current binding and the codes."),
    clear: bool = typer.Option(False, "--clear", help="Remove the binding (codes keep number keys)."),
) -> None:
    """Bind a model's unnamed action codes (noop, c1, c2, ...) to actions the usual keys play.

    The binding is saved with the model (RUN/keys.json) and used by `reverie play --model RUN`:
    W/S/A/D/Q/E and the arrows play the bound codes; unbound codes keep their number keys.
    Pairs given are merged into the saved binding. Actions: forward, back, turn_left, turn_right,
    strafe_left, strafe_right, forward_left, forward_right, back_left, back_right, fire, jump, use.

    Example:

    \b
    reverie bind-keys --model runs/dyn c1=forward c2=back c3=turn_left c4=turn_right
    reverie bind-keys --model runs/dyn --show
    reverie bind-keys --model runs/dyn --clear
    """
    from reverie.engine.key_binding import KEYS_FILE, codes_of, read_binding, run_spec, write_binding

    spec = run_spec(model)
    if clear:
        write_binding(model, spec, {})
        typer.echo(f"removed {model}/{KEYS_FILE}")
        return
    binding = read_binding(model, spec)
    if pairs:
        for pair in pairs:
            code, sep, action = pair.partition("=")
            if not sep:
                raise ReverieError(f"{pair!r}: expected CODE=ACTION, e.g. c1=forward")
            binding[code.strip()] = action.strip()
        path = write_binding(model, spec, binding)
        typer.echo(f"saved {path}")
    elif not show:
        raise ReverieError("give CODE=ACTION pairs, --show or --clear (see --help)")
    for code in codes_of(spec):
        typer.echo(f"{code}\t{binding.get(code, '(number key)')}")
