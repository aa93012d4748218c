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

Pipeline (`ClockConfig.pipeline`): a backend that offers its step in two halves (`advance`, the model
pass; `render`, the decoder) may have one tick's frames decoded on a render thread while the next
tick's model pass runs, so a tick costs about the longer half instead of their sum. The render thread
sends each frame as soon as it is decoded, so a player waits little longer than a serial tick would
make them (the two halves slow each other down a little). Measured on a 2-core AMD EPYC without bf16
math (the shipped model in fp32): one player 37-39 -> 51-62 fps, two players 22-23 -> 32-42 fps each;
key-to-frame latency in Chromium 50 -> 61 ms. "auto" turns it on only where the serial step takes most
of the frame period, so a fast CPU keeps the serial step. A session that restarts meanwhile never gets
the old world's frame (its `generation` moved on). A session's "real" view (the simulator) is not
pipelined: beside a pipelined dream its frame may come a moment earlier.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reverie.engine.backends import Backend, StepOut, splits
from reverie.engine.controls import InputMapper, InputState
from reverie.engine.encode import Encoder, EncoderConfig
from reverie.engine.session import new_sid, random_seed
from reverie.errors import ReverieError

log = logging.getLogger("reverie.engine")

VIEWS = ("dream", "real")  # the view id on the wire is the index here
_IDS = itertools.count(1)


PIPELINE_MODES = ("auto", "on", "off")
# auto: a backend's frames are rendered beside its next tick once its step (model pass + decode) takes
# over PIPELINE_ON of the frame period, averaged over ticks, and serially again below PIPELINE_OFF, or
# when a pipelined tick costs over PIPELINE_PAYS of the serial step: with the other core busy (a
# training run beside the server) the helper thread has no core of its own, and one player's frame
# rate fell from 37 to 31 fps pipelined (2-core AVX2 CPU). After that it waits PIPELINE_RETRY ticks.
PIPELINE_ON, PIPELINE_OFF, PIPELINE_PAYS = 0.7, 0.5, 0.9
PIPELINE_WARMUP = 20  # ticks not counted after a backend starts or switches (the first passes are slower)
PIPELINE_EMA = 0.05  # weight of a tick in a running time
PIPELINE_RETRY = 300  # ticks (10 s at 30 fps) before a pipeline that did not pay is tried again


@dataclass(frozen=True)
class ClockConfig:
    fps: float = 30.0
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    # Rendering a model's frames (the decoder) on a render thread beside the next tick's model pass: a
    # tick then costs about the longer of the two, not their sum (on a 2-core AVX2 CPU two players'
    # tick fell from ~43 to ~25 ms), each frame sent once decoded. "auto": only where the serial step
    # would take most of the frame period; "on", "off": always, never.
    pipeline: str = "auto"

    def __post_init__(self) -> None:
        if self.pipeline not in PIPELINE_MODES:
            raise ReverieError(f"bad pipeline {self.pipeline!r}; accepted: {', '.join(PIPELINE_MODES)}")


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
        self.generation = 0  # resets taken by the clock: a frame still rendering from before one is dropped
        self.index = -1  # index of the newest frame sent
        self.numbered = 0  # the next frame's index: a reset's first frame or a tick's (every view the same)
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

    def _finish_tick(self, frames: list[EncodedFrame], generation: int | None = None) -> bool:
        """Count the tick's frames and leave them in the slots (replacing any not yet taken). With
        `generation` (frames decoded on the render thread), only if the session has not restarted since."""
        if not frames:
            return False
        with self._lock:
            if generation is not None and generation != self.generation:
                return False
            if frames[0].index > self.index:  # a tick's views may come apart (a pipelined one later)
                self.index = frames[0].index
                self.produced += 1
            for f in frames:
                if self._slots.get(f.view) is not None:
                    self.dropped += 1
                self._slots[f.view] = f
        self.notify()
        return True

    def _restart(self) -> None:
        """A reset was taken: frames still decoding from before it will not be shown."""
        with self._lock:
            self.generation += 1


TickHook = Callable[[float, int, bool], None]  # (tick seconds, frames made, late)

# (session, view, input seq consumed, session generation, frame index)
Member = tuple[PlaySession, int, int, int, int]


