"""A small synchronous Python client of the play protocol (tests, scripts, load generators).

with PlayClient(url) as c:
    info = c.start(seed=1)
    c.send_input(keys=["w"])
    header, jpeg = c.next_frame()
"""

from __future__ import annotations

import json
import time
from typing import Any

from websockets.sync.client import ClientConnection, connect

from reverie.serve.protocol import MAX_MESSAGE_BYTES, FrameHeader, unpack_frame


class PlayClient:
    def __init__(self, url: str, timeout: float = 30.0, origin: str | None = None) -> None:
        self.url = url.replace("http://", "ws://").rstrip("/") + "/ws"
        self.timeout = timeout
        # Unbounded receive queue: a test that reads nothing for a while must still be able to
        # close (a full queue stops reading, and the close frame would never be seen).
        self._connect = connect(
            self.url, max_size=MAX_MESSAGE_BYTES, open_timeout=timeout, max_queue=None,
            origin=origin,  # type: ignore[arg-type]  # a browser's Origin header (None: none sent)
        )  # fmt: skip
        self.ws: ClientConnection = self._connect.__enter__()
        self.seq = 0
        self.texts: list[dict[str, Any]] = []  # every control message received, in order
        self.frames = 0

    def __enter__(self) -> PlayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._connect.__exit__(None, None, None)

    def send(self, msg: dict[str, Any] | str | bytes) -> None:
        self.ws.send(json.dumps(msg) if isinstance(msg, dict) else msg)

    def recv(self, timeout: float | None = None) -> dict[str, Any] | tuple[FrameHeader, bytes]:
        """The next message: a control dict, or (header, image bytes) for a frame."""
        m = self.ws.recv(timeout=self.timeout if timeout is None else timeout)
        if isinstance(m, bytes):
            self.frames += 1
            return unpack_frame(m)
        d = json.loads(m)
        self.texts.append(d)
        return d

    def wait_for(self, kind: str, timeout: float | None = None) -> dict[str, Any]:
        """Read (skipping frames) until a control message of `kind` arrives."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            m = self.recv(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(m, dict) and m["type"] == kind:
                return m

    def start(self, seed: int | None = None, views: list[str] | None = None) -> dict[str, Any]:
        """hello -> the session message (after any queue wait)."""
        self.wait_for("hello")
        self.send({"type": "hello", "seed": seed, "views": views or ["dream"]})
        return self.wait_for("session")

    def send_input(
        self, keys: list[str] | None = None, buttons: list[str] | None = None, **axes: float
    ) -> int:
        self.seq += 1
        self.send(
            {"type": "input", "seq": self.seq, "keys": keys or [], "buttons": buttons or [], "axes": axes}
        )
        return self.seq

    def next_frame(self, timeout: float | None = None) -> tuple[FrameHeader, bytes]:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            m = self.recv(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(m, tuple):
                return m
