"""`make_world`: one call that makes a built-in world or any installed Gymnasium game usable.

    env = make_world("reverie/Dungeon-v0", "64x64", seed=0)
    env = make_world("ALE/Breakout-v5", "64x64")      # needs: pip install "reverie[atari]"

Third-party envs are made with render_mode="rgb_array" and wrapped so the observation IS the
rendered frame at the requested size, actions are normalised (actions.py) and info has a caption.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import os
from dataclasses import dataclass
from typing import Any

import gymnasium

from reverie.errors import ReverieError
from reverie.sizes import Size, parse_size
from reverie.worlds import BUILTIN_WORLDS, DESCRIPTIONS, register_envs
from reverie.worlds.action_spec import ActionSpec
from reverie.worlds.actions import NormalizedActions, action_spec, known_names
from reverie.worlds.adapters import RenderedFrames

__all__ = ["FAMILIES", "WorldInfo", "action_spec", "list_worlds", "make_world"]


@dataclass(frozen=True)
class Family:
    """Third-party env family: how to recognise its ids and which optional extra provides it."""

    name: str
    extra: str
    module: str  # importing it registers the ids (or checks the package is there)
    example: str
    description: str
    prefixes: tuple[str, ...]


FAMILIES: tuple[Family, ...] = (
    Family(
        "atari", "atari", "ale_py", "ALE/Breakout-v5", "Atari 2600 games (ale-py ships the ROMs)", ("ALE/",)
    ),
    Family(
        "box2d",
        "box2d",
        "Box2D",
        "CarRacing-v3",
        "top-down car racing (Box2D)",
        ("CarRacing", "LunarLander", "BipedalWalker"),
    ),
    Family(
        "vizdoom",
        "vizdoom",
        "vizdoom.gymnasium_wrapper",
        "VizdoomBasic-v1",
        "Doom scenarios (ViZDoom, Freedoom WADs included)",
        ("Vizdoom",),
    ),
    Family(
        "miniworld",
        "miniworld",
        "miniworld",
        "MiniWorld-Hallway-v0",
        "simple 3D rooms and mazes (MiniWorld, headless OpenGL)",
        ("MiniWorld-",),
    ),
)
# Gymnasium draws these with pygame even in rgb_array mode.
_PYGAME_PREFIXES = (
    "CartPole",
    "Acrobot",
    "MountainCar",
    "Pendulum",
    "CarRacing",
    "LunarLander",
    "BipedalWalker",
)


@dataclass(frozen=True)
class WorldInfo:
    id: str
    description: str
    family: str  # "builtin" or a Family name
    extra: str | None  # pip extra that provides it
    installed: bool


def _family(world_id: str) -> Family | None:
    return next((f for f in FAMILIES if world_id.startswith(f.prefixes)), None)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def _load_family(family: Family, world_id: str) -> None:
    """Import the package that registers the family's ids; a clear error names the extra."""
    if family.name == "miniworld":
        # pyglet picks its GL backend at import; headless EGL needs this set first.
        os.environ.setdefault("PYGLET_HEADLESS", "1")
    try:
        mod = importlib.import_module(family.module)
    except ImportError as e:
        raise ReverieError(
            f"{world_id} needs the {family.name} package ({e.name or family.module} is missing): "
            f'pip install "reverie[{family.extra}]"'
        ) from None
    if family.name == "atari":
        gymnasium.register_envs(mod)
        # ALE prints its banner for every emulator it starts (once per recording worker, over the
        # progress bar); errors still print.
        mod.ALEInterface.setLoggerMode(mod.LoggerMode.Error)


def list_worlds() -> list[WorldInfo]:
    """Built-in worlds, then one example per third-party family (any installed Gymnasium id works)."""
    out = [WorldInfo(i, DESCRIPTIONS[i], "builtin", None, _builtin_available(i)) for i in BUILTIN_WORLDS]
    out += [WorldInfo(f.example, f.description, f.name, f.extra, _installed(f.module)) for f in FAMILIES]
    return out


def _builtin_available(world_id: str) -> bool:
    try:
        return importlib.util.find_spec(BUILTIN_WORLDS[world_id].split(":")[0]) is not None
    except (ImportError, ValueError):
        return False


