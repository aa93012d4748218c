"""The real frame rate of a world: game time per recorded step, so recorded clips play at game speed.

A Gymnasium env's `render_fps` is the rate of its frames, but many envs step several frames per
action (ALE v5 skips 4 frames by default, ViZDoom's `frame_skip`, wrappers like
AtariPreprocessing); one recorded step then spans that many frames. Atari's `render_fps` (30) is
also only a display rate: the emulated console runs at 60 Hz.
"""

from __future__ import annotations

from typing import Any

ATARI_HZ = 60.0  # the NTSC Atari 2600's frame rate, which ALE emulates frame by frame
DEFAULT_FPS = 30.0  # for envs that do not say
# Attributes through which envs and wrappers name how many frames one step advances.
_SKIP_ATTRS = ("frameskip", "_frameskip", "frame_skip", "_skip", "skip")


def _skip_of(obj: Any) -> float:
    for name in _SKIP_ATTRS:
        v = obj.__dict__.get(name) if hasattr(obj, "__dict__") else None
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, int | float) and v >= 1:
            return float(v)
        if isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, int | float) for x in v):
            lo, hi = v  # ALE's stochastic skip: uniform over lo..hi-1
            return (float(lo) + float(hi) - 1) / 2
    return 1.0


def frame_rate(env: Any) -> float:
    """Recorded steps per second of game time for `env` (any wrapper chain)."""
    skip, layer = 1.0, env
    while layer is not None:  # every layer that skips frames multiplies the span of a step
        skip *= _skip_of(layer)
        layer = getattr(layer, "env", None) if layer is not getattr(layer, "unwrapped", layer) else None
    unwrapped = getattr(env, "unwrapped", env)
    if hasattr(unwrapped, "ale"):
        base = ATARI_HZ
    else:
        meta = getattr(env, "metadata", None) or getattr(unwrapped, "metadata", None) or {}
        base = float(meta.get("render_fps") or DEFAULT_FPS)
    return base / skip
