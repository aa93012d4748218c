"""The controls the player page shows and sends for one world: its own keys, gamepad buttons and
touch buttons, taken from the engine's bindings so the page can never promise a key the engine
ignores.

    page_controls(spec) -> {"bindings": [{"name", "keys", "label"}], "keys": [...],
                            "touch": [{"label", "key" | "action"}], "pad": {"0": "space", ...}}

`keys` are every `KeyboardEvent.code` (lower-cased) the page should capture for this world;
`touch` is the on-screen button row (strafe arrows, acts, numbered actions, and actions no key
reaches); `pad` maps standard-gamepad button indices to the keys they press.
"""

from __future__ import annotations

from typing import Any

from reverie.engine.controls import InputMapper
from reverie.engine.intents import KEY_ACTS, KEY_MOVES

# Standard-mapping gamepad buttons that carry world actions: A, B, X, Y, then the stick clicks.
# The shoulders, triggers and d-pad stay movement (see player.js).
PAD_BUTTONS = (0, 1, 2, 3, 10, 11)
_ARROWS = {"keyw": "arrowup", "keys": "arrowdown", "keya": "arrowleft", "keyd": "arrowright"}
_SYMBOLS = {"arrowup": "↑", "arrowdown": "↓", "arrowleft": "←", "arrowright": "→", "space": "Space",
            "shiftleft": "Shift", "shiftright": "Shift"}  # fmt: skip
_MOVEMENT = frozenset(k for k in KEY_MOVES if k.startswith(("key", "arrow")))


def key_label(code: str) -> str:
    """'keyw' -> 'W', 'digit1' -> '1', 'arrowup' -> '↑', 'space' -> 'Space'."""
    if code in _SYMBOLS:
        return _SYMBOLS[code]
    for prefix in ("key", "digit"):
        if code.startswith(prefix):
            return code[len(prefix) :].upper()
    return code


def _label(keys: tuple[str, ...], kind: str) -> str:
    if not keys:
        return ""
    if kind == "box":
        return "/".join(key_label(k) for k in keys)
    if len(keys) == 1 and keys[0] in _ARROWS:  # a single move also goes by its arrow key
        return f"{key_label(keys[0])}/{key_label(_ARROWS[keys[0]])}"
    return "+".join(key_label(k) for k in keys)


def page_controls(spec: dict[str, Any]) -> dict[str, Any]:
    """What the page needs to show and send this world's controls (see the module doc)."""
    mapper = InputMapper(spec)
    kind = mapper.actions.kind
    bindings = [
        {"name": b.name, "keys": list(b.keys), "label": _label(b.keys, kind)} for b in mapper.bindings
    ]
    used = [k for b in mapper.bindings for k in b.keys]
    # Keys beyond the sticks' reach (acts and numbered actions), in the order the world lists them.
    extras = list(dict.fromkeys(k for k in used if k not in _MOVEMENT))
    touch: list[dict[str, str]] = []
    if "keyq" in used or "keye" in used:  # the touch stick moves and turns; strafing needs buttons
        touch += [{"label": "◀", "key": "keyq"}, {"label": "▶", "key": "keye"}]
    for key in extras:
        touch.append({"label": _extra_name(key, mapper), "key": key})
    touch += [
        {"label": b.name, "action": b.name} for b in mapper.bindings if not b.keys and b.name != _null(mapper)
    ]
    return {
        "bindings": bindings,
        "keys": sorted(_MOVEMENT | set(used)),
        "touch": touch,
        "pad": {str(b): k for b, k in zip(PAD_BUTTONS, extras)},
    }


def _extra_name(key: str, mapper: InputMapper) -> str:
    """What a touch button for `key` says: its act ("fire"), else the action its number plays."""
    if key in KEY_ACTS:
        return KEY_ACTS[key]
    return next(b.name for b in mapper.bindings if key in b.keys)


def _null(mapper: InputMapper) -> str | None:
    return mapper.names[0] if mapper.actions.is_discrete and mapper.names else None
