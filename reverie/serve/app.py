"""The ASGI app: one static player page, one WebSocket per player, /health and /metrics.

    app = create_app(ServeConfig(world="reverie/Dungeon-v0"))   # then: uvicorn.run(app, ...)

The shell is thin: a connection reads client messages into its `PlaySession` (the engine's input
slot) and sends whatever newest frame the clock left there. One sender per connection keeps the
WebSocket writes in order; frames never queue up behind a slow client (see engine/clock.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

import reverie
from reverie.engine.backends import Backend
from reverie.engine.clock import ClockConfig, EngineClock
from reverie.engine.encode import EncoderConfig
from reverie.engine.views import make_backends
from reverie.serve import protocol as P
from reverie.serve.connection import Connection
from reverie.serve.guard import (
    MAX_CONNECTIONS_PER_ADDRESS,
    REQUEST_TIMEOUT_S,
    WS_PING_INTERVAL_S,
    WS_PING_TIMEOUT_S,
    ConnectionTable,
    guarded_protocols,
)
from reverie.serve.limits import BYTE_BURST, BYTES_PER_S, ByteBudgets
from reverie.serve.metrics import Metrics
from reverie.serve.origin import OriginGuard
from reverie.serve.page_controls import page_controls
from reverie.serve.queue import QUEUE_REFRESH_S, AdmissionQueue
from reverie.serve.ratelog import RateLimitedLog
from reverie.worlds import DEFAULT_WORLD

log = logging.getLogger("reverie.serve")
STATIC = Path(__file__).parent / "static"


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
            ClockConfig(fps=cfg.fps, encoder=EncoderConfig(cfg.codec, cfg.quality)),
            on_tick=self.metrics.on_tick,
        )
        self.queue = AdmissionQueue(cfg.max_sessions, cfg.time_limit_s)
        self.connections = ConnectionTable(cfg.max_per_address)
        self.loop_lag_s = 0.0
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

    async def watch_loop_lag(self) -> None:
        """How late a 50 ms sleep wakes up: the latency every connection feels."""
        worst, since = 0.0, time.monotonic()
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(0.05)
            worst = max(worst, time.monotonic() - t0 - 0.05)
            if time.monotonic() - since >= 1.0:
                self.loop_lag_s, worst, since = worst, 0.0, time.monotonic()


def create_app(cfg: ServeConfig | None = None, backends: dict[str, Backend] | None = None) -> Starlette:
    """The ASGI app. Backends are built here, so a bad world or model fails before serving."""
    from PIL import Image

    cfg = cfg or ServeConfig()
    Image.MAX_IMAGE_PIXELS = P.MAX_IMAGE_PIXELS  # PIL refuses decompression bombs beyond this
    srv = Server(cfg, backends or make_backends(cfg.model, cfg.world, cfg.size, cfg.continuous))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        srv.clock.start()
        lag = asyncio.create_task(srv.watch_loop_lag())
        refresh = asyncio.create_task(srv.refresh_queue())
        log.info("serving", extra={"world": srv.main.world, "backend": srv.main.name, "fps": cfg.fps,
                                   "max_sessions": cfg.max_sessions})  # fmt: skip
        try:
            yield
        finally:
            lag.cancel()
            refresh.cancel()
            srv.clock.stop()
            for b in srv.backends.values():
                close_all = getattr(b, "close_all", None)
                if close_all is not None:
                    close_all()

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def health(request: Request) -> Response:
        return JSONResponse({
            "status": "ok", "version": reverie.__version__, "world": srv.main.world, "backend": srv.main.name,
            "active_sessions": len(srv.queue.active), "max_sessions": cfg.max_sessions,
            "queue_length": len(srv.queue), "fps": cfg.fps, "ticks": srv.clock.ticks,
        })  # fmt: skip

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(srv.metrics.render(), media_type="text/plain; version=0.0.4")

    async def play(ws: WebSocket) -> None:
        await ws.accept()
        await Connection(srv, ws).run()

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/health", health),
            Route("/metrics", metrics),
            WebSocketRoute("/ws", play),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        lifespan=lifespan,
        middleware=[
            Middleware(OriginGuard, allow_origins=cfg.allow_origins, hosts=cfg.hosts, ratelog=srv.ratelog)
        ],
    )
    app.state.reverie = srv
    return app


def uvicorn_options(app: Starlette) -> dict[str, Any]:
    """uvicorn.Config/run keyword arguments every reverie server runs with: message size cap,
    keep-alive pings, and the guarded protocols (connection cap per address, request deadline)."""
    srv = app.state.reverie
    http, ws = guarded_protocols(srv.connections, srv.cfg.request_timeout_s)
    return {
        "http": http, "ws": ws, "ws_max_size": P.MAX_MESSAGE_BYTES, "ws_ping_interval": WS_PING_INTERVAL_S,
        "ws_ping_timeout": WS_PING_TIMEOUT_S, "log_level": "warning", "access_log": False,
    }  # fmt: skip


class BackgroundServer:
    """Runs an app on uvicorn in a daemon thread (tests, notebooks): `with BackgroundServer(app) as url:`."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.config = uvicorn.Config(app, host=host, port=port, lifespan="on", **uvicorn_options(app))
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, name="reverie-uvicorn", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