class _Pace:
    """One backend's running times, for `pipeline="auto"`: whether its frames render beside the next tick."""

    def __init__(self) -> None:
        self.steps = 0  # steps timed
        self.step_s = 0.0  # running time of a step's two halves together (serial, or each on its thread)
        self.piped = False
        self.piped_ticks = 0  # ticks since the pipeline turned on
        self.tick_s = 0.0  # running time a pipelined tick spends on it (its model pass + the wait for frames)
        self.serial_s = 0.0  # step_s when the pipeline turned on: what a serial tick cost
        self.retry_at = 0  # the pipeline did not pay: not before this many steps

    def pipelined(self, period: float) -> bool:
        if not self.piped:
            if (
                self.steps > PIPELINE_WARMUP
                and self.steps >= self.retry_at
                and self.step_s > PIPELINE_ON * period
            ):
                self.piped, self.piped_ticks, self.serial_s = True, 0, self.step_s
        elif self.steps > PIPELINE_WARMUP and self.step_s < PIPELINE_OFF * period:
            self.piped = False
        elif self.piped_ticks > PIPELINE_WARMUP and self.tick_s > PIPELINE_PAYS * self.serial_s:
            self.piped, self.retry_at = False, self.steps + PIPELINE_RETRY
        return self.piped

    def note_step(self, seconds: float) -> None:
        """One step's two halves took `seconds` (the warm-up steps are not averaged in)."""
        self.steps += 1
        self.step_s = _running(self.step_s, seconds, self.steps <= PIPELINE_WARMUP)

    def note_piped_tick(self, seconds: float) -> None:
        """A pipelined tick spent `seconds` on this backend."""
        self.piped_ticks += 1
        self.tick_s = _running(self.tick_s, seconds, self.piped_ticks <= PIPELINE_WARMUP)


def _running(avg: float, x: float, restart: bool) -> float:
    return x if restart else avg + PIPELINE_EMA * (x - avg)


