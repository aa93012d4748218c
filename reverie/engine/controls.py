"""Player input -> actions of a world's action spec.

Every input device is reduced to one `InputState`: the keys held, three analog *intent* axes and
named action buttons. Intents are world-neutral (`forward`, `side` = strafe right, `turn` = turn
right, each in [-1, 1]); `ActionMapper`s per spec turn them into a discrete index (the nearest
named action) or a box vector (axes matched by name). This keeps the browser ignorant of worlds:
it sends what the player does, the engine decides what that means here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reverie.errors import ReverieError

# Keys are `KeyboardEvent.code` values lower-cased ("keyw", "arrowup") or plain letters ("w").
_KEY_INTENTS: dict[str, tuple[float, float, float]] = {
    "w": (1, 0, 0), "keyw": (1, 0, 0), "arrowup": (1, 0, 0),
    "s": (-1, 0, 0), "keys": (-1, 0, 0), "arrowdown": (-1, 0, 0),
    "a": (0, 0, -1), "keya": (0, 0, -1), "arrowleft": (0, 0, -1),
    "d": (0, 0, 1), "keyd": (0, 0, 1), "arrowright": (0, 0, 1),
    "q": (0, -1, 0), "keyq": (0, -1, 0),
    "e": (0, 1, 0), "keye": (0, 1, 0),
}  # fmt: skip
KNOWN_KEYS = frozenset(_KEY_INTENTS)

# Intent (forward, side, turn) of the discrete action names of the built-in worlds (and common
# Gymnasium names). W+A gives forward_left: "left/right" combined with moving means turning, as
# in the worlds themselves. Names missing here are only reachable through `buttons`.
_NAME_INTENTS: dict[str, tuple[float, float, float]] = {
    "noop": (0, 0, 0),
    "forward": (1, 0, 0), "move_forward": (1, 0, 0), "up": (1, 0, 0), "accelerate": (1, 0, 0),
    "back": (-1, 0, 0), "backward": (-1, 0, 0), "move_back": (-1, 0, 0), "down": (-1, 0, 0),
    "brake": (-1, 0, 0),
    "turn_left": (0, 0, -1), "left": (0, 0, -1), "turn_right": (0, 0, 1), "right": (0, 0, 1),
    "strafe_left": (0, -1, 0), "move_left": (0, -1, 0),
    "strafe_right": (0, 1, 0), "move_right": (0, 1, 0),
    "forward_left": (1, 0, -1), "forward_right": (1, 0, 1),
    "accelerate_left": (1, 0, -1), "accelerate_right": (1, 0, 1),
}  # fmt: skip

# Below this intent magnitude a stick at rest (or drifting) means noop.
DEADZONE = 0.2


@dataclass
class InputState:
    """What the player holds right now. `seq` is the client's sequence number of this state."""

    keys: frozenset[str] = frozenset()
    forward: float = 0.0  # analog intents in [-1, 1] (sticks, touch joystick)
    side: float = 0.0
    turn: float = 0.0
    buttons: frozenset[str] = frozenset()  # action names held directly (on-screen buttons)
    seq: int = 0

    def intent(self) -> np.ndarray:
        """(forward, side, turn): keys and analog axes added, clipped to [-1, 1]."""
        v = np.array([self.forward, self.side, self.turn], np.float64)
        for k in self.keys:
            v += _KEY_INTENTS.get(k, (0.0, 0.0, 0.0))
        return np.clip(np.nan_to_num(v), -1.0, 1.0)


@dataclass
class ActionMapper:
    """Maps `InputState` to actions of one action spec (see reverie.worlds.actions)."""

    spec: dict[str, Any]
    _intents: np.ndarray = field(init=False)  # (n, 3) intent of each discrete action, NaN if unknown
    _folds_side: bool = field(init=False)

    def __post_init__(self) -> None:
        kind = self.spec.get("type")
        if kind not in ("discrete", "box", "none"):
            raise ReverieError(f"unknown action spec type {kind!r}: accepted discrete, box, none")
        names = [str(n) for n in self.spec.get("names", [])]
        self.names = names
        if kind == "discrete":
            self._intents = np.array([_NAME_INTENTS.get(n, (math.nan,) * 3) for n in names], np.float64)
            # Worlds without strafing (Drive) read sideways sticks and Q/E as steering.
            self._folds_side = not any(n.startswith(("strafe", "move_left", "move_right")) for n in names)
        else:
            self._intents = np.zeros((0, 3))
            self._folds_side = not any(n == "strafe" for n in names)

    def null(self) -> Any:
        if self.spec["type"] == "discrete":
            return 0
        if self.spec["type"] == "box":
            return np.clip(np.zeros(len(self.names), np.float32), self.spec["low"], self.spec["high"])
        return None

    def __call__(self, state: InputState) -> Any:
        kind = self.spec["type"]
        if kind == "none":
            return None
        f, s, r = state.intent()
        if self._folds_side:
            s, r = 0.0, float(np.clip(r + s, -1, 1))
        if kind == "discrete":
            return self._discrete(state, np.array([f, s, r]))
        return self._box(state, f, s, r)

    def _discrete(self, state: InputState, v: np.ndarray) -> int:
        for i, name in enumerate(self.names):  # an on-screen button names its action directly
            if name in state.buttons:
                return i
        if np.linalg.norm(v) < DEADZONE:
            return 0
        # Nearest named action; unknown names (NaN) never win.
        d = np.nansum((self._intents - v) ** 2, axis=1)
        d[np.isnan(self._intents).any(axis=1)] = np.inf
        return int(np.argmin(d)) if np.isfinite(d).any() else 0

    def _box(self, state: InputState, f: float, s: float, r: float) -> np.ndarray:
        by_name = {
            "move": f, "forward": f, "strafe": s, "side": s, "turn": r, "steer": r,
            "throttle": max(f, 0.0), "accelerate": max(f, 0.0), "gas": max(f, 0.0), "brake": max(-f, 0.0),
        }  # fmt: skip
        v = np.array([by_name.get(n, 1.0 if n in state.buttons else 0.0) for n in self.names], np.float32)
        v[np.abs(v) < DEADZONE / 2] = 0.0  # stick drift is not an action
        return np.clip(v, self.spec["low"], self.spec["high"]).astype(np.float32)

    def describe(self, action: Any) -> str:
        """Human-readable action, for logs and the HUD."""
        if self.spec["type"] == "discrete":
            return self.names[int(action)]
        if self.spec["type"] == "box":
            return " ".join(f"{n}={float(x):+.2f}" for n, x in zip(self.names, np.asarray(action)))
        return "none"
