"""One real-time clock for all sessions.

Each tick reads the LATEST input state of every active session, runs one batched step per backend,
encodes the frames and leaves each session its newest frame in a per-view slot. Nothing is queued:
a frame not yet sent when the next one lands is overwritten (counted as dropped), so a slow client
skips frames instead of falling behind, and a late tick lowers the frame rate instead of piling up.

The clock runs in its own thread (world starts, which take ~0.3 s for a dungeon, on one worker
thread beside it). Env stepping and JPEG encoding are short calls that release the GIL often (numpy,
simplejpeg; torch for a model), so the event loop stays responsive: measured with 9 sessions at
30 FPS on the shared 2-core machine, event-loop lag median 4.8 ms, worst 17 ms, WebSocket ping
round trip 0.8 ms (/metrics: reverie_event_loop_lag_seconds). A thread is simpler than an asyncio
task + run_in_executor (which would hop threads every tick) and than a process (frames would cross
a pipe).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reverie.engine.backends import Backend, StepOut
from reverie.engine.controls import InputMapper, InputState
from reverie.engine.encode import Encoder, EncoderConfig
from reverie.engine.session import new_sid, random_seed

log = logging.getLogger("reverie.engine")

VIEWS = ("dream", "real")  # the view id on the wire is the index here
_IDS = itertools.count(1)


@dataclass(frozen=True)
class ClockConfig:
    fps: float = 30.0
    encoder: EncoderConfig = field(default_factory=EncoderConfig)


@dataclass(frozen=True)
class EncodedFrame:
    view: int  # index into VIEWS
    index: int  # frames made for this session so far, counting from 0 (the first reset frame)
    seq: int  # the last input sequence number the frame consumed
    gen_us: int  # backend batch time + this frame's encode time
    width: int
    height: int
    codec: int  # encode.CODEC_IDS
    data: bytes
    caption: str | None = None


@dataclass(frozen=True)
class ResetRequest:
    seed: int | None = None  # None: keep the session's seed (a restart replays the same world)
    prompt: str | None = None
    image: np.ndarray | None = None  # (H, W, 3) uint8, already resized to the world size


class PlaySession:
    """A live session as the clock sees it: the server writes input, the clock writes frames."""

    def __init__(
        self,
        views: dict[str, Backend],
        seed: int | None = None,
        notify: Callable[[], object] | None = None,
    ) -> None:
        self.id = next(_IDS)
        self.sid = new_sid()
        self.views = dict(views)
        first = next(iter(self.views.values()))
        self.mapper = InputMapper(first.spec)
        self.seed = random_seed() if seed is None else int(seed)
        self.notify: Callable[[], object] = notify or (lambda: None)
        self._lock = threading.Lock()
        self._input = InputState()
        self._seq = 0
        self._reset: ResetRequest | None = ResetRequest(seed=self.seed)
        self._slots: dict[int, EncodedFrame | None] = {}
        self._retired: list[Backend] = []
        self.paused = False
        self.resetting = False  # a reset is running on the clock's worker: not stepped meanwhile
        self.error: str | None = None
        self.index = -1  # index of the last frame made
        self.produced = 0  # frames made (all views of one tick count once)
        self.dropped = 0  # frames overwritten before the server took them
        self.last_action: Any = None
        self.caption: str | None = None

    # -- written by the server (event loop) ---------------------------------------------------
    def set_input(self, state: InputState) -> None:
        with self._lock:
            self._input = state
            self._seq = max(self._seq, state.seq)

    def note_seq(self, seq: int) -> None:
        """A non-input message (reset, pause) also counts as consumed input for latency."""
        with self._lock:
            self._seq = max(self._seq, seq)

    def request_reset(self, req: ResetRequest) -> None:
        with self._lock:
            self._reset = req

    def set_views(self, names: list[str], backends: dict[str, Backend]) -> None:
        """Change the streamed views; both restart from the session's seed so they stay in step."""
        with self._lock:
            new = {n: backends[n] for n in names}
            self._retired += [b for n, b in self.views.items() if n not in new]
            self.views = new
            self._slots = {}
            self._reset = ResetRequest(seed=self.seed)

    def take_frames(self) -> list[EncodedFrame]:
        """The newest frame of each view not yet taken (and empties the slots)."""
        with self._lock:
            out = [f for f in self._slots.values() if f is not None]
            self._slots = dict.fromkeys(self._slots)
        return out

    # -- used by the clock thread -------------------------------------------------------------
    def _snapshot(self) -> tuple[ResetRequest | None, InputState, int, dict[str, Backend]]:
        with self._lock:
            req, self._reset = self._reset, None
            return req, self._input, self._seq, dict(self.views)

    def _take_retired(self) -> list[Backend]:
        with self._lock:
            out, self._retired = self._retired, []
        return out

    def _finish_tick(self, frames: list[EncodedFrame]) -> None:
        """Count the tick's frames and leave them in the slots (replacing any not yet taken)."""
        if not frames:
            return
        self.index = frames[0].index
        self.produced += 1
        with self._lock:
            for f in frames:
                if self._slots.get(f.view) is not None:
                    self.dropped += 1
                self._slots[f.view] = f
        self.notify()


TickHook = Callable[[float, int, bool], None]  # (tick seconds, frames made, late)


