"""Keys for a model whose actions are unnamed codes (a latent action stream: `noop, c1, c2, ...`).

A binding names what each code does (`c1 -> forward`); it lives beside the model in `keys.json` so
every player of the run gets it. Applying it renames the codes in the action spec, so the usual
intent reading (reverie.engine.intents) gives the bound codes W/S/A/D/Q/E and the arrows; codes left
unbound keep their numbered keys. Nothing else changes: action indices stay what the model learnt.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from reverie.checkpoint import CONFIG_FILE
from reverie.engine.intents import read_name
from reverie.errors import ReverieError

KEYS_FILE = "keys.json"
# What a code may be bound to: each is a name the intent reader turns into the usual keys.
BIND_ACTIONS = (
    "forward", "back", "turn_left", "turn_right", "strafe_left", "strafe_right",
    "forward_left", "forward_right", "back_left", "back_right", "fire", "jump", "use",
)  # fmt: skip


def codes_of(spec: dict[str, Any]) -> list[str]:
    """The spec's action names that mean nothing to a player (the codes a binding may name)."""
    if spec.get("type") != "discrete":
        return []
    return [str(n) for n in spec.get("names") or () if read_name(str(n)) is None]


def check_binding(binding: Any, spec: dict[str, Any], where: str = "binding") -> dict[str, str]:
    """`binding` as {code: action}, or an error naming what is wrong and what is accepted."""
    codes = codes_of(spec)
    if not isinstance(binding, dict):
        raise ReverieError(f"{where}: expected an object of code -> action, got {type(binding).__name__}")
    seen: dict[str, str] = {}
    for code, action in binding.items():
        if code not in codes:
            raise ReverieError(
                f"{where}: the model has no code {code!r}; accepted: {', '.join(codes) or 'none'}"
            )
        if not isinstance(action, str) or action not in BIND_ACTIONS:
            raise ReverieError(
                f"{where}: {code}={action!r} is not an action; accepted: {', '.join(BIND_ACTIONS)}"
            )
        if action in seen:
            raise ReverieError(f"{where}: {action} is bound twice ({seen[action]} and {code}); one code each")
        seen[action] = code
    return dict(binding)


def run_spec(run: str | os.PathLike[str]) -> dict[str, Any]:
    """The action spec a dynamics run was trained with (read from its config, no weights loaded)."""
    path = Path(run) / CONFIG_FILE
    try:
        config = json.loads(path.read_text())
        return dict(config["data"]["action_spec"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ReverieError(f"{run}: not a dynamics run with an action spec ({e})") from e


def read_binding(run: str | os.PathLike[str], spec: dict[str, Any]) -> dict[str, str]:
    """The run's saved binding, checked against its spec; {} when it has none."""
    path = Path(run) / KEYS_FILE
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
    except ValueError as e:
        raise ReverieError(f"{path}: not JSON ({e}); remove it or run `reverie bind-keys --clear`") from e
    return check_binding(raw, spec, str(path))


def write_binding(run: str | os.PathLike[str], spec: dict[str, Any], binding: dict[str, str]) -> Path:
    """Save a checked binding (an empty one removes the file). Temp file + rename: a reader sees
    the old binding or the new one, never half of one."""
    binding = check_binding(binding, spec)
    path = Path(run) / KEYS_FILE
    if not binding:
        path.unlink(missing_ok=True)
        return path
    fd, tmp = tempfile.mkstemp(prefix=".keys.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(binding, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def apply_binding(spec: dict[str, Any], binding: dict[str, str]) -> dict[str, Any]:
    """The spec with bound codes renamed to their actions; `codes` keeps the original names."""
    if not binding:
        return spec
    names = [str(n) for n in spec.get("names") or ()]
    return spec | {"names": [binding.get(n, n) for n in names], "codes": names}
