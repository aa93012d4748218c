"""Untrusted model files cost nothing: a run's config.json is checked against its weights before
any real model is built.

A config is a few bytes that say how big a model to build; the weights say how big it really is.
So the model is first built on the meta device (shapes only, no memory, no init) under a budget
derived from the weights' own size, which stops a config that asks for gigabytes within a few
percent of its build; then its tensor names and shapes must equal the weights' exactly. Only then
is the real model built. Wrong types and impossible values become one error naming the field.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from reverie.errors import ReverieError

MAX_CONFIG_BYTES = 1024 * 1024  # a config.json is a few KB
MAX_MODEL_BYTES = 2 * 1024**3  # model.safetensors: far beyond anything that plays on a CPU
# The meta build may touch this many elements per element of the weights (each parameter is
# created, then initialised in place a few times) plus a margin for small tables (rope, masks).
BUILD_ELEMENTS_PER_WEIGHT = 8
BUILD_MARGIN_ELEMENTS = 1 << 24


class _TooBig(Exception):
    pass


class _ElementBudget(TorchFunctionMode):
    """Counts the elements of every tensor the build makes, and stops it past `limit`."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.used = limit, 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor):
            self.used += out.numel()
            if self.used > self.limit:
                raise _TooBig
        return out


def check_fields(cls: type, settings: Any, where: str) -> None:
    """`settings` (a run's "model" dict) gives each field of dataclass `cls` a value of its annotated
    type (int, float, bool, str, tuples of those, optionals), before the class sees any of them.
    Unknown keys are left to the class, which names the accepted ones."""
    if not isinstance(settings, dict):
        raise ReverieError(f'{where}: config.json "model" must be an object of model settings')
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        want = hints.get(f.name)
        if f.name in settings and want is not None and not _is(settings[f.name], want):
            v = settings[f.name]
            raise ReverieError(
                f"{where}: model setting {f.name!r} is {v!r:.40} ({type(v).__name__}); accepted: {_name(want)}"
            )


MAX_FRAME_SIDE = 4096  # pixels: a world model's frame side (the shipped ones are 64)


def check_data(data: Any, where: str) -> None:
    """A dynamics run's "data" entry: the frame size, rate and action spec play builds on."""
    if not isinstance(data, dict):
        raise ReverieError(f'{where}: config.json "data" must be an object')
    for k in ("width", "height"):
        v: Any = data.get(k)
        if not (_is(v, int) and 1 <= v <= MAX_FRAME_SIDE):
            raise ReverieError(
                f"{where}: data {k!r} is {v!r:.40}; accepted: an integer in 1..{MAX_FRAME_SIDE}"
            )
    fps: Any = data.get("fps")
    if fps is not None and not (_is(fps, float) and 0 < fps <= 1000):
        raise ReverieError(f"{where}: data 'fps' is {fps!r:.40}; accepted: a number in (0, 1000]")
    if not isinstance(data.get("action_spec"), dict) or not isinstance(data.get("autoencoder"), str):
        raise ReverieError(f"{where}: data 'action_spec' must be an object and 'autoencoder' a path")


def _is(v: Any, t: Any) -> bool:
    origin, args = typing.get_origin(t), typing.get_args(t)
    if t is float:
        return isinstance(v, int | float) and not isinstance(v, bool)
    if t is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if t in (str, bool):
        return isinstance(v, t)
    if origin in (types.UnionType, typing.Union):
        return any(_is(v, a) for a in args)
    if t is type(None):
        return v is None
    if origin is tuple:
        if not isinstance(v, tuple | list):
            return False
        elems = args[:1] * len(v) if len(args) == 2 and args[1] is Ellipsis else args
        return len(elems) == len(v) and all(_is(x, a) for x, a in zip(elems, v))
    return True  # a type this check does not know: left to the model


def _name(t: Any) -> str:
    return getattr(t, "__name__", None) or str(t).replace("typing.", "")


def _budgeted(build: Callable[[], nn.Module], limit: int, meta: bool, where: str, weights: int) -> nn.Module:
    budget = _ElementBudget(limit)
    try:
        if meta:
            with torch.device("meta"), budget:
                return build()
        with budget:
            return build()
    except _TooBig:
        raise ReverieError(
            f"{where}: config.json asks for a model far larger than its weights ({weights:,} numbers, "
            f"the build passed {budget.used:,} before it was stopped); the config was edited or belongs "
            "to other weights"
        ) from None


def build_for_weights(
    build: Callable[[], nn.Module], state: dict[str, torch.Tensor], where: str
) -> nn.Module:
    """`build()` once the model it builds is known to fit `state` exactly; then load `state` into it."""
    weights = sum(t.numel() for t in state.values())
    limit = BUILD_ELEMENTS_PER_WEIGHT * weights + BUILD_MARGIN_ELEMENTS
    model = None
    try:
        try:
            shape_only = _budgeted(build, limit, meta=True, where=where, weights=weights)
        except RuntimeError as e:
            if "meta" not in str(e):
                raise
            # An init that reads its own values cannot run on meta: build for real, still under
            # the budget, so the cost stays bounded by the size of the weights.
            shape_only = model = _budgeted(build, limit, meta=False, where=where, weights=weights)
    except ReverieError as e:
        raise ReverieError(e.args[0] if str(e).startswith(where) else f"{where}: {e}") from None
    except (TypeError, ValueError, RuntimeError, ZeroDivisionError, OverflowError, KeyError) as e:
        raise ReverieError(
            f"{where}: config.json does not describe a model ({type(e).__name__}: {e})"
        ) from None
    own = {k: tuple(v.shape) for k, v in shape_only.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in state.items()}
    if own != theirs:
        missing, unexpected = sorted(set(own) - set(theirs)), sorted(set(theirs) - set(own))
        shapes = [f"{k} {theirs[k]} vs {own[k]}" for k in own if k in theirs and own[k] != theirs[k]]
        raise ReverieError(
            f"{where}: the weights do not fit the model of config.json (missing {missing[:4]}, unexpected "
            f"{unexpected[:4]}, weights vs config shapes {shapes[:4]}); they come from another model or version"
        )
    model = model or build()
    model.load_state_dict(state)
    return model
