"""Player input -> actions of a world's action spec.

Every input device is reduced to one `InputState`: the keys held, three analog *intent* axes and
named action buttons. Intents are world-neutral (`forward`, `side` = strafe right, `turn` = turn
right, each in [-1, 1]) plus named acts (`fire`, `jump`, ...; see reverie.engine.intents). An
`InputMapper` per spec turns them into a discrete index (the action whose name means the nearest
intent) or a box vector (axes matched by name). Actions no intent reaches get numbered keys, so
every action of any discrete space is playable; `bindings` says which keys reach which action, and
the page shows exactly that. The browser stays ignorant of worlds: it sends what the player holds,
the engine decides what that means here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reverie.engine.intents import ACT_KEYS, KEY_ACTS, KEY_MOVES, Intent, act_of_word, read_name
from reverie.worlds.action_spec import ActionSpec

# Keys that reach the actions (or box axes) no intent reaches, in the order they are handed out.
NUMBER_KEYS = tuple(f"digit{i}" for i in (*range(1, 10), 0)) + tuple(f"key{c}" for c in "zxvbghklui" + "oytm")
_PLAIN = (
    {str(i): f"digit{i}" for i in range(10)} | {c: f"key{c}" for c in "zxvbghkluioytmjfc"} | {" ": "space"}
)
# One key per movement direction, to write down a binding ("W+D").
_MOVE_KEYS = (("keyw", "keys"), ("keye", "keyq"), ("keyd", "keya"))  # (positive, negative) per axis
# Act mismatches cost more than any movement distance: holding fire never picks an action without it
# while one with it exists.
_ACT_COST = 16.0

# Below this intent magnitude a stick at rest (or drifting) means noop.
DEADZONE = 0.2


def canonical_key(key: str) -> str:
    """'1' -> 'digit1', ' ' -> 'space': plain characters as the `KeyboardEvent.code` they come from."""
    return _PLAIN.get(key, key)


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
            v += KEY_MOVES.get(k, (0.0, 0.0, 0.0))
        return np.clip(np.nan_to_num(v), -1.0, 1.0)

    def acts(self) -> frozenset[str]:
        return frozenset(KEY_ACTS[k] for k in self.held() if k in KEY_ACTS)

    def held(self) -> frozenset[str]:
        return frozenset(canonical_key(k) for k in self.keys)


@dataclass(frozen=True)
class Binding:
    """Keys of one action: discrete, pressed together (none: an on-screen button only); box, the
    keys that move the axis (either way)."""

    name: str
    keys: tuple[str, ...]


@dataclass
class InputMapper:
    """Maps `InputState` to actions of one action spec (see reverie.worlds.actions)."""

    spec: dict[str, Any]
    actions: ActionSpec = field(init=False)  # `spec`, typed
    bindings: list[Binding] = field(init=False)
    _moves: np.ndarray = field(init=False)  # (n, 3) intent of each discrete action, NaN if unknown
    _acts: list[frozenset[str]] = field(init=False)
    _numbered: dict[str, int] = field(init=False)  # number key -> action index (box: axis index)
    _folds_side: bool = field(init=False)

    def __post_init__(self) -> None:
        self.actions = ActionSpec.of(self.spec)
        kind = self.actions.kind
        self.names = [str(n) for n in self.actions.names or ()]
        self._numbered, self.bindings = {}, []
        if kind == "discrete":
            intents = [read_name(n) for n in self.names]
            unknown = (math.nan,) * 3
            self._moves = np.array([i.move if i else unknown for i in intents], np.float64).reshape(-1, 3)
            self._acts = [i.acts if i else frozenset() for i in intents]
            # Worlds without strafing (Drive, Atari) read sideways sticks and Q/E as steering.
            self._folds_side = not any(i is not None and i.move[1] != 0 for i in intents)
            self.bindings = self._discrete_bindings(intents)
        else:
            self._moves, self._acts = np.zeros((0, 3)), []
            self._folds_side = "strafe" not in self.names and "side" not in self.names
            if kind == "box":
                self.bindings = self._box_bindings()

    # -- which keys reach what -------------------------------------------------------------------
    def _discrete_bindings(self, intents: list[Intent | None]) -> list[Binding]:
        """The fewest keys that give each action; actions no intent reaches get a number key."""
        keys: list[tuple[str, ...] | None] = []
        for i, intent in enumerate(intents):
            combo = self._combo(intent) if intent is not None else None
            if combo is not None and self(InputState(keys=frozenset(combo))) == i:
                keys.append(combo)
            else:  # the null action (index 0) is what holding nothing gives
                keys.append(() if i == 0 else None)
        free = iter(NUMBER_KEYS)
        for i, combo in enumerate(keys):
            if combo is None:
                number = next(free, None)
                if number is not None:
                    self._numbered[number] = i
                keys[i] = (number,) if number else ()
        return [Binding(n, k if k is not None else ()) for n, k in zip(self.names, keys)]

    def _combo(self, intent: Intent) -> tuple[str, ...]:
        move = list(intent.move)
        if self._folds_side:
            move = [move[0], 0.0, max(-1.0, min(1.0, move[2] + move[1]))]
        combo = [pos if v > 0 else neg for v, (pos, neg) in zip(move, _MOVE_KEYS) if v != 0]
        return tuple(combo + [ACT_KEYS[a] for a in sorted(intent.acts)])

    def _box_bindings(self) -> list[Binding]:
        out, free = [], iter(NUMBER_KEYS)
        for i, name in enumerate(self.names):
            keys = _BOX_KEYS.get(name)
            act = act_of_word(name)
            if keys is None and act is not None:
                keys = (ACT_KEYS[act],)
            if keys is None:
                number = next(free, None)
                keys = (number,) if number else ()
                if number:
                    self._numbered[number] = i
            out.append(Binding(name, keys))
        return out

    # -- input -> action -------------------------------------------------------------------------
    def __call__(self, state: InputState) -> Any:
        kind = self.actions.kind
        if kind == "none":
            return None
        f, s, r = state.intent()
        if self._folds_side:
            s, r = 0.0, float(np.clip(r + s, -1, 1))
        if kind == "discrete":
            return self._discrete(state, np.array([f, s, r]))
        return self._box(state, f, s, r)

    def _number_held(self, state: InputState) -> int | None:
        held = state.held()
        return next((i for key, i in self._numbered.items() if key in held), None)

    def _discrete(self, state: InputState, v: np.ndarray) -> int:
        for i, name in enumerate(self.names):  # an on-screen button names its action directly
            if name in state.buttons:
                return i
        numbered = self._number_held(state)
        if numbered is not None:
            return numbered
        acts = state.acts()
        if np.linalg.norm(v) < DEADZONE:
            if not acts:
                return 0
            v = np.zeros(3)
        # Nearest intent; unknown names (NaN) never win, and acts must match before movement counts.
        d = np.nansum((self._moves - v) ** 2, axis=1)
        d += _ACT_COST * np.array([len(a ^ acts) for a in self._acts], np.float64).reshape(d.shape)
        d[np.isnan(self._moves).any(axis=1)] = np.inf
        return int(np.argmin(d)) if np.isfinite(d).any() else 0

    def _box(self, state: InputState, f: float, s: float, r: float) -> np.ndarray:
        by_name = {
            "move": f, "forward": f, "strafe": s, "side": s, "turn": r, "steer": r,
            "throttle": max(f, 0.0), "accelerate": max(f, 0.0), "gas": max(f, 0.0), "brake": max(-f, 0.0),
        }  # fmt: skip
        held = state.held()  # an axis that is neither movement nor steering is a button: its key pushes it up
        pressed = {b.name for b in self.bindings if b.name not in by_name and b.keys and set(b.keys) <= held}
        v = np.array(
            [by_name.get(n, float(n in state.buttons or n in pressed)) for n in self.names], np.float32
        )
        v[np.abs(v) < DEADZONE / 2] = 0.0  # stick drift is not an action
        return np.clip(v, self.actions.low, self.actions.high).astype(np.float32)


# Keys of the box axes the sticks drive, as players name them (W/S, Q/E, A/D).
_BOX_KEYS: dict[str, tuple[str, ...]] = {
    "move": ("keyw", "keys"), "forward": ("keyw", "keys"), "strafe": ("keyq", "keye"), "side": ("keyq", "keye"),
    "turn": ("keya", "keyd"), "steer": ("keya", "keyd"),
    "throttle": ("keyw",), "accelerate": ("keyw",), "gas": ("keyw",), "brake": ("keys",),
}  # fmt: skip
