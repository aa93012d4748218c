"""What an action name means to a player: a movement intent and a set of named acts.

Movement is three world-neutral axes (`forward`, `side` = strafe right, `turn` = turn right, each in
[-1, 1]); acts are named buttons (`fire`, `jump`, `use`, `crouch`, `speed`). A name is read word by
word, so the built-in worlds, Atari ("uprightfire"), ViZDoom ("move_forward+attack"), MiniWorld
and most hand-named Gymnasium spaces get their meaning without a table per game. Names that cannot
be read ("pickup", "a7", "d0=2") have no intent: the player reaches them by numbered keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Keys are `KeyboardEvent.code` values lower-cased ("keyw", "arrowup"); plain letters ("w") too.
KEY_MOVES: dict[str, tuple[float, float, float]] = {
    "w": (1, 0, 0), "keyw": (1, 0, 0), "arrowup": (1, 0, 0),
    "s": (-1, 0, 0), "keys": (-1, 0, 0), "arrowdown": (-1, 0, 0),
    "a": (0, 0, -1), "keya": (0, 0, -1), "arrowleft": (0, 0, -1),
    "d": (0, 0, 1), "keyd": (0, 0, 1), "arrowright": (0, 0, 1),
    "q": (0, -1, 0), "keyq": (0, -1, 0),
    "e": (0, 1, 0), "keye": (0, 1, 0),
}  # fmt: skip

# The key of each act, and the words that name it in action names.
ACT_KEYS: dict[str, str] = {
    "fire": "space",
    "jump": "keyj",
    "use": "keyf",
    "crouch": "keyc",
    "speed": "shiftleft",
}
_ACT_WORDS: dict[str, str] = {
    "fire": "fire", "attack": "fire", "shoot": "fire",
    "jump": "jump", "use": "use", "interact": "use", "crouch": "crouch", "speed": "speed", "sprint": "speed",
}  # fmt: skip
KEY_ACTS: dict[str, str] = {key: act for act, key in ACT_KEYS.items()} | {"shiftright": "speed"}

# Whole names whose words would mislead (LunarLander's engines are thrust, not a weapon).
_WHOLE_NAMES: dict[str, tuple[float, float, float]] = {
    "fire_main": (1, 0, 0), "fire_left": (0, 0, -1), "fire_right": (0, 0, 1),
    "torque_minus": (0, 0, -1), "torque_plus": (0, 0, 1),
}  # fmt: skip

_FORWARD = {"forward": 1, "up": 1, "accelerate": 1, "gas": 1, "go": 1, "back": -1, "backward": -1,
            "down": -1, "brake": -1, "reverse": -1}  # fmt: skip
_SIDEWAYS = {"left": -1, "right": 1}
_STRAFE_WORDS = {"strafe", "move", "side"}  # "move_left" slides; a bare "left" turns, as in the worlds
_FILLER = {"noop", "none", "idle", "turn", "look", "rotate", "push"} | _STRAFE_WORDS
# Longest first, so "downright" reads as down + right and "backward" is not back + "ward".
_WORDS = sorted({*_FORWARD, *_SIDEWAYS, *_ACT_WORDS, *_FILLER}, key=len, reverse=True)


@dataclass(frozen=True)
class Intent:
    """(forward, side, turn) and the acts an action stands for."""

    move: tuple[float, float, float]
    acts: frozenset[str] = frozenset()


def act_of_word(word: str) -> str | None:
    """The act a word names ("attack" -> "fire"), else None."""
    return _ACT_WORDS.get(word.lower())


def _words(token: str) -> list[str] | None:
    """Split a run of known words written together ("uprightfire"); None if any part is unknown."""
    out: list[str] = []
    while token:
        word = next((w for w in _WORDS if token.startswith(w)), None)
        if word is None:
            return None
        out.append(word)
        token = token[len(word) :]
    return out


def read_name(name: str) -> Intent | None:
    """The intent of an action name, or None when a word of it means nothing to a player here."""
    name = name.lower()
    if name in _WHOLE_NAMES:
        return Intent(_WHOLE_NAMES[name])
    words: list[str] = []
    for token in re.split(r"[^a-z]+", name):
        split = _words(token)
        if split is None:
            return None
        words += split
    if not words:
        return None
    forward = float(sum(_FORWARD.get(w, 0) for w in words))
    sideways = float(sum(_SIDEWAYS.get(w, 0) for w in words))
    strafes = bool(_STRAFE_WORDS & set(words)) and "turn" not in words and "look" not in words
    move = (max(-1.0, min(1.0, forward)), sideways if strafes else 0.0, 0.0 if strafes else sideways)
    return Intent(move, frozenset(_ACT_WORDS[w] for w in words if w in _ACT_WORDS))
