"""Shared test settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Eval caches trained classifiers under REVERIE_CACHE; tests must not write into the user's cache."""
    path = tmp_path_factory.mktemp("reverie_cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("REVERIE_CACHE", str(path))
    yield path
    mp.undo()
