"""reverie: interactive world models you record, train and play live on a CPU."""

from __future__ import annotations

__version__ = "0.1.0"

# Importing reverie registers the built-in worlds with Gymnasium (`reverie/Dungeon-v0`, ...).
from reverie.worlds import register_envs as _register_envs

_register_envs()
