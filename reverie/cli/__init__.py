"""The `reverie` command. Each area of the tool adds its commands from its own module here."""

from __future__ import annotations

import sys

# Each module attaches its commands to the apps when imported; a broken one fails loudly here.
from reverie.cli import bind_keys, data, eval, generate, latent_actions, play, train, worlds  # noqa: F401
from reverie.cli.apps import app
from reverie.errors import ReverieError


def main() -> None:
    try:
        app()
    except ReverieError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
