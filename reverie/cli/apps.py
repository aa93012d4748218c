"""The Typer apps that command modules attach to. Heavy imports stay inside command bodies."""

from __future__ import annotations

import typer

_SETTINGS = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="reverie",
    help=(
        "reverie: record a world, train an interactive world model on it, and play it live on a CPU.\n\n"
        "Quick start:  reverie play --open"
    ),
    no_args_is_help=True,
    context_settings=_SETTINGS,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Inspect an episode store: summaries and contact sheets.", no_args_is_help=True)
bench_app = typer.Typer(
    help="Measure speed. Each result is one JSON line (with --json), e.g. `reverie bench world --json`.",
    no_args_is_help=True,
)
train_app = typer.Typer(help="Train the frame autoencoder and the dynamics model.", no_args_is_help=True)

app.add_typer(data_app, name="data")
app.add_typer(bench_app, name="bench")
app.add_typer(train_app, name="train")
