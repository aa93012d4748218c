"""The play protocol against a real uvicorn server: hello, frames, echoes, errors, limits."""

from __future__ import annotations

import base64
import io
import itertools
import json
import struct
import time
import zlib
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image
from websockets.exceptions import ConnectionClosed

from reverie.engine.clock import EncodedFrame
from reverie.engine.encode import decode
from reverie.serve import protocol as P
from reverie.serve.app import BackgroundServer, ServeConfig, create_app
from reverie.serve.client import PlayClient
from reverie.sizes import parse_size

WORLD = "reverie/Dungeon-v0"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = create_app(ServeConfig(world=WORLD, size="64x48", fps=30, max_sessions=8))
    with BackgroundServer(app) as base:
        yield base


def test_header_round_trip() -> None:
    f = EncodedFrame(view=1, index=7, seq=2**32 - 1, gen_us=1234, width=64, height=48, codec=0, data=b"jpeg")
    data = P.pack_frame(f)
    assert len(data) == P.HEADER.size + 4 == 26
    h, body = P.unpack_frame(data)
    assert (h.view, h.index, h.seq, h.gen_us, h.width, h.height, body) == (
        1,
        7,
        2**32 - 1,
        1234,
        64,
        48,
        b"jpeg",
    )
    with pytest.raises(P.ProtocolError):
        P.unpack_frame(b"XX" + data[2:])


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", "bad_message"),
        ("[1, 2]", "bad_message"),
        ('{"type": "teleport"}', "unknown_type"),
        ('{"type": "input", "seq": -1}', "bad_message"),
        ('{"type": "input", "seq": 1, "axes": {"forward": "fast"}}', "bad_message"),
        ('{"type": "input", "seq": 1, "axes": {"turn": 1e999}}', "bad_message"),
        ('{"type": "input", "seq": 1, "keys": ["w", 5]}', "bad_message"),
        ('{"type": "input", "seq": 1, "buttons": ["fly"]}', "unknown_action"),
        ('{"type": "reset", "seed": -3}', "bad_message"),
        ('{"type": "views", "views": ["imagined"]}', "bad_message"),
        (json.dumps({"type": "input", "keys": ["w"] * 2000}), "too_large"),
        ("[" * 100000 + "]" * 100000, "too_large"),
    ],
)
def test_parse_refuses_bad_messages(text: str, code: str) -> None:
    with pytest.raises(P.ProtocolError) as e:
        P.parse(text, action_names=["noop", "forward"])
    assert e.value.code == code


def test_parse_reads_an_input_state() -> None:
    m = P.parse(
        '{"type":"input","seq":4,"keys":["KeyW"],"axes":{"turn":-3,"side":0.5},"buttons":["forward"]}',
        ["noop", "forward"],
    )
    assert m.state is not None
    assert (m.seq, m.state.keys, m.state.turn, m.state.side, m.state.buttons) == (
        4, frozenset({"keyw"}), -1.0, 0.5, frozenset({"forward"}))  # fmt: skip