@dataclass
class _InFlight:
    """One backend's tick whose frames are still rendering on the helper thread."""

    key: int  # id of the backend
    backend: Backend
    future: concurrent.futures.Future[tuple[int, float]]  # (frames published, render seconds)
    advance_s: float
    members: list[Member]


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
        self._renderer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="reverie-render")
        self._inflight: dict[int, _InFlight] = {}  # backend id -> its tick being rendered
        self._pace: defaultdict[int, _Pace] = defaultdict(_Pace)  # backend id -> its running times ("auto")
        self.ticks = 0
        self.late_ticks = 0
        self.pipelined_ticks = 0  # ticks in which some backend's frames were rendered beside the next

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
        for fl in self._inflight.values():  # frames nobody will take; let the renderer finish them
            concurrent.futures.wait([fl.future], timeout=10)
        self._inflight.clear()
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
        # backend id -> (backend, [(session, view, seq, generation)], [action])
        batches: dict[int, tuple[Backend, list[Member], list[Any]]] = {}
        for s in sessions:
            if s.resetting or s.error is not None:
                continue
            for b in s._take_retired():
                b.close(s.sid)
            req, state, seq, views = s._snapshot()
            if req is not None:
                s.resetting = True
                s._restart()
                fut = self._resetter.submit(self._reset, s, req, seq, views)
                with self._lock:
                    self._pending.add(fut)
                fut.add_done_callback(self._reset_done)
                continue
            if s.paused:
                continue
            action = s.mapper(state)
            s.last_action = action
            index, s.numbered = s.numbered, s.numbered + 1
            for name, b in views.items():
                _, members, actions = batches.setdefault(id(b), (b, [], []))
                members.append((s, VIEWS.index(name), seq, s.generation, index))
                actions.append(action)
        frames: dict[int, tuple[PlaySession, list[EncodedFrame]]] = {}
        made = 0
        for key in [k for k in self._inflight if k not in batches]:  # nobody left to step: land the last
            made += self._land(self._inflight.pop(key))
        piped = False
        for key, (b, members, actions) in batches.items():
            sids = [s.sid for s, *_ in members]
            if not self._pipelined(key, b):
                if key in self._inflight:  # back to serial: the frames in flight first
                    made += self._land(self._inflight.pop(key))
                t0 = time.perf_counter()
                try:
                    if splits(b):  # the same step, in its halves, to time it for the pipeline decision
                        adv = b.advance(sids, actions)  # type: ignore[attr-defined]
                        outs = b.render(adv)  # type: ignore[attr-defined]
                    else:
                        outs = b.step(sids, actions)
                except Exception as e:  # one broken batch ends its sessions, never the clock
                    self._failed(b, members, e)
                    continue
                batch_s = time.perf_counter() - t0
                self._pace[key].note_step(batch_s)
                self._deliver(members, outs, batch_s, frames)
                continue
            piped = True
            t0 = time.perf_counter()
            try:
                adv = b.advance(sids, actions)  # type: ignore[attr-defined]
            except Exception as e:
                self._failed(b, members, e)
                continue
            advance_s = time.perf_counter() - t0
            if key in self._inflight:  # the last tick's frames, decoded (and sent) meanwhile
                made += self._land(self._inflight.pop(key))
            self._pace[key].note_piped_tick(time.perf_counter() - t0)
            rendering = self._renderer.submit(self._render, b, adv, members, advance_s)
            self._inflight[key] = _InFlight(key, b, rendering, advance_s, members)
        self.pipelined_ticks += piped
        for s, fs in frames.values():
            if s.error is None:
                s._finish_tick(fs)
                made += len(fs)
        self.ticks += 1
        return made

    def _pipelined(self, key: int, b: Backend) -> bool:
        """Whether backend `b` (id `key`) renders this tick's frames beside the next tick."""
        mode = self.cfg.pipeline
        if mode == "off" or not splits(b):
            return False
        if mode == "on":
            return True
        return self._pace[key].pipelined(1.0 / self.cfg.fps)

    def _render(self, b: Backend, adv: Any, members: list[Member], advance_s: float) -> tuple[int, float]:
        """On the render thread: decode a tick's frames and send each as soon as it is ready (the
        player waits no longer than a serial tick would make them), unless its session has since
        restarted, ended or failed. Returns (frames sent, decode seconds)."""
        t0 = time.perf_counter()
        outs = b.render(adv)  # type: ignore[attr-defined]
        render_s = time.perf_counter() - t0
        frames: dict[int, tuple[PlaySession, list[EncodedFrame]]] = {}
        self._deliver(members, outs, advance_s + render_s, frames)
        gens = {s.id: gen for s, _, _, gen, _ in members}
        return sum(len(fs) for s, fs in frames.values() if s._finish_tick(fs, gens[s.id])), render_s

    def _land(self, fl: _InFlight) -> int:
        """Wait for a tick decoding on the render thread; the number of frames it sent."""
        try:
            sent, render_s = fl.future.result()
        except Exception as e:
            self._failed(fl.backend, fl.members, e)
            return 0
        self._pace[fl.key].note_step(fl.advance_s + render_s)
        return sent

    def wait_rendered(self, timeout: float | None = None) -> None:
        """Block until the frames decoding on the render thread are sent (tests and bench)."""
        concurrent.futures.wait([fl.future for fl in self._inflight.values()], timeout=timeout)

    def _deliver(
        self,
        members: list[Member],
        outs: list[StepOut],
        batch_s: float,
        frames: dict[int, tuple[PlaySession, list[EncodedFrame]]],
    ) -> None:
        """Encode each session's output, unless the session has since restarted, ended or failed."""
        with self._lock:
            live = set(self._sessions)
        for (s, view, seq, gen, index), out in zip(members, outs):
            if s.generation == gen and s.error is None and s.id in live:
                frames.setdefault(s.id, (s, []))[1].append(self._encode(s, view, seq, out, batch_s, index))

    def _failed(self, b: Backend, members: list[Member], e: Exception) -> None:
        """One broken batch ends its sessions, never the clock."""
        log.exception("backend %s step failed", b.name)
        for s, *_ in members:
            s.error = f"the world failed to step: {e}"
            s.notify()

    def _reset_done(self, fut: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._pending.discard(fut)

    def _reset(self, s: PlaySession, req: ResetRequest, seq: int, views: dict[str, Backend]) -> None:
        """On the reset worker: start every view of `s` from its seed and publish the first frames."""
        try:
            if req.seed is not None:
                s.seed = req.seed
            out = []
            index, s.numbered = s.numbered, s.numbered + 1  # the clock does not step it meanwhile
            for name, b in views.items():
                t0 = time.perf_counter()
                res = b.reset(s.sid, s.seed, prompt=req.prompt, image=req.image)
                out.append(self._encode(s, VIEWS.index(name), seq, res, time.perf_counter() - t0, index))
            s._finish_tick(out)
        except Exception as e:
            log.exception("reset failed")
            s.error = f"the world failed to start: {e}"
            s.notify()
        finally:
            s.resetting = False

    def _encode(
        self, s: PlaySession, view: int, seq: int, out: StepOut, batch_s: float, index: int
    ) -> EncodedFrame:
        t0 = time.perf_counter()
        data = self.encoder(out.frame)
        gen_us = int((batch_s + time.perf_counter() - t0) * 1e6)
        if view == 0:
            s.caption = out.caption
        h, w = out.frame.shape[:2]
        return EncodedFrame(
            view, index, seq, min(gen_us, 2**32 - 1), w, h, self.encoder.codec_id, data, out.caption
        )
