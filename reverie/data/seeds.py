"""Seed sets written compactly as inclusive ranges, so a model's config can say what it was trained on."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["expand_ranges", "seed_ranges"]


def seed_ranges(seeds: Iterable[int | None]) -> list[list[int]]:
    """Sorted inclusive [lo, hi] ranges covering exactly the given seeds (None is skipped)."""
    out: list[list[int]] = []
    for s in sorted({int(s) for s in seeds if s is not None}):
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


def expand_ranges(ranges: Iterable[Iterable[int]]) -> set[int]:
    """The seeds of `seed_ranges` output."""
    seeds: set[int] = set()
    for lo, hi in ranges:
        seeds.update(range(int(lo), int(hi) + 1))
    return seeds
