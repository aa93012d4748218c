"""Typed configs from saved or typed-in mappings: unknown keys are an error that lists the valid ones.

`config_from_dict` builds a config from a saved mapping; `apply_overrides` changes fields of one from
typed-in text (`--set KEY=VALUE`, YAML), each value read as its field's type; `field_notes` reads the
comment beside each field, so a config's source is also its documentation (`reverie train ... --help`).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import json
import textwrap
import tokenize
from dataclasses import fields
from typing import Any, TypeVar, get_type_hints

from reverie.errors import ReverieError

C = TypeVar("C")


def config_from_dict(cls: type[C], d: dict[str, Any], what: str) -> C:
    """`cls(**d)` for a dataclass `cls`, refusing keys it does not define (named as `what` keys)."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(d) - names
    if unknown:
        raise ReverieError(f"unknown {what} keys {sorted(unknown)}; accepted: {sorted(names)}")
    return cls(**d)


def config_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """ "key: old -> new" for every key whose value differs between two config dicts (a key missing
    from one side reads as "unset"), so an error names what changed instead of printing both."""
    old = old or {}
    unset = "unset"
    return [
        f"{k}: {old.get(k, unset)} -> {new.get(k, unset)}"
        for k in list(old) + [k for k in new if k not in old]
        if old.get(k, unset) != new.get(k, unset)
    ]


def _coerce(value: Any, typ: Any, key: str) -> Any:
    """value (from YAML or a `--set` string) as the field's type, or a ReverieError naming the key."""
    try:
        if isinstance(value, str) and typ is not str:
            value = json.loads(value) if typ not in (int, float, bool) else value
        if typ is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if typ is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if typ is float:
            return float(value)
        if typ is str:
            return str(value)
        origin = getattr(typ, "__origin__", None)
        if origin is tuple:
            return tuple(value)
        return value
    except (ValueError, TypeError, json.JSONDecodeError) as e:
        name = getattr(typ, "__name__", str(typ))
        raise ReverieError(f"bad value {value!r} for {key}: expected {name}") from e


def apply_overrides(obj: Any, overrides: dict[str, Any], where: str = "config") -> Any:
    """A copy of dataclass `obj` with `overrides` applied; unknown keys error listing the valid ones."""
    hints = get_type_hints(type(obj))
    valid = [f.name for f in fields(obj)]
    changes = {}
    for key, value in overrides.items():
        if key not in valid:
            raise ReverieError(f"unknown {where} key {key!r}; valid keys: {', '.join(valid)}")
        changes[key] = _coerce(value, hints[key], key)
    return dataclasses.replace(obj, **changes)


def field_notes(cls: type) -> dict[str, str]:
    """{field: the comment on its line} of dataclass `cls`, read from its source; a field without one
    is left out (the settings test asserts every training field has one)."""
    source = textwrap.dedent(inspect.getsource(cls))
    comments = {
        tok.start[0]: tok.string.lstrip("#").strip()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    notes = {}
    for node in body.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            # the comment sits on the field's first line, or on its last when the default spans lines
            note = comments.get(node.lineno) or comments.get(node.end_lineno or node.lineno)
            if note:
                notes[node.target.id] = note
    return notes
