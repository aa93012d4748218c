"""What every connection of a server shares: its settings (`ServeConfig`) and its state (`Server`:
the backends, the engine clock, the admission queue, the connection table, budgets and metrics).

Apart from the ASGI app (`app.py`) so that a `Connection` can hold the server it belongs to without
the app and the connection importing each other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reverie.engine.backends import Backend
from reverie.engine.clock import ClockConfig, EngineClock
from reverie.engine.encode import EncoderConfig
from reverie.serve.guard import MAX_CONNECTIONS_PER_ADDRESS, REQUEST_TIMEOUT_S, ConnectionTable
from reverie.serve.limits import BYTE_BURST, BYTES_PER_S, TRIM_EVERY_S, ByteBudgets, trim_heap
from reverie.serve.metrics import Metrics
from reverie.serve.page_controls import page_controls
from reverie.serve.queue import QUEUE_REFRESH_S, AdmissionQueue
from reverie.serve.ratelog import RateLimitedLog
from reverie.serve.session_memory import Remembered, load, save
from reverie.worlds import DEFAULT_WORLD

log = logging.getLogger("reverie.serve")


@dataclass(frozen=True)
class ServeConfig:
    world: str = DEFAULT_WORLD
    model: str | None = None
    size: str = "64x64"
    continuous: bool = False
    fps: float = 30.0
    quality: int = 85
    codec: str = "jpeg"
    max_sessions: int = 4
    idle_timeout_s: float = 180.0  # no input for this long ends a session
    time_limit_s: float | None = None  # a session plays at most this long (None: no limit)
    rate_per_s: float = 120.0  # client messages per second, bursts of twice that
    bytes_per_s: float = BYTES_PER_S  # client bytes per second per address, bursts of BYTE_BURST
    max_per_address: int = MAX_CONNECTIONS_PER_ADDRESS  # open connections from one address
    request_timeout_s: float = REQUEST_TIMEOUT_S  # an HTTP connection starts a request this often
    allow_origins: tuple[str, ...] = ()  # page origins allowed besides the server's own ("*": any)
    hosts: tuple[str, ...] = ()  # host names served besides IP addresses and localhost
    allow_bind: bool = False  # a "bind" message may write keys.json in the model's run (never by default)
    session_memory: str | None = None  # JSON file remembering session lengths across restarts (None: none)
    pipeline: str = "auto"  # a model's frames decoded beside the next tick: auto | on | off (ClockConfig)


REMEMBER_EVERY_S = 10.0  # how often a changed mean session length is written to the session memory


class Server:
    """Everything the connections share; lives on `app.state.reverie`."""

    def __init__(self, cfg: ServeConfig, backends: dict[str, Backend]) -> None:
        self.cfg = cfg
        self.backends = backends
        self.main = backends["dream"]
        self.metrics = Metrics()
        self.ratelog = RateLimitedLog(log)
        self.byte_budgets = ByteBudgets(cfg.bytes_per_s, max(BYTE_BURST, 2 * cfg.bytes_per_s))
        self.clock = EngineClock(
            ClockConfig(fps=cfg.fps, encoder=EncoderConfig(cfg.codec, cfg.quality), pipeline=cfg.pipeline),
            on_tick=self.metrics.on_tick,
        )
        self.memory_key = cfg.model or cfg.world
        remembered = load(Path(cfg.session_memory), self.memory_key) if cfg.session_memory else None
        self.queue = AdmissionQueue(cfg.max_sessions, cfg.time_limit_s, remembered)
        self._saved: Remembered | None = remembered
        self.connections = ConnectionTable(cfg.max_per_address)
        self.loop_lag_s = 0.0
        self.previewing = False  # a "preview" is being made (one at a time per server)
        m = self.metrics
        m.gauge("reverie_active_sessions", lambda: len(self.queue.active), "Sessions playing now.")
        m.gauge("reverie_queue_length", lambda: len(self.queue), "Connections waiting for a slot.")
        m.gauge("reverie_open_connections", self.connections.count, "Open TCP connections.")
        m.gauge(
            "reverie_event_loop_lag_seconds", lambda: self.loop_lag_s, "Worst event-loop delay, last second."
        )

    def info(self) -> dict[str, Any]:
        return {
            "world": self.main.world,
            "backend": self.main.name,
            "size": [self.main.size.width, self.main.size.height],
            "fps": self.cfg.fps,
            "codec": self.cfg.codec,
            "actions": self.main.spec,
            "controls": page_controls(self.main.spec),  # this world's keys, pad and touch buttons
            "allow_bind": self.cfg.allow_bind,  # the page may save a key binding (play --allow-bind)
            "available_views": list(self.backends),
            "has_simulator": "real" in self.backends,
            "accepts_prompt": self.main.accepts_prompt,
            "accepts_image": self.main.accepts_image,
            "idle_timeout_s": self.cfg.idle_timeout_s,
            "time_limit_s": self.cfg.time_limit_s,
        }

    async def refresh_queue(self) -> None:
        while True:
            await asyncio.sleep(QUEUE_REFRESH_S)
            self.queue.refresh()

    async def remember_sessions(self, once: bool = False) -> None:
        """Write the mean session length to the session memory when it changed (every
        REMEMBER_EVERY_S, and `once` at shutdown), off the loop."""
        while self.cfg.session_memory:
            if not once:
                await asyncio.sleep(REMEMBER_EVERY_S)
            now = self.queue.remembered()
            if now is not None and now != self._saved:
                await asyncio.to_thread(save, Path(self.cfg.session_memory), self.memory_key, now)
                self._saved = now
            if once:
                return

    async def trim_memory(self) -> None:
        """Hand the heap's free memory back every TRIM_EVERY_S (see serve/limits.py), off the loop."""
        while True:
            await asyncio.sleep(TRIM_EVERY_S)
            await asyncio.to_thread(trim_heap)

    async def watch_loop_lag(self) -> None:
        """How late a 50 ms sleep wakes up: the latency every connection feels."""
        worst, since = 0.0, time.monotonic()
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(0.05)
            worst = max(worst, time.monotonic() - t0 - 0.05)
            if time.monotonic() - since >= 1.0:
                self.loop_lag_s, worst, since = worst, 0.0, time.monotonic()
