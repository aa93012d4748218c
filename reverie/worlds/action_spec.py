"""The typed action spec: one of three kinds every world, store and model is seen through.

Its JSON form (recorded with the data, in run configs and stream files) is unchanged:
    {"type": "discrete", "n": 9, "names": [...]}
    {"type": "box", "shape": [3], "low": [...], "high": [...], "names": [...]}
    {"type": "none"}                                   (plain video)
Keys other than these (a stream's "source", "model", "codes") are kept as they are, and
`ActionSpec.from_dict(d).to_dict() == d`, key order included, so saved runs and stores keep loading.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from reverie.errors import ReverieError

if TYPE_CHECKING:
    from gymnasium import spaces

KINDS = ("discrete", "box", "none")
_KNOWN = ("type", "n", "shape", "low", "high", "names")


@dataclass(frozen=True)
class ActionSpec:
    """`kind` is "discrete" (`n` actions), "box" (float vector of `shape` in [low, high]) or "none"."""

    kind: str
    n: int = 0  # discrete: number of actions
    shape: tuple[int, ...] = ()  # box: the action's shape
    low: Any = None  # box: bounds as given (a list of numbers, or one number); None when absent
    high: Any = None
    names: tuple[str, ...] | None = None  # discrete: one per action; box: one per axis; None when absent
    extra: tuple[tuple[str, Any], ...] = field(default=(), hash=False)  # other keys, as given
    order: tuple[str, ...] = field(default=(), compare=False, repr=False)  # key order of the dict read

    # -- reading and writing the JSON form -----------------------------------------------------------
    @classmethod
    def of(cls, spec: ActionSpec | Mapping[str, Any]) -> ActionSpec:
        """`spec` itself if already typed, else `from_dict(spec)`."""
        return spec if isinstance(spec, ActionSpec) else cls.from_dict(spec)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ActionSpec:
        """Validate a JSON action spec; ReverieError names what is wrong and what is accepted."""
        if not isinstance(d, Mapping):
            raise ReverieError(f"bad action spec {d!r}: expected a dict with a 'type' of {', '.join(KINDS)}")
        kind = d.get("type")
        if kind not in KINDS:
            raise ReverieError(f"bad action spec {dict(d)!r}: 'type' must be one of {', '.join(KINDS)}")
        n: Any = 0
        shape: tuple[int, ...] = ()
        if kind == "discrete":
            n = d.get("n")
            if not (isinstance(n, int) and not isinstance(n, bool) and n >= 1):
                raise ReverieError(f"bad action spec {dict(d)!r}: a discrete spec needs an integer 'n' >= 1")
        if kind == "box":
            s = d.get("shape")
            if not (
                isinstance(s, list | tuple)
                and len(s) >= 1
                and all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in s)
            ):
                raise ReverieError(
                    f"bad action spec {dict(d)!r}: a box spec needs a 'shape' list of positive integers, e.g. [3]"
                )
            shape = tuple(s)
        names = d.get("names")
        if names is not None and not (
            isinstance(names, list | tuple) and all(isinstance(x, str) for x in names)
        ):
            raise ReverieError(f"bad action spec {dict(d)!r}: 'names' must be a list of strings")

        def bound(key: str) -> Any:
            v = d.get(key)
            return tuple(v) if isinstance(v, list | tuple) else v

        return cls(
            kind=kind,
            n=n,
            shape=shape,
            low=bound("low"),
            high=bound("high"),
            names=tuple(names) if names is not None else None,
            extra=tuple((k, copy.deepcopy(v)) for k, v in d.items() if k not in _KNOWN),
            order=tuple(d),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: exactly the dict this spec was read from (a fresh copy)."""
        out: dict[str, Any] = {"type": self.kind}
        if self.kind == "discrete":
            out["n"] = self.n
        if self.kind == "box":
            out["shape"] = list(self.shape)
            for key, v in (("low", self.low), ("high", self.high)):
                if v is not None:
                    out[key] = list(v) if isinstance(v, tuple) else v
        if self.names is not None:
            out["names"] = list(self.names)
        out.update((k, copy.deepcopy(v)) for k, v in self.extra)
        if self.order:
            keys = [k for k in self.order if k in out] + [k for k in out if k not in self.order]
            out = {k: out[k] for k in keys}
        return out

    # -- what callers ask of a spec --------------------------------------------------------------------
    @property
    def is_discrete(self) -> bool:
        return self.kind == "discrete"

    @property
    def is_box(self) -> bool:
        return self.kind == "box"

    @property
    def has_actions(self) -> bool:
        """False for plain video ("none")."""
        return self.kind != "none"

    @property
    def num_actions(self) -> int:
        """Number of discrete actions; 0 for box and none."""
        return self.n if self.kind == "discrete" else 0

    @property
    def action_dim(self) -> int:
        """Number of float columns of a box action (its shape flattened); 0 for discrete and none."""
        return int(np.prod(self.shape)) if self.kind == "box" else 0

    def null_action(self) -> Any:
        """Discrete 0 ("noop"), or zeros clipped into the box (the recorded act[0]); None for none."""
        if self.kind == "discrete":
            return 0
        if self.kind == "box":
            return np.clip(np.zeros(self.shape, np.float32), self.low, self.high).astype(np.float32)
        return None

    def encode(self, action: Any) -> np.ndarray:
        """Env action -> array for storage and models: int64 scalar (discrete, checked in range),
        float32 vector clipped into the box, or empty (none)."""
        if self.kind == "discrete":
            a = int(np.asarray(action).reshape(-1)[0])
            if not 0 <= a < self.n:
                raise ReverieError(f"action {a} is outside 0..{self.n - 1} ({', '.join(self.names or ())})")
            return np.asarray(a, dtype=np.int64)
        if self.kind == "box":
            v = np.asarray(action, np.float32).reshape(self.shape)
            return np.clip(v, self.low, self.high).astype(np.float32)
        return np.zeros((0,), np.float32)

    def decode(self, array: Any) -> Any:
        """Stored array -> the action an env wrapped with `NormalizedActions` accepts; None for none."""
        if self.kind == "discrete":
            return int(np.asarray(array).reshape(-1)[0])
        if self.kind == "box":
            return np.asarray(array, np.float32).reshape(self.shape)
        return None

    def features(self, action: Any) -> np.ndarray:
        """Float vector a model consumes: one-hot (discrete) or the box scaled to [-1, 1]."""
        if self.kind == "discrete":
            out = np.zeros(self.n, np.float32)
            out[int(np.asarray(action).reshape(-1)[0])] = 1.0
            return out
        if self.kind == "box":
            low, high = np.asarray(self.low, np.float32), np.asarray(self.high, np.float32)
            v = np.asarray(action, np.float32).reshape(-1)
            return (2 * (v - low) / np.maximum(high - low, 1e-6) - 1).clip(-1, 1).astype(np.float32)
        return np.zeros(0, np.float32)

    def space(self) -> spaces.Space:  # type: ignore[type-arg]
        """The Gymnasium action space; plain video ("none") has one action: continue."""
        from gymnasium import spaces

        if self.kind == "box":
            low = np.asarray(self.low, np.float32).reshape(self.shape)
            high = np.asarray(self.high, np.float32).reshape(self.shape)
            return spaces.Box(low, high, self.shape, np.float32)
        return spaces.Discrete(self.n if self.kind == "discrete" else 1)
