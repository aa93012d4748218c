"""One player's WebSocket: wait in the queue, then play. A reader task turns client messages into
the session's input state; this connection's sender loop sends control messages and whatever newest
frame the clock left in the session's slots, so writes stay in order and frames never queue up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

import reverie
from reverie.engine.clock import PlaySession, ResetRequest
from reverie.engine.controls import InputMapper
from reverie.engine.encode import Encoder
from reverie.errors import ReverieError
from reverie.serve import protocol as P
from reverie.serve.limits import TokenBucket
from reverie.serve.page_controls import page_controls
from reverie.serve.queue import Ticket

if TYPE_CHECKING:
    from reverie.serve.server import Server

log = logging.getLogger("reverie.serve")

HELLO_GRACE_S = 1.0  # a client that sends no hello starts with defaults after this
RESETS_PER_S = 1.0
MAX_PENDING_TEXTS = 64
# A connection whose rate-limited messages exceed this in the window is closed (1008).
FLOOD_LIMIT, FLOOD_WINDOW_S = 2000, 10.0


class Connection:
    """One player's WebSocket: queue, then play; a reader task and this sender loop."""

    def __init__(self, srv: Server, ws: WebSocket) -> None:
        self.srv, self.ws = srv, ws
        self.address = ws.client.host if ws.client else "unknown"
        self.wake = asyncio.Event()
        # Replies wait here for the sender; bounded, so a client that never reads cannot grow it.
        self.texts: deque[str] = deque(maxlen=MAX_PENDING_TEXTS)
        self.session: PlaySession | None = None
        self.ticket = Ticket(on_position=self._on_position)
        self.bucket = TokenBucket(srv.cfg.rate_per_s)
        # Starting a world is ~100x a step and runs on one shared worker: a reset flood would
        # delay everyone else's start, so resets have their own, much smaller budget.
        self.reset_bucket = TokenBucket(RESETS_PER_S, burst=3)
        self.seed: int | None = None
        self.views: tuple[str, ...] = ("dream",)
        self.last_input = time.monotonic()
        self.last_reject = 0.0
        self.flood_since, self.flooded = 0.0, 0
        self.decoding = False
        self.end: tuple[str, str] | None = None  # (code, message) that ends the session
        self.sent = 0
        self.connected = time.monotonic()
        self.hello_seen = False
        self.preview_task: asyncio.Task[None] | None = None  # kept: the loop holds tasks weakly

    def say(self, text: str) -> None:
        self.texts.append(text)
        self.wake.set()

    def _on_position(self, position: int, wait_s: float, guess: bool) -> None:
        if position == 0:  # admitted: the sender loop starts the session
            self.wake.set()
            return
        max_sessions = self.srv.queue.max_active
        self.say(
            P.control(
                "queue",
                position=position,
                expected_wait_s=wait_s,
                wait_is_guess=guess,
                max_sessions=max_sessions,
            )
        )

    async def run(self) -> None:
        srv = self.srv
        self.say(P.control("hello", version=P.VERSION, reverie=reverie.__version__, **srv.info()))
        srv.queue.join(self.ticket)
        reader = asyncio.create_task(self._read())
        try:
            await self._send_loop(reader)
        except (WebSocketDisconnect, RuntimeError) as e:  # gone mid-send: an ordinary way to leave
            log.debug("send after disconnect: %r", e)
        finally:
            reader.cancel()
            srv.queue.leave(self.ticket)
            if self.session is not None:
                srv.clock.remove(self.session)
                s = self.session
                log.info("session end", extra={"session": s.id, "frames_sent": self.sent, "dropped": s.dropped,
                                                "seconds": round(time.monotonic() - self.ticket.started, 1),
                                                "reason": self.end[0] if self.end else "disconnect"})  # fmt: skip
            with contextlib.suppress(Exception):
                if self.ws.application_state != WebSocketState.DISCONNECTED:
                    code = 1000 if self.end is None else 1008 if self.end[0] == "flood" else 4000
                    await self.ws.close(code=code)

    def _start(self) -> None:
        srv = self.srv
        views = {v: srv.backends[v] for v in self.views}
        loop = asyncio.get_running_loop()
        s = PlaySession(views, seed=self.seed, notify=lambda: loop.call_soon_threadsafe(self.wake.set))
        self.session = s
        self.last_input = time.monotonic()
        srv.metrics.inc("reverie_sessions_total")
        self.say(P.control("session", id=s.id, seed=s.seed, views=list(self.views), **srv.info()))
        srv.clock.add(s)
        log.info("session start", extra={"session": s.id, "seed": s.seed, "views": list(self.views)})

    async def _send_loop(self, reader: asyncio.Task[None]) -> None:
        srv, cfg = self.srv, self.srv.cfg
        caption, dropped = None, 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=0.5)
            self.wake.clear()
            if reader.done() and self.end is None:
                return
            # The client's hello (seed, views) comes right after ours; a client that sends none
            # starts with defaults after HELLO_GRACE_S.
            if (
                self.session is None
                and self.ticket.admitted.is_set()
                and (self.hello_seen or time.monotonic() - self.connected > HELLO_GRACE_S)
            ):
                self._start()
            s = self.session
            now = time.monotonic()
            if s is not None and self.end is None:
                if s.error is not None:
                    self.end = ("world_failed", s.error)
                elif now - self.last_input > cfg.idle_timeout_s:
                    self.end = ("idle", f"no input for {cfg.idle_timeout_s:g} s: the session ended")
                elif cfg.time_limit_s is not None and now - self.ticket.started > cfg.time_limit_s:
                    self.end = ("time_limit", f"sessions last at most {cfg.time_limit_s:g} s")
            while self.texts:
                await self.ws.send_text(self.texts.popleft())
            if self.end is not None:
                await self.ws.send_text(P.control("end", code=self.end[0], message=self.end[1]))
                return
            if s is None:
                continue
            frames = s.take_frames()
            for f in frames:
                await self.ws.send_bytes(P.pack_frame(f))
            self.sent += len(frames)
            srv.metrics.inc("reverie_frames_sent_total", len(frames))
            if s.dropped != dropped:
                srv.metrics.inc("reverie_frames_dropped_total", s.dropped - dropped)
                dropped = s.dropped
            if s.caption != caption and s.caption is not None:
                caption = s.caption
                await self.ws.send_text(P.control("caption", text=caption))

    def _reject(self, code: str, message: str) -> None:
        self.srv.metrics.inc("reverie_messages_rejected_total", reason=code)
        self.srv.ratelog.log(logging.INFO, f"refused:{code}", "refused a client message",
                             code=code, reason=message, client=self.address)  # fmt: skip
        now = time.monotonic()
        if now - self.last_reject >= 0.2:  # answer, but never let a flood turn into a reply flood
            self.last_reject = now
            self.say(P.error(code, message))

    async def _read(self) -> None:
        names = list(self.srv.main.spec.get("names", []))
        while True:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                self.wake.set()
                return
            await asyncio.sleep(0)  # a buffered flood must not starve other connections
            text, data = msg.get("text"), msg.get("bytes")
            # Bytes are counted before anything else looks at the message: an address that sends
            # more than its budget is cut off instead of being read (and refused) forever.
            size = len(text) if text is not None else len(data or b"")
            if not self.srv.byte_budgets.take(self.address, size):
                self._close_flood(
                    f"more than {self.srv.cfg.bytes_per_s:g} bytes per second from {self.address}"
                )
                return
            if not self.bucket.take():
                self._reject("rate_limited", f"more than {self.srv.cfg.rate_per_s:g} messages per second")
                now = time.monotonic()
                if now - self.flood_since > FLOOD_WINDOW_S:
                    self.flood_since, self.flooded = now, 0
                self.flooded += 1
                if self.flooded > FLOOD_LIMIT:  # reading a flood costs the loop even when refused
                    self._close_flood(f"more than {FLOOD_LIMIT} refused messages in {FLOOD_WINDOW_S:g} s")
                    return
                continue
            if text is None:
                self._reject("binary", "binary messages are not accepted: send JSON text")
                continue
            try:
                await self._handle(P.parse(text, names))
            except P.ProtocolError as e:
                self._reject(e.code, str(e))
            except Exception:  # a bug of ours must cost one message, not the connection
                self.srv.ratelog.log(logging.ERROR, "internal", "message handling failed", exc_info=True,
                                     client=self.address)  # fmt: skip
                self._reject("internal", "the server could not handle that message")

    def _close_flood(self, why: str) -> None:
        self.srv.metrics.inc("reverie_connections_closed_total", reason="flood")
        self.srv.ratelog.log(logging.WARNING, "flood", "closed a flooding connection", reason=why,
                             client=self.address)  # fmt: skip
        self.end = ("flood", why)
        self.wake.set()

    async def _handle(self, m: P.Message) -> None:
        s = self.session
        if m.type == "ping":
            self.say(P.control("pong", t=m.t))
        elif m.type == "bind":
            self._bind(m)
        elif m.type == "preview":
            self._start_preview()
        elif m.type == "hello":
            if s is None:
                self.hello_seen = True
                self.seed = m.seed
                self.views = self._check_views(m.views)
                self.wake.set()
        elif s is None:
            return  # still waiting in the queue: play input has nothing to drive yet
        elif m.type == "input":
            assert m.state is not None
            self.last_input = time.monotonic()
            s.set_input(m.state)
        elif m.type == "pause":
            self.last_input = time.monotonic()
            s.paused = m.paused
            s.note_seq(m.seq)
        elif m.type == "views":
            if not self.reset_bucket.take():  # a change of views restarts the world
                raise P.ProtocolError("rate_limited", f"at most {RESETS_PER_S:g} restart per second")
            self.views = self._check_views(m.views)
            s.set_views(list(self.views), self.srv.backends)
        elif m.type == "reset":
            self.last_input = time.monotonic()
            if not self.reset_bucket.take():
                raise P.ProtocolError("rate_limited", f"at most {RESETS_PER_S:g} restart per second")
            await self._reset(s, m)

    def _bind(self, m: P.Message) -> None:
        """Save a key binding with the model. A public page must not write files: only with
        `reverie play --allow-bind`; it takes effect when the model is next loaded."""
        from reverie.engine.key_binding import check_binding, run_spec, write_binding
        from reverie.models.shipped import resolve_model

        model = self.srv.cfg.model
        if not self.srv.cfg.allow_bind or model is None:
            raise P.ProtocolError(
                "bind_disabled",
                "this server does not save key bindings (reverie play --model RUN --allow-bind does); "
                "or run: reverie bind-keys --model RUN c1=forward ...",
            )
        try:  # checked before the rate limit: only a write spends it
            run = resolve_model(model)
            spec = run_spec(run)
            binding = check_binding(dict(m.binding), spec)
        except ReverieError as e:
            raise P.ProtocolError("bad_binding", str(e)[:300]) from e
        if not self.reset_bucket.take():  # a file write: no faster than restarts
            raise P.ProtocolError("rate_limited", f"at most {RESETS_PER_S:g} binding per second")
        try:
            path = write_binding(run, spec, binding)
        except (ReverieError, OSError) as e:
            raise P.ProtocolError("bad_binding", str(e)[:300]) from e
        rebind = getattr(self.srv.main, "rebind", None)  # the page's controls change without a reload
        if rebind is not None:
            spec = rebind(binding)
            if self.session is not None:  # this player's keys now; other sessions' on their next start
                self.session.mapper = InputMapper(spec)
        self.say(
            P.control("bound", path=str(path), binding=binding, actions=spec, controls=page_controls(spec))
        )

    def _start_preview(self) -> None:
        """Send a short dream per action from this session's current frames (the bind panel shows
        what each latent code does). One preview at a time per server, on a worker thread, within
        the restart budget: it costs about PREVIEW_FRAMES batched steps beside the clock, and this
        connection's input is read on meanwhile."""
        previews = getattr(self.srv.main, "previews", None)
        s = self.session
        if previews is None or s is None or "dream" not in s.views:
            raise P.ProtocolError(
                "no_preview", "previews need a world model's dream playing (reverie play --model)"
            )
        if self.srv.previewing or not self.reset_bucket.take():
            raise P.ProtocolError("rate_limited", "one preview at a time, at most one a second")
        self.srv.previewing = True

        async def run() -> None:
            try:
                frames, strips = await asyncio.to_thread(_preview_strips, previews, s.sid)
                self.say(P.control("previews", frames=frames, strips=strips))
            except ReverieError as e:  # the session restarted or ended meanwhile
                self._reject("no_preview", str(e)[:300])
            except Exception:  # a bug of ours: the page gets an answer, the log one line
                self.srv.ratelog.log(logging.ERROR, "internal", "preview failed", exc_info=True,
                                     client=self.address)  # fmt: skip
                self._reject("no_preview", "the preview failed; try again")
            finally:
                self.srv.previewing = False

        self.preview_task = asyncio.create_task(run())

    def _check_views(self, views: tuple[str, ...]) -> tuple[str, ...]:
        missing = [v for v in views if v not in self.srv.backends]
        if missing or "dream" not in views:
            raise P.ProtocolError(
                "bad_message", f"views must include dream; available here: {', '.join(self.srv.backends)}"
            )
        return views

    async def _reset(self, s: PlaySession, m: P.Message) -> None:
        main = self.srv.main
        image = None
        if m.image_b64 is not None:
            if self.decoding:
                raise P.ProtocolError("busy", "an image is still being read: wait for it")
            self.decoding = True
            try:  # decoding is CPU work: keep it off the event loop
                image = await asyncio.get_running_loop().run_in_executor(
                    None, P.decode_image, m.image_b64, main.size
                )
            finally:
                self.decoding = False
        ignored = [what for what, given, ok in (("prompt", m.prompt, main.accepts_prompt),
                                                ("image", image, main.accepts_image))
                   if given is not None and not ok]  # fmt: skip
        if ignored:
            self.say(P.control("notice", message=f"noted your {' and '.join(ignored)}: the {main.name} "
                                                 "cannot start from one, so it starts a fresh world"))  # fmt: skip
        s.note_seq(m.seq)
        s.request_reset(ResetRequest(seed=m.seed, prompt=m.prompt, image=image))


def _preview_strips(previews: Any, sid: int) -> tuple[int, dict[str, str]]:
    """(frames per action, {action: a JPEG data URL of its frames side by side}) (worker thread)."""
    import base64

    import numpy as np

    strips, frames, encode = {}, 0, Encoder()
    for name, video in previews(sid).items():  # (k, H, W, 3)
        frames = len(video)
        strip = np.concatenate(list(video), axis=1)  # (H, k * W, 3)
        strips[name] = "data:image/jpeg;base64," + base64.b64encode(encode(strip)).decode()
    return frames, strips
