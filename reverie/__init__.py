"""reverie: interactive world models you record, train and play live on a CPU."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["WorldModelEnv", "__version__"]

# Importing reverie registers the built-in worlds with Gymnasium (`reverie/Dungeon-v0`, ...).
from reverie.worlds import register_envs as _register_envs

_register_envs()


def __getattr__(name: str) -> Any:
    # Lazy: `import reverie` (and every world) stays free of torch until the model is asked for.
    if name == "WorldModelEnv":
        from reverie.engine.world_model_env import WorldModelEnv

        return WorldModelEnv
    raise AttributeError(f"module 'reverie' has no attribute {name!r}")