def _png(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 200, np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _png_claiming(width: int, height: int) -> str:
    """A tiny PNG whose header claims a huge image (a decompression bomb's opening move)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    return base64.b64encode(raw).decode()


def test_decode_image_checks_type_and_size() -> None:
    size = parse_size("64x48")
    img = P.decode_image("data:image/png;base64," + _png(300, 200), size)
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8 and int(img.mean()) == 200
    for bad in ("%%%", base64.b64encode(b"GIF89a garbage").decode(), _png_claiming(50000, 50000)):
        with pytest.raises(P.ProtocolError) as e:
            P.decode_image(bad, size)
        assert e.value.code == "bad_image"
    with pytest.raises(P.ProtocolError):
        P.decode_image("A" * (P.MAX_IMAGE_BYTES * 2), size)


def test_hello_session_and_frames_echo_the_consumed_input(url: str) -> None:
    with PlayClient(url) as c:
        hello = c.wait_for("hello")
        assert hello["version"] == P.VERSION and hello["world"] == WORLD
        c.send({"type": "hello", "seed": 3})
        info = c.wait_for("session")
        assert info["seed"] == 3 and info["actions"]["names"][0] == "noop" and info["size"] == [64, 48]
        assert set(info["available_views"]) == {"dream", "real"}
        h0, jpeg = c.next_frame()
        assert (h0.view, h0.width, h0.height) == (0, 64, 48)
        assert decode(jpeg).shape == (48, 64, 3)
        seq = c.send_input(keys=["KeyW"])
        indices, consumed = [h0.index], None
        for _ in range(60):
            h, _ = c.next_frame()
            indices.append(h.index)
            if h.seq >= seq:
                consumed = h
                break
        assert consumed is not None and consumed.seq == seq
        assert all(b > a for a, b in itertools.pairwise(indices))  # strictly increasing, gaps allowed


def test_same_seed_same_frames_over_the_wire(url: str) -> None:
    def first_frames(seed: int) -> list[bytes]:
        with PlayClient(url) as c:
            c.start(seed=seed)
            c.send({"type": "pause", "seq": 1, "paused": True})  # freeze after the start frame
            return [c.next_frame()[1]]

    assert first_frames(21) == first_frames(21)
    assert first_frames(21) != first_frames(22)


def test_two_views_stream_side_by_side(url: str) -> None:
    with PlayClient(url) as c:
        info = c.start(seed=5, views=["dream", "real"])
        assert info["views"] == ["dream", "real"]
        seen: dict[int, bytes] = {}
        while len(seen) < 2:
            h, data = c.next_frame()
            seen[h.view] = data
        assert seen[0] == seen[1]  # without a model both views are the simulator, in step


def test_errors_are_answered_and_the_session_keeps_playing(url: str) -> None:
    with PlayClient(url) as c:
        c.start(seed=1)
        for bad in ("{", b"\x00\xff binary", '{"type":"input","seq":1,"buttons":["jump"]}'):
            c.send(bad)
            err = c.wait_for("error")
            assert err["code"] in ("bad_message", "binary", "unknown_action")
            time.sleep(0.25)  # errors are answered at most every 0.2 s
        h1, _ = c.next_frame()
        h2, _ = c.next_frame()
        assert h2.index > h1.index
        c.send({"type": "reset", "seq": 9, "prompt": "a castle", "image": _png(80, 80)})
        notice = c.wait_for("notice")
        assert "prompt" in notice["message"] and "image" in notice["message"]
        c.send({"type": "reset", "seq": 10, "image": "bm90IGFuIGltYWdl"})
        assert c.wait_for("error")["code"] == "bad_image"


def test_oversized_message_closes_only_that_connection(url: str) -> None:
    with PlayClient(url) as other:
        other.start(seed=2)
        with PlayClient(url) as c:
            c.start()
            with pytest.raises(ConnectionClosed) as e:
                c.send("x" * (P.MAX_MESSAGE_BYTES + 10))
                for _ in range(200):
                    c.recv(timeout=5)
            assert e.value.rcvd is not None and e.value.rcvd.code == 1009
        h1, _ = other.next_frame()
        h2, _ = other.next_frame()
        assert h2.index > h1.index


def test_idle_session_ends() -> None:
    app = create_app(ServeConfig(world=WORLD, size="32x32", idle_timeout_s=1.0))
    with BackgroundServer(app) as base, PlayClient(base) as c:
        c.start()
        end = c.wait_for("end", timeout=15)
        assert end["code"] == "idle"


def test_health_and_metrics(url: str) -> None:
    with PlayClient(url) as c:
        c.start()
        c.next_frame()
        health = httpx.get(url + "/health").json()
        assert health["status"] == "ok" and health["active_sessions"] >= 1 and health["world"] == WORLD
        text = httpx.get(url + "/metrics").text
    for name in ("reverie_active_sessions", "reverie_queue_length", "reverie_frame_seconds_bucket",
                 "reverie_frames_sent_total", "reverie_frames_dropped_total"):  # fmt: skip
        assert name in text
    sent = next(line for line in text.splitlines() if line.startswith("reverie_frames_sent_total"))
    assert float(sent.split()[1]) >= 1
    page = httpx.get(url + "/")
    assert page.status_code == 200 and "player.js" in page.text
