"""Serve: a thin ASGI shell around the engine (WebSocket stream, static player page, queue, limits,
metrics). Build it with `reverie.serve.app.create_app`; `reverie play` runs it on uvicorn."""

from __future__ import annotations
