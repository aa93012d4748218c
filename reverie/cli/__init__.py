"""The `reverie` command. Each area of the tool adds its commands from its own module here."""

from __future__ import annotations

import importlib
import sys

from reverie.cli.apps import app
from reverie.errors import ReverieError

# Modules that attach commands to the apps; a missing one (an area not built yet) is skipped.
_COMMAND_MODULES = ("worlds", "data", "train", "play", "eval", "generate")

for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(f"reverie.cli.{_name}")
    except ModuleNotFoundError as e:
        if e.name != f"reverie.cli.{_name}":
            raise


def main() -> None:
    try:
        app()
    except ReverieError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
