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
from reverie.engine.views import make_backends
from reverie.serve import protocol as P
from reverie.serve.connection import Connection
from reverie.serve.guard import (
    WS_PING_INTERVAL_S,
    WS_PING_TIMEOUT_S,
    guarded_protocols,
)
from reverie.serve.origin import OriginGuard
from reverie.serve.server import ServeConfig, Server

log = logging.getLogger("reverie.serve")
STATIC = Path(__file__).parent / "static"


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
        trim = asyncio.create_task(srv.trim_memory())
        remember = asyncio.create_task(srv.remember_sessions())
        log.info("serving", extra={"world": srv.main.world, "backend": srv.main.name, "fps": cfg.fps,
                                   "max_sessions": cfg.max_sessions})  # fmt: skip
        try:
            yield
        finally:
            lag.cancel()
            refresh.cancel()
            trim.cancel()
            remember.cancel()
            await srv.remember_sessions(once=True)
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
