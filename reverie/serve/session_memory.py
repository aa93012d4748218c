"""How long sessions lasted on this machine before, remembered across server restarts, so that the
queue's first expected waits come from data rather than a guess (serve/queue.py).

One small JSON file for all servers of this user, one entry per played model or world:

    {"version": 1, "entries": {"reverie/Dungeon-v0": {"mean_s": 41.5, "sessions": 120}}}

Reading never fails a server: a missing, oversized, unreadable or malformed file (or entry) is no
memory, logged once. Writing is atomic (a temp file in the same folder, then a rename), so a kill
mid-write leaves the old file whole, and an unwritable folder costs one log line, never a session.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("reverie.serve")

VERSION = 1
MAX_FILE_BYTES = 64 * 1024  # a bigger file is not ours (or not sane): ignored, never parsed
MAX_ENTRIES = 64  # the least recently written entries go first
MAX_SESSION_S = 7 * 24 * 3600.0  # a remembered mean beyond a week is nonsense, not data


@dataclass(frozen=True)
class Remembered:
    mean_s: float  # mean session length, seconds (a mean that forgets: recent sessions weigh most)
    sessions: int  # how many sessions it was measured on, across restarts


def default_path() -> Path:
    """$XDG_CACHE_HOME/reverie/sessions.json (~/.cache/reverie/sessions.json)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "reverie" / "sessions.json"


def _read_entries(path: Path) -> dict[str, dict[str, float]]:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
        doc = json.loads(path.read_text(encoding="utf-8"))
        if (
            not isinstance(doc, dict)
            or doc.get("version") != VERSION
            or not isinstance(doc.get("entries"), dict)
        ):
            raise ValueError(f"not a version-{VERSION} session memory")
        return doc["entries"]
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, UnicodeDecodeError) as e:
        log.warning("session memory %s ignored: %s", path, e)
        return {}


def load(path: Path, key: str) -> Remembered | None:
    """What `path` remembers of `key`'s sessions; None where it remembers nothing usable."""
    e = _read_entries(path).get(key)
    if e is None:
        return None
    mean, n = (e.get("mean_s"), e.get("sessions")) if isinstance(e, dict) else (None, None)
    if (
        isinstance(mean, (int, float)) and not isinstance(mean, bool) and math.isfinite(mean)
        and 0 < mean <= MAX_SESSION_S and isinstance(n, int) and not isinstance(n, bool) and n >= 1
    ):  # fmt: skip
        return Remembered(float(mean), n)
    log.warning("session memory %s: entry %r ignored (malformed)", path, key)
    return None


def save(path: Path, key: str, remembered: Remembered) -> None:
    """Write `key`'s entry, keeping the others (at most MAX_ENTRIES, newest last)."""
    try:
        entries = {k: v for k, v in _read_entries(path).items() if k != key}
        entries[key] = {"mean_s": round(remembered.mean_s, 2), "sessions": remembered.sessions}
        entries = dict(list(entries.items())[-MAX_ENTRIES:])
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".sessions-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"version": VERSION, "entries": entries}, f)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        log.warning("session memory %s not written: %s", path, e)
