"""Typed configs from saved or typed-in mappings: unknown keys are an error that lists the valid ones."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from reverie.errors import ReverieError

C = TypeVar("C")


def config_from_dict(cls: type[C], d: dict[str, Any], what: str) -> C:
    """`cls(**d)` for a dataclass `cls`, refusing keys it does not define (named as `what` keys)."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(d) - names
    if unknown:
        raise ReverieError(f"unknown {what} keys {sorted(unknown)}; accepted: {sorted(names)}")
    return cls(**d)
