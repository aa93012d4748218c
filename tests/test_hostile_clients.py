"""One hostile client never slows the others: sizes are checked before parsing, bytes are budgeted
per address, huge numbers are refused with an error (not a traceback), and refusals are logged at
most once per interval. Behaviour only: the machine is shared, so nothing here asserts a timing."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed

from reverie.serve import protocol as P
from reverie.serve.app import BackgroundServer, ServeConfig, create_app
from reverie.serve.client import PlayClient
from reverie.serve.limits import BYTE_BURST
from reverie.serve.ratelog import RateLimitedLog

WORLD = "reverie/Dungeon-v0"
BIG = 2 * 1024 * 1024 - 64  # just under the WebSocket message cap: what an abuser would send
IN_FLIGHT = 2  # frames a window of ticks can lose at its edges: one in flight at each
FLOOD_ROUNDS = 3  # floods, one after another, pooled so no single short window decides
FLOOD_BYTES_PER_S = 2 * 1024 * 1024  # the budget refills from empty in BYTE_BURST / this = 2 s


def _big_json(n: int = BIG) -> str:
    """A valid ~2 MB JSON message that would cost json.loads a million objects."""
    head = '{"type":"input","seq":1,"keys":['
    return head + "1," * ((n - len(head) - 3) // 2) + "1]}"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[_Records]:
    h = _Records()
    lg = logging.getLogger("reverie")
    old = lg.level
    lg.addHandler(h)
    lg.setLevel(logging.DEBUG)
    yield h
    lg.removeHandler(h)
    lg.setLevel(old)


def test_a_long_message_is_refused_before_any_json_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[int] = []
    real = json.loads
    monkeypatch.setattr(P.json, "loads", lambda s, *a, **k: (parsed.append(len(s)), real(s, *a, **k))[1])
    for text in (_big_json(), "[" * 100000, json.dumps({"type": "reset", "x": {"image": "QUFB" * 5000}})):
        with pytest.raises(P.ProtocolError) as e:
            P.parse(text)
        assert e.value.code == "too_large" and "reset" in str(e.value)
    assert all(n <= P.MAX_TEXT_BYTES for n in parsed), parsed  # only small remainders were parsed


def test_a_long_reset_carries_its_image_without_parsing_it() -> None:
    image = "data:image/png;base64," + "QUJD" * 100_000
    m = P.parse(json.dumps({"seq": 3, "image": image, "type": "reset", "prompt": 'say "image": "x"'}))
    assert (m.type, m.seq, m.image_b64, m.prompt) == ("reset", 3, image, 'say "image": "x"')
    too_much_else = json.dumps({"type": "reset", "image": "QUFB" * 5000, "prompt": "p" * 5000})
    with pytest.raises(P.ProtocolError, match="at most"):
        P.parse(too_much_else)


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "ping", "t": 1' + "0" * 400 + "}",
        '{"type": "input", "seq": 1, "axes": {"forward": 1' + "0" * 400 + "}}",
        '{"type": "input", "seq": 1, "axes": {"turn": -1' + "0" * 400 + "}}",
    ],
)
def test_huge_integers_are_bad_messages(text: str) -> None:
    with pytest.raises(P.ProtocolError) as e:
        P.parse(text)
    assert e.value.code == "bad_message" and "finite number" in str(e.value)


def test_rate_limited_log_holds_back_a_flood(records: _Records) -> None:
    rl = RateLimitedLog(logging.getLogger("reverie.test"), interval_s=3600)
    logged = [rl.log(logging.INFO, "k", "refused") for _ in range(1000)]
    assert logged.count(True) == 1 and len(records.records) == 1
    rl.interval_s = 0.0
    rl.log(logging.INFO, "k", "refused")
    assert records.records[-1].held_back == 999  # type: ignore[attr-defined]


def test_huge_numbers_over_the_wire_answer_errors_and_log_one_line(records: _Records) -> None:
    app = create_app(ServeConfig(world=WORLD, size="32x32", rate_per_s=1000))
    with BackgroundServer(app) as url, PlayClient(url) as c:
        c.start(seed=1)
        for i in range(300):
            c.send('{"type": "ping", "t": 1' + "0" * 400 + "}")
            c.send(f'{{"type": "input", "seq": {i + 1}, "axes": {{"turn": 1{"0" * 400}}}}}')
        err = c.wait_for("error")
        assert err["code"] == "bad_message" and "finite number" in err["message"]
        c.send({"type": "ping", "t": 7})
        assert c.wait_for("pong")["t"] == 7  # every bad message was read, and the session lives
        h1, _ = c.next_frame()
        h2, _ = c.next_frame()
        assert h2.index > h1.index
    refused = [r for r in records.records if r.getMessage() == "refused a client message"]
    assert len(refused) == 1, [r.__dict__ for r in refused]  # 600 refusals, one line
    assert not any(r.exc_info for r in records.records)
    assert app.state.reverie.metrics.get("reverie_messages_rejected_total", reason="bad_message") == 600


def test_an_address_past_its_byte_budget_is_closed_and_others_keep_playing() -> None:
    # A generous message rate: the byte budget, not the message count, must stop this client.
    app = create_app(ServeConfig(world=WORLD, size="32x32", rate_per_s=1000, bytes_per_s=FLOOD_BYTES_PER_S))
    srv = app.state.reverie
    with BackgroundServer(app) as url, PlayClient(url) as player:
        player.start(seed=1)
        player.next_frame()
        indices: list[int] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                m = player.recv(timeout=10)
                if isinstance(m, tuple):
                    indices.append(m[0].index)

        reader = threading.Thread(target=watch, daemon=True)
        reader.start()
        (session,) = srv.clock._sessions.values()
        # The baseline: the share of frames this player gets with nobody else connected, measured
        # under whatever load the machine has now, so the bar below compares like with like.
        base0 = session.index
        while session.index < base0 + 30:
            assert reader.is_alive()
            stop.wait(0.05)
        base1 = session.index
        # The abuser is another process, as an attacker's would be: in this one its Python would
        # compete with the server for the GIL, which is not what is under test. It floods FLOOD_ROUNDS
        # times, each on a new connection once its address's budget has refilled: a flood's session
        # lives a few ticks, and one hiccup of a busy machine in a single such window failed the bar
        # below (4 received of 15 made, in CI). Polled, so a window the poll missed is left out.
        abuser = subprocess.Popen([sys.executable, __file__, url], stdout=subprocess.PIPE, text=True)
        windows: list[tuple[int, int]] = []  # the player's frame indices while an abuser was connected
        while abuser.poll() is None:
            if len(srv.clock._sessions) < 2:
                time.sleep(0.005)
                continue
            first = session.index
            while len(srv.clock._sessions) >= 2:
                time.sleep(0.005)
            windows.append((first, session.index))
        out, _ = abuser.communicate(timeout=120)
        reports = [json.loads(line) for line in out.strip().splitlines()]
        assert len(reports) == FLOOD_ROUNDS and windows, (reports, windows)
        for report in reports:
            assert report["close_code"] == 1008 and report["end"]["code"] == "flood"
            assert "bytes per second" in report["end"]["message"] and "too_large" in report["errors"]
            assert report["sent"] < 40  # cut off long before it sent all it wanted
        last = windows[-1][1]
        while len(indices) < 5 or indices[-1] < last + 5:  # the player plays on after the abuser
            assert reader.is_alive()
            stop.wait(0.05)
        stop.set()
        reader.join(timeout=15)
        made = sum(b - a for a, b in windows)
        received = sum(a < i <= b for i in indices for a, b in windows)
        base = sum(base0 < i <= base1 for i in indices) / (base1 - base0)
        # Every tick made a frame for the player while an abuser sent, and the player got at least
        # half the share it got alone, less the frames in flight at each window's two edges. A
        # stalled event loop cut the other player to ~10%, as in test_fuzz, and lengthens the windows
        # (a 0.15 s stall per big message: 5 received of 51 made; unstalled: 9 of 9, ~3 per flood);
        # a loaded machine lowers both shares alike (31 made and 10 received beside two training jobs).
        assert made >= len(windows), windows
        assert received >= 0.5 * base * made - IN_FLIGHT * len(windows), (received, made, base, windows)
        assert srv.metrics.get("reverie_connections_closed_total", reason="flood") == FLOOD_ROUNDS


def _abuse(url: str) -> None:
    """Run as a script: FLOOD_ROUNDS times, start a session and send ~2 MB messages until cut off,
    print a JSON report, and wait for the address's byte budget to refill."""
    for r in range(FLOOD_ROUNDS):
        if r:
            time.sleep(BYTE_BURST / FLOOD_BYTES_PER_S + 0.5)
        sent, texts, code = 0, [], None
        with PlayClient(url) as c:
            c.start(seed=2)
            try:
                for _ in range(40):  # 80 MB: far past a 4 MiB burst
                    c.send(_big_json())
                    sent += 1
                while True:
                    c.recv(timeout=30)
            except ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd is not None else None
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                while True:  # what the server said before closing is still queued here
                    c.recv(timeout=5)
            texts = c.texts
        end = next((m for m in texts if m["type"] == "end"), None)
        errors = sorted({m["code"] for m in texts if m["type"] == "error"})
        print(json.dumps({"sent": sent, "close_code": code, "end": end, "errors": errors}), flush=True)


if __name__ == "__main__":
    _abuse(sys.argv[1])


def test_the_heap_is_handed_back_where_the_c_library_can() -> None:
    """Hostile 2 MB messages grew the server's heap for good; the server trims it every few seconds."""
    import platform

    from reverie.serve.limits import trim_heap

    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert trim_heap() is glibc  # elsewhere it is a no-op that says so
