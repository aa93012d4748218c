"""Log lines that a flood cannot multiply: at most one per key per interval, each saying how many
like it were held back since the last. A hostile client sending thousands of bad messages a second
costs one line every LOG_INTERVAL_S, not a line (or a traceback) each."""

from __future__ import annotations

import logging
import time
from typing import Any

LOG_INTERVAL_S = 10.0


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, interval_s: float = LOG_INTERVAL_S) -> None:
        self.logger, self.interval_s = logger, interval_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def log(self, level: int, key: str, msg: str, *, exc_info: bool = False, **extra: Any) -> bool:
        """Log `msg` unless a line of `key` went out less than interval_s ago; True if logged."""
        now = time.monotonic()
        if now - self._last.get(key, -self.interval_s) < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        self.logger.log(level, msg, exc_info=exc_info, extra={**extra, "held_back": held})
        return True
