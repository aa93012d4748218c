"""Where reverie keeps what it can recompute: $REVERIE_CACHE, else $XDG_CACHE_HOME (or ~/.cache)/reverie.

Everything here is derived data (encoded latents, trained eval judges), keyed by a hash of what it was
derived from, so a stale entry is never reused and deleting the folder only costs time.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(kind: str) -> Path:
    """The cache folder for `kind` (e.g. "latents", "idm"); not created here."""
    root = os.environ.get("REVERIE_CACHE")
    if root:
        return Path(root) / kind
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "reverie" / kind
