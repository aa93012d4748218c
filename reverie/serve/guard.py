"""Connection limits below the app: a cap on connections per address, and a deadline for requests.

uvicorn takes protocol classes; these subclass its own (HTTP, then WebSocket after an upgrade) and
add two things the app cannot do, because a connection that never completes a request never reaches it:

- at most `per_address` open connections from one address; the next is answered 503 and closed;
- a plain HTTP connection must start a new request every `request_timeout_s` (or be answering
  one): a slowloris client trickling header bytes is closed, though each byte would restart
  uvicorn's keep-alive timer.

A WebSocket's liveness is uvicorn's ping/pong (WS_PING_INTERVAL_S, WS_PING_TIMEOUT_S): a peer that
stops answering is closed; one that answers but sends nothing ends its session by the idle timeout.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol
from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

MAX_CONNECTIONS_PER_ADDRESS = 32  # a queue of players behind one NAT fits; a slowloris army does not
REQUEST_TIMEOUT_S = 10.0
WS_PING_INTERVAL_S = 10.0
WS_PING_TIMEOUT_S = 10.0
_TOO_MANY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nconnection: close\r\n"
    b"content-length: 45\r\n\r\ntoo many open connections from your address\r\n"
)


def _address(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"


class ConnectionTable:
    """Open connections per address, counted once per transport across the HTTP -> WebSocket upgrade."""

    def __init__(self, per_address: int = MAX_CONNECTIONS_PER_ADDRESS) -> None:
        self.per_address = per_address
        self.open: dict[str, set[int]] = {}
        self.refused = 0

    def add(self, transport: asyncio.BaseTransport) -> bool:
        ids = self.open.setdefault(_address(transport), set())
        if id(transport) in ids:
            return True
        if len(ids) >= self.per_address:
            self.refused += 1
            return False
        ids.add(id(transport))
        return True

    def remove(self, transport: asyncio.BaseTransport) -> None:
        addr = _address(transport)
        ids = self.open.get(addr)
        if ids is not None:
            ids.discard(id(transport))
            if not ids:
                del self.open[addr]

    def count(self) -> int:
        return sum(len(v) for v in self.open.values())


def guarded_protocols(
    table: ConnectionTable, request_timeout_s: float = REQUEST_TIMEOUT_S
) -> tuple[type[asyncio.Protocol], type[asyncio.Protocol]]:
    """(HTTP protocol class, WebSocket protocol class) for uvicorn.Config(http=..., ws=...)."""
    assert AutoWebSocketsProtocol is not None, "uvicorn[standard] brings a WebSocket implementation"
    http_base: Any = AutoHTTPProtocol
    ws_base: Any = AutoWebSocketsProtocol

    class GuardedHTTP(http_base):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._seen: Any = None
            self._timer: asyncio.TimerHandle | None = None
            if not table.add(transport):
                transport.write(_TOO_MANY)
                transport.close()
                return
            self._timer = self.loop.call_later(request_timeout_s, self._check_progress)

        def _check_progress(self) -> None:
            self._timer = None
            if self.transport.is_closing() or self.transport.get_protocol() is not self:
                return  # closed, or upgraded: the WebSocket protocol owns the connection now
            cycle = self.cycle
            if cycle is not None and (cycle is not self._seen or not cycle.response_complete):
                self._seen = cycle  # a new request began, or a response is still going out
                self._timer = self.loop.call_later(request_timeout_s, self._check_progress)
                return
            self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._timer is not None:
                self._timer.cancel()
            table.remove(self.transport)
            super().connection_lost(exc)

    class GuardedWebSocket(ws_base):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            table.add(transport)  # already counted by the HTTP protocol it was upgraded from
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            table.remove(self.transport)
            super().connection_lost(exc)

    return GuardedHTTP, GuardedWebSocket
