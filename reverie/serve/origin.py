"""Who may use the server from a browser: the Host of every request and the Origin of every WebSocket.

- Host: an IP address, `localhost`, or a host named with --allow-origin. A DNS-rebinding page
  reaches the server under its own domain name, so its requests carry that name and are refused.
- Origin (WebSocket only): the page's own origin (same scheme-less host:port as Host), or one named
  with --allow-origin (`*` for any). Browsers always send it, so another site's page cannot take a
  play slot; clients that are not browsers send none and are let through (they could forge it anyway).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from reverie.serve.ratelog import RateLimitedLog

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _split_host(value: str) -> tuple[str, int | None]:
    """'Example.org:8000' -> ('example.org', 8000); '[::1]:80' -> ('::1', 80)."""
    try:
        parts = urlsplit("//" + value)
        return (parts.hostname or "").lower(), parts.port
    except ValueError:  # a bad port or bracket: no host we serve
        return "", None


def normalize_origin(origin: str) -> str:
    """'HTTP://Example.org:80/' -> 'http://example.org': the form origins are compared in."""
    if origin.strip() == "*":
        return "*"
    try:
        parts = urlsplit(origin.strip())
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        raise ValueError(f"not an origin: {origin!r}; accepted: scheme://host[:port], or *") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not host:
        raise ValueError(f"not an origin: {origin!r}; accepted: scheme://host[:port], or *")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    return f"{scheme}://{netloc}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class OriginGuard:
    """ASGI middleware refusing requests whose Host, or WebSockets whose Origin, is not allowed."""

    def __init__(
        self, app: ASGIApp, allow_origins: Iterable[str] = (), hosts: Iterable[str] = (),
        ratelog: RateLimitedLog | None = None,
    ) -> None:  # fmt: skip
        self.app = app
        self.origins = {normalize_origin(o) for o in allow_origins}
        self.any_origin = "*" in self.origins
        self.hosts = {h.lower() for h in hosts} | {
            urlsplit(o).hostname or "" for o in self.origins if o != "*"
        }
        self.ratelog = ratelog or RateLimitedLog(logging.getLogger("reverie.serve"))

    def host_allowed(self, host: str) -> bool:
        return _is_ip(host) or host == "localhost" or host.endswith(".localhost") or host in self.hosts

    def origin_allowed(self, origin: str, host_header: str, scheme: str) -> bool:
        if self.any_origin:
            return True
        try:
            o = normalize_origin(origin)
        except ValueError:
            return False  # "null" (a sandboxed frame, a file) and anything unparsable
        if o in self.origins:
            return True
        # Same origin: the page was served by this server under the name the socket now uses.
        host, port = _split_host(host_header)
        o_host, o_port = _split_host(o.split("://", 1)[1])
        o_scheme = o.split("://", 1)[0]
        default = DEFAULT_PORTS.get(scheme, 80)
        return bool(host) and o_host == host and (o_port or DEFAULT_PORTS[o_scheme]) == (port or default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host_header = headers.get("host", "")
        why = None
        if host_header and not self.host_allowed(_split_host(host_header)[0]):
            why = (f"host {host_header[:80]!r} is not served here; accepted: an IP address, localhost, "
                   "or a host named with --allow-origin")  # fmt: skip
        elif scope["type"] == "websocket" and "origin" in headers:
            scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
            if not self.origin_allowed(headers["origin"], host_header, scheme):
                why = (f"origin {headers['origin'][:80]!r} may not play here; accepted: this page's own "
                       "origin, or one named with --allow-origin")  # fmt: skip
        if why is None:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        self.ratelog.log(logging.WARNING, "refused:origin", "refused a request", reason=why,
                         client=client[0] if client else "unknown")  # fmt: skip
        if scope["type"] == "websocket":
            await receive()  # websocket.connect; closing before accepting answers the handshake 403
            await send({"type": "websocket.close", "code": 1008, "reason": why[:120]})
            return
        body = (why + "\n").encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})
