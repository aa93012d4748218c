"""Half-open connections do not live forever, one address cannot hold every connection, and only
the server's own page (or an origin allowed by --allow-origin) may play: DNS rebinding is refused."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from reverie.serve.app import BackgroundServer, ServeConfig, create_app
from reverie.serve.client import PlayClient
from reverie.serve.origin import normalize_origin

WORLD = "reverie/Dungeon-v0"


def _addr(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _closed_by_server(sock: socket.socket, deadline_s: float = 30.0) -> bytes:
    """Everything the server sent until it closed the socket (a deadline only so a bug cannot hang)."""
    sock.settimeout(deadline_s)
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


@pytest.fixture
def guarded() -> Iterator[tuple[str, object]]:
    app = create_app(ServeConfig(world=WORLD, size="32x32", max_per_address=3, request_timeout_s=0.5))
    with BackgroundServer(app) as url:
        yield url, app.state.reverie


def test_a_trickled_request_is_closed(guarded: tuple[str, object]) -> None:
    url, _ = guarded
    with socket.create_connection(_addr(url)) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for _ in range(10):  # a slowloris keeps the request open one header byte at a time
            try:
                s.sendall(b"X")
            except OSError:
                break
            time.sleep(0.2)
        assert _closed_by_server(s) == b""  # closed without an answer: the request never completed
    with socket.create_connection(_addr(url)) as s:  # a silent socket goes the same way
        assert _closed_by_server(s) == b""
    assert httpx.get(url + "/health").status_code == 200  # finished requests are not affected


def test_one_address_holds_at_most_its_share_of_connections(guarded: tuple[str, object]) -> None:
    url, srv = guarded
    held = [socket.create_connection(_addr(url)) for _ in range(3)]
    try:
        for s in held:
            s.sendall(b"GET / HTTP/1.1\r\n")  # half-open requests, each holding a connection
        with socket.create_connection(_addr(url)) as extra:
            answer = _closed_by_server(extra)
        assert answer.startswith(b"HTTP/1.1 503") and b"too many open connections" in answer
        assert srv.connections.refused >= 1  # type: ignore[attr-defined]
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 30
    while srv.connections.count() and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.05)
    # Closed connections give their places back: a WebSocket player fits again.
    with PlayClient(url) as c:
        c.start()
        c.next_frame()
        assert srv.connections.count() == 1  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = create_app(ServeConfig(world=WORLD, size="32x32", allow_origins=("https://play.example.org",)))
    with BackgroundServer(app) as base:
        yield base


def test_another_sites_page_cannot_take_a_play_slot(url: str) -> None:
    with pytest.raises(InvalidStatus) as e:
        PlayClient(url, origin="http://evil.example")
    assert e.value.response.status_code == 403
    for origin in ("null", "http://127.0.0.1:1", "https://play.example.org.evil.example"):
        with pytest.raises(InvalidStatus):  # a sandboxed frame or a file; another port; a look-alike
            PlayClient(url, origin=origin)


def test_the_servers_own_page_and_allowed_origins_play(url: str) -> None:
    for origin in (url, "https://play.example.org", None):  # None: not a browser, sends no Origin
        with PlayClient(url, origin=origin) as c:
            c.start()
            c.next_frame()


def test_dns_rebinding_host_is_refused(url: str) -> None:
    port = _addr(url)[1]
    r = httpx.get(url + "/", headers={"Host": f"rebind.evil.example:{port}"})
    assert r.status_code == 403 and "rebind.evil.example" in r.text and "--allow-origin" in r.text
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "play.example.org", f"[::1]:{port}"):
        assert httpx.get(url + "/health", headers={"Host": host}).status_code == 200, host


def test_origins_are_compared_normalized() -> None:
    assert normalize_origin("HTTP://Example.org:80/") == "http://example.org"
    assert normalize_origin("https://[::1]:8443") == "https://[::1]:8443"
    with pytest.raises(ValueError, match="scheme://host"):
        normalize_origin("example.org")