def _unknown(world_id: str) -> ReverieError:
    candidates = list(dict.fromkeys([*BUILTIN_WORLDS, *(f.example for f in FAMILIES), *gymnasium.registry]))
    close = difflib.get_close_matches(world_id, candidates, n=4, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return ReverieError(
        f"unknown world {world_id!r}.{hint} Built-in worlds: {', '.join(BUILTIN_WORLDS)}. "
        "Any installed Gymnasium id with rgb_array rendering works too, e.g. "
        + ", ".join(f'{f.example} (pip install "reverie[{f.extra}]")' for f in FAMILIES)
    )


def _accepts(env_id: str, kwarg: str) -> bool:
    spec = gymnasium.spec(env_id)
    entry = spec.entry_point
    if callable(entry):
        target: Any = entry
    else:
        mod_name, _, attr = str(entry).partition(":")
        try:
            target = getattr(importlib.import_module(mod_name), attr)
        except (ImportError, AttributeError):
            return False
    try:
        return kwarg in inspect.signature(target).parameters or kwarg in spec.kwargs
    except (TypeError, ValueError):
        return False


def make_world(
    world_id: str,
    size: Size | str | tuple[int, int] = "64x64",
    *,
    continuous: bool = False,
    seed: int | None = None,
    fit: str | None = None,
    **kwargs: Any,
) -> gymnasium.Env:
    """Make a world whose observation is a uint8 (H, W, 3) frame of `size`.

    continuous: ask for the continuous (Box) action variant; an env with only discrete actions
        refuses, an env with only a Box keeps it either way.
    seed: when given, the env is reset once with it, so later resets are deterministic too.
    fit: how a third-party frame meets `size`: "crop" (default), "pad" or "stretch" (Atari's
        default: its score and paddle sit at the very top and bottom).
    kwargs: passed to gymnasium.make (e.g. frameskip=4 for Atari).
    """
    size = parse_size(size)
    family = _family(world_id)
    if world_id in BUILTIN_WORLDS:
        if not _builtin_available(world_id):
            module = BUILTIN_WORLDS[world_id].split(":")[0]
            raise ReverieError(
                f"built-in world {world_id} is not available in this install ({module} missing)"
            )
        register_envs()
        env = gymnasium.make(
            world_id,
            render_mode="rgb_array",
            width=size.width,
            height=size.height,
            continuous=continuous,
            **kwargs,
        )
    else:
        if family is not None:
            _load_family(family, world_id)
        if world_id not in gymnasium.registry:
            raise _unknown(world_id)
        # Box2D's extra brings pygame too; classic control (CartPole...) needs only pygame.
        hint = f'pip install "reverie[{family.extra}]"' if family else "pip install pygame-ce"
        if world_id.startswith(_PYGAME_PREFIXES) and not _installed("pygame"):
            raise ReverieError(f"{world_id} draws its frames with pygame: {hint}")
        if "continuous" not in kwargs and _accepts(world_id, "continuous"):
            kwargs["continuous"] = continuous
        if family is not None and family.name == "miniworld":
            # Its rgb_array frame is drawn at window size (800x600, 16x MSAA: ~30 ms in software GL);
            # twice the target size at the target aspect is ~20x faster and still antialiased.
            kwargs.setdefault("window_width", 2 * size.width)
            kwargs.setdefault("window_height", 2 * size.height)
        try:
            env = gymnasium.make(world_id, render_mode="rgb_array", **kwargs)
        except gymnasium.error.DependencyNotInstalled as e:
            raise ReverieError(f"{world_id} needs a missing package ({e}): {hint}") from None
        env = RenderedFrames(
            env, size, world_id, fit or ("stretch" if family and family.name == "atari" else "crop")
        )
        env = NormalizedActions(env, known_names(world_id, env.action_space))
    spec = ActionSpec.from_dict(action_spec(env))
    if continuous and not spec.is_box:
        env.close()
        raise ReverieError(f"{world_id} has only discrete actions ({spec.n}): drop --continuous")
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env