class EngineClock:
    """Steps every active session once per tick, at most `fps` ticks per second."""

    def __init__(self, cfg: ClockConfig | None = None, on_tick: TickHook | None = None) -> None:
        self.cfg = cfg or ClockConfig()
        self.encoder = Encoder(self.cfg.encoder)
        self.on_tick = on_tick
        self._sessions: dict[int, PlaySession] = {}
        self._closing: list[PlaySession] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._resetter = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="reverie-reset")
        self._pending: set[concurrent.futures.Future[None]] = set()
        self.ticks = 0
        self.late_ticks = 0

    # -- session registry (any thread) --------------------------------------------------------
    def add(self, s: PlaySession) -> None:
        with self._lock:
            self._sessions[s.id] = s

    def remove(self, s: PlaySession) -> None:
        """The slot is freed on the clock thread before the next tick steps anything."""
        with self._lock:
            if self._sessions.pop(s.id, None) is not None:
                self._closing.append(s)

    @property
    def active(self) -> int:
        return len(self._sessions)

    # -- the loop -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="reverie-clock", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.wait_resets(timeout=10)
        with self._lock:
            self._closing.extend(self._sessions.values())
            self._sessions.clear()
        self._close_pending()

    def _run(self) -> None:
        period = 1.0 / self.cfg.fps
        deadline = time.perf_counter()
        while not self._stop.is_set():
            t0 = time.perf_counter()
            made = self.tick()
            now = time.perf_counter()
            deadline += period
            late = now > deadline
            if late:  # never catch up with a burst: start counting again from now
                self.late_ticks += 1
                deadline = now
            if self.on_tick is not None:
                self.on_tick(now - t0, made, late)
            self._stop.wait(max(0.0, deadline - now))

    def _close_pending(self) -> None:
        with self._lock:
            closing, self._closing = self._closing, []
            # A session still starting keeps its slot until the reset worker lets go of it.
            self._closing = [s for s in closing if s.resetting]
        for s in closing:
            if not s.resetting:
                for b in s.views.values():
                    b.close(s.sid)

    def wait_resets(self, timeout: float | None = None) -> None:
        """Block until every reset handed to the worker has finished (tests and bench)."""
        with self._lock:
            pending = list(self._pending)
        concurrent.futures.wait(pending, timeout=timeout)

    def tick(self) -> int:
        """One step of every active session; returns the number of frames made.

        Starting a world can take far longer than a tick (a dungeon is generated in ~0.3 s), so
        resets run on a worker thread and that session rejoins the batch once its first frame is out.
        """
        self._close_pending()
        with self._lock:
            sessions = list(self._sessions.values())
        # backend id -> (backend, [(session, view, seq)], [action])
        batches: dict[int, tuple[Backend, list[tuple[PlaySession, int, int]], list[Any]]] = {}
        for s in sessions:
            if s.resetting or s.error is not None:
                continue
            for b in s._take_retired():
                b.close(s.sid)
            req, state, seq, views = s._snapshot()
            if req is not None:
                s.resetting = True
                fut = self._resetter.submit(self._reset, s, req, seq, views)
                with self._lock:
                    self._pending.add(fut)
                fut.add_done_callback(self._reset_done)
                continue
            if s.paused:
                continue
            action = s.mapper(state)
            s.last_action = action
            for name, b in views.items():
                _, members, actions = batches.setdefault(id(b), (b, [], []))
                members.append((s, VIEWS.index(name), seq))
                actions.append(action)
        frames: dict[int, tuple[PlaySession, list[EncodedFrame]]] = {}
        for b, members, actions in batches.values():
            t0 = time.perf_counter()
            try:
                outs = b.step([s.sid for s, _, _ in members], actions)
            except Exception as e:  # one broken batch ends its sessions, never the clock
                log.exception("backend %s step failed", b.name)
                for s, _, _ in members:
                    s.error = f"the world failed to step: {e}"
                    s.notify()
                continue
            batch_s = time.perf_counter() - t0
            for (s, view, seq), out in zip(members, outs):
                frames.setdefault(s.id, (s, []))[1].append(self._encode(s, view, seq, out, batch_s))
        made = 0
        for s, fs in frames.values():
            if s.error is None:
                s._finish_tick(fs)
                made += len(fs)
        self.ticks += 1
        return made

    def _reset_done(self, fut: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._pending.discard(fut)

    def _reset(self, s: PlaySession, req: ResetRequest, seq: int, views: dict[str, Backend]) -> None:
        """On the reset worker: start every view of `s` from its seed and publish the first frames."""
        try:
            if req.seed is not None:
                s.seed = req.seed
            out = []
            for name, b in views.items():
                t0 = time.perf_counter()
                res = b.reset(s.sid, s.seed, prompt=req.prompt, image=req.image)
                out.append(self._encode(s, VIEWS.index(name), seq, res, time.perf_counter() - t0))
            s._finish_tick(out)
        except Exception as e:
            log.exception("reset failed")
            s.error = f"the world failed to start: {e}"
            s.notify()
        finally:
            s.resetting = False

    def _encode(self, s: PlaySession, view: int, seq: int, out: StepOut, batch_s: float) -> EncodedFrame:
        t0 = time.perf_counter()
        data = self.encoder(out.frame)
        gen_us = int((batch_s + time.perf_counter() - t0) * 1e6)
        if view == 0:
            s.caption = out.caption
        h, w = out.frame.shape[:2]
        return EncodedFrame(
            view, s.index + 1, seq, min(gen_us, 2**32 - 1), w, h, self.encoder.codec_id, data, out.caption
        )
