"""Prometheus text-format metrics (a few counters, gauges, one histogram) and JSON-lines logs.

Hand-written because the format is four lines of rules and the server needs nothing else from a
client library. Counters are bumped from the event loop and the clock thread; CPython makes the
single `+=` under the lock cheap, and a scrape reads a consistent snapshot.
"""

from __future__ import annotations

import bisect
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

# Frame (tick) time buckets in seconds: a 30 FPS budget is 0.033.
FRAME_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.033, 0.05, 0.1, 0.25, 1.0)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, v: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, v)] += 1
        self.sum += v
        self.count += 1


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, float] = {}
        self.frame_time = Histogram(FRAME_BUCKETS)
        self.gauges: dict[str, Callable[[], float]] = {}
        self.help: dict[str, str] = {
            "reverie_frames_sent_total": "Frames sent to clients.",
            "reverie_frames_dropped_total": "Frames replaced by a newer one before a slow client took them.",
            "reverie_ticks_total": "Clock ticks.",
            "reverie_late_ticks_total": "Ticks that overran the frame budget.",
            "reverie_sessions_total": "Sessions started.",
            "reverie_messages_rejected_total": "Client messages refused (malformed, oversized, rate-limited).",
            "reverie_frame_seconds": "Time of one clock tick: batched step + encode of every session.",
        }

    def inc(self, name: str, by: float = 1.0, **labels: str) -> None:
        key = name + _labels(labels)
        with self._lock:
            self.counters[key] = self.counters.get(key, 0.0) + by

    def gauge(self, name: str, fn: Callable[[], float], help_text: str) -> None:
        self.gauges[name] = fn
        self.help[name] = help_text

    def on_tick(self, seconds: float, frames: int, late: bool) -> None:
        """The clock's hook (clock thread)."""
        with self._lock:
            self.frame_time.observe(seconds)
            self.counters["reverie_ticks_total"] = self.counters.get("reverie_ticks_total", 0) + 1
            if late:
                self.counters["reverie_late_ticks_total"] = (
                    self.counters.get("reverie_late_ticks_total", 0) + 1
                )

    def get(self, name: str, **labels: str) -> float:
        return self.counters.get(name + _labels(labels), 0.0)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            counters = dict(self.counters)
            h = self.frame_time
            hist = (list(h.counts), h.sum, h.count)
        for name in ("reverie_frames_sent_total", "reverie_frames_dropped_total", "reverie_ticks_total",
                     "reverie_late_ticks_total", "reverie_sessions_total"):  # fmt: skip
            counters.setdefault(name, 0.0)
        families: dict[str, list[str]] = {}
        for key, v in sorted(counters.items()):
            families.setdefault(key.split("{")[0], []).append(f"{key} {v:g}")
        for fam, samples in families.items():
            lines += [f"# HELP {fam} {self.help.get(fam, fam)}", f"# TYPE {fam} counter", *samples]
        for name, fn in self.gauges.items():
            lines += [f"# HELP {name} {self.help[name]}", f"# TYPE {name} gauge", f"{name} {fn():g}"]
        name = "reverie_frame_seconds"
        lines += [f"# HELP {name} {self.help[name]}", f"# TYPE {name} histogram"]
        counts, total, n = hist
        cum = 0
        for le, c in zip((*FRAME_BUCKETS, float("inf")), counts):
            cum += c
            lines.append(f'{name}_bucket{{le="{"+Inf" if le == float("inf") else f"{le:g}"}"}} {cum}')
        lines += [f"{name}_sum {total:.6f}", f"{name}_count {n}"]
        return "\n".join(lines) + "\n"


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra={...}` fields."""

    _STD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in self._STD})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr for reverie's loggers (uvicorn's access log stays off)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("reverie")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
