"""The clock's pipeline: a model's frames decoded on a helper thread beside the next tick's model pass."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pytest
from test_model_backend import make_tiny_run

from reverie.engine.backends import StepOut, splits
from reverie.engine.clock import (
    PIPELINE_RETRY,
    PIPELINE_WARMUP,
    ClockConfig,
    EngineClock,
    PlaySession,
    ResetRequest,
    _Pace,
)
from reverie.engine.controls import InputState
from reverie.engine.model_backend import ModelBackend, ModelConfig
from reverie.errors import ReverieError
from reverie.sizes import Size

KEYS = [frozenset(k) for k in (["w"], ["a"], ["w", "d"], [], ["s"], ["q"])]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_tiny_run(tmp_path_factory.mktemp("model"))


def _play(run: str, pipeline: str, ticks: int, seed: int = 11) -> list[tuple[int, int, bytes]]:
    """(index, input seq consumed, JPEG) of every frame a session got, the reset's first."""
    clock = EngineClock(ClockConfig(pipeline=pipeline))
    s = PlaySession({"dream": ModelBackend(run, ModelConfig(steps=1))}, seed=seed)
    clock.add(s)
    clock.tick()  # the reset goes to the clock's worker
    clock.wait_resets()
    out = [(f.index, f.seq, f.data) for f in s.take_frames()]
    for i in range(ticks):
        s.set_input(InputState(keys=KEYS[i % len(KEYS)], seq=i + 1))
        clock.tick()
        clock.wait_rendered()  # a pipelined tick's frame is sent by the render thread once decoded
        out += [(f.index, f.seq, f.data) for f in s.take_frames()]
    clock.stop()
    assert s.error is None and s.dropped == 0
    return out


def test_a_pipelined_clock_plays_the_same_frames(tiny_run: str) -> None:
    serial = _play(tiny_run, "off", 8)
    piped = _play(tiny_run, "on", 8)
    assert piped == serial  # the same pictures, indices and consumed inputs
    assert [seq for _, seq, _ in serial] == list(range(9))  # each frame names the input it consumed
    assert len({data for _, _, data in serial}) == 9  # every step is a new picture
    assert splits(ModelBackend(tiny_run)) and not splits(object())


class _Timed:
    """A backend in two halves that sleeps: advance `advance_s`, render `render_s` (or fails there)."""

    name, world, accepts_prompt, accepts_image = "timed", "none", False, False
    size = Size(8, 8)
    spec: ClassVar[dict[str, Any]] = {"type": "discrete", "n": 1, "names": ["noop"]}

    def __init__(self, advance_s: float, render_s: float, fail: bool = False, one_core: bool = False) -> None:
        self.advance_s, self.render_s, self.fail = advance_s, render_s, fail
        self.steps: dict[int, int] = {}
        self.gate = threading.Event()  # render waits for it: a frame held in flight
        self.gate.set()
        # one_core: both halves take one lock, as two threads sharing the one free core would
        self.core = threading.Lock() if one_core else contextlib.nullcontext()

    def reset(
        self, sid: int, seed: int, prompt: str | None = None, image: np.ndarray | None = None
    ) -> StepOut:
        self.steps[sid] = 0
        return StepOut(np.full((8, 8, 3), 200 + seed % 50, np.uint8))

    def advance(self, sids: Sequence[int], actions: Sequence[Any]) -> list[tuple[int, int]]:
        with self.core:
            time.sleep(self.advance_s)
        for sid in sids:
            self.steps[sid] += 1
        return [(sid, self.steps[sid]) for sid in sids]

    def render(self, made: list[tuple[int, int]]) -> list[StepOut]:
        self.gate.wait(10)
        with self.core:
            time.sleep(self.render_s)
        if self.fail:
            raise RuntimeError("decoder boom")
        return [StepOut(np.full((8, 8, 3), n, np.uint8)) for _, n in made]

    def step(self, sids: Sequence[int], actions: Sequence[Any]) -> list[StepOut]:
        return self.render(self.advance(sids, actions))

    def close(self, sid: int) -> None:
        self.steps.pop(sid, None)


def _ticks(clock: EngineClock, backend: Any, n: int) -> PlaySession:
    s = PlaySession({"dream": backend})
    clock.add(s)
    clock.tick()
    clock.wait_resets()
    for _ in range(n):
        clock.tick()
    return s


def test_auto_pipelines_a_backend_whose_step_fills_the_frame_period() -> None:
    # fps 20: a 50 ms period; auto turns on above 35 ms of step, so 45 ms does and 2 ms never does
    slow = EngineClock(ClockConfig(fps=20, pipeline="auto"))
    _ticks(slow, _Timed(0.02, 0.025), PIPELINE_WARMUP + 6)
    assert 1 <= slow.pipelined_ticks <= 6  # after the warm-up ticks, not before
    fast = EngineClock(ClockConfig(fps=20, pipeline="auto"))
    _ticks(fast, _Timed(0.0, 0.002), PIPELINE_WARMUP + 6)
    assert fast.pipelined_ticks == 0
    off = EngineClock(ClockConfig(fps=20, pipeline="off"))
    s = _ticks(off, _Timed(0.02, 0.025), PIPELINE_WARMUP + 6)
    assert off.pipelined_ticks == 0 and s.produced == PIPELINE_WARMUP + 7
    for c in (slow, fast, off):
        c.stop()


def test_auto_goes_back_to_serial_where_the_pipeline_does_not_pay() -> None:
    # The decision on given times (real sleeps on a busy machine overshoot by more than the margin):
    # a pipelined tick that costs what a serial step did turns the pipeline off after its own warm-up,
    # and it is tried again PIPELINE_RETRY steps later; one that costs half keeps it on.
    period = 0.02
    for piped_tick_s, stays_on in ((0.02, False), (0.01, True)):
        pace = _Pace()
        for _ in range(PIPELINE_WARMUP + 1):
            pace.note_step(0.02)  # two 10 ms halves, serially: over PIPELINE_ON of the period
        assert pace.pipelined(period)
        for _ in range(PIPELINE_WARMUP + 1):
            pace.note_step(0.02)
            pace.note_piped_tick(piped_tick_s)
        assert pace.pipelined(period) is stays_on
        if not stays_on:
            for _ in range(PIPELINE_RETRY - 1):
                pace.note_step(0.02)
                assert not pace.pipelined(period)
            pace.note_step(0.02)
            assert pace.pipelined(period)


def test_a_clock_whose_pipeline_does_not_pay_still_sends_every_frame() -> None:
    # both halves share one core (one lock): however the clock decides, a frame every tick, no error
    clock = EngineClock(ClockConfig(fps=50, pipeline="auto"))
    s = _ticks(clock, _Timed(0.01, 0.01, one_core=True), 3 * PIPELINE_WARMUP + 10)
    clock.wait_rendered()
    assert clock.pipelined_ticks > 0  # a 20 ms step fills the 20 ms period: it was tried
    assert s.error is None and s.produced == 3 * PIPELINE_WARMUP + 11
    clock.stop()


def test_a_frame_in_flight_is_not_sent_after_its_session_restarts() -> None:
    from reverie.engine.encode import decode

    clock = EngineClock(ClockConfig(pipeline="on"))
    b = _Timed(0.0, 0.0)
    s = _ticks(clock, b, 3)
    clock.wait_rendered()
    s.take_frames()
    dropped, produced = s.dropped, s.produced
    b.gate.clear()
    clock.tick()  # its frame is held in the decoder
    s.request_reset(ResetRequest(seed=5))
    threading.Timer(0.3, b.gate.set).start()  # let it go while the next tick waits for it
    clock.tick()  # takes the reset; the old world's frame finishes decoding and must not be sent
    clock.wait_resets()
    clock.wait_rendered()
    frames = s.take_frames()
    assert [int(decode(f.data).mean().round()) for f in frames] == [205]  # the new world's first frame
    assert (s.produced, s.dropped) == (produced + 1, dropped)  # nothing of the old world before or after
    clock.tick()
    clock.wait_rendered()
    assert [int(decode(f.data).mean().round()) for f in s.take_frames()] == [1]  # its first step
    clock.stop()


def test_a_pipelined_session_that_pauses_gets_its_last_frame() -> None:
    clock = EngineClock(ClockConfig(pipeline="on"))
    b = _Timed(0.0, 0.0)
    s = _ticks(clock, b, 3)
    s.paused = True
    clock.tick()  # nobody steps this backend now: the frame in flight still comes
    clock.wait_rendered()
    newest = s.take_frames()
    assert [f.index for f in newest] == [3] and b.steps[s.sid] == 3 and clock.pipelined_ticks == 3
    clock.stop()


def test_a_failing_render_ends_its_sessions_not_the_clock() -> None:
    clock = EngineClock(ClockConfig(pipeline="on"))
    bad = _ticks(clock, _Timed(0.0, 0.0, fail=True), 2)
    assert bad.error is not None and "decoder boom" in bad.error
    good = _ticks(clock, _Timed(0.0, 0.0), 3)
    clock.wait_rendered()
    assert good.error is None and good.produced == 4  # the reset frame and three steps
    clock.stop()


class _Plain(_Timed):
    """The same backend, stepping in one piece: the clock cannot pipeline it (a simulator)."""

    advance = render = None  # type: ignore[assignment]

    def step(self, sids: Sequence[int], actions: Sequence[Any]) -> list[StepOut]:
        return [StepOut(np.full((8, 8, 3), n, np.uint8)) for _, n in _Timed.advance(self, sids, actions)]


def test_a_tick_numbers_a_pipelined_view_and_a_serial_one_alike() -> None:
    clock = EngineClock(ClockConfig(pipeline="on"))
    s = PlaySession({"dream": _Timed(0.0, 0.0), "real": _Plain(0.0, 0.0)})
    clock.add(s)
    clock.tick()
    clock.wait_resets()
    got: dict[int, list[int]] = {0: [], 1: []}
    for _ in range(5):
        for f in s.take_frames():
            got[f.view].append(f.index)
        clock.tick()  # the real view's frame is sent now, the dream's once decoded
        clock.wait_rendered()
    for f in s.take_frames():
        got[f.view].append(f.index)
    assert got == {0: [0, 1, 2, 3, 4, 5], 1: [0, 1, 2, 3, 4, 5]}  # one number per tick for both panes
    assert s.produced == 6 and clock.pipelined_ticks == 5
    clock.stop()


def test_a_bad_pipeline_mode_is_refused_with_the_accepted_ones() -> None:
    with pytest.raises(ReverieError, match="auto, on, off"):
        ClockConfig(pipeline="sometimes")


def test_bench_engine_says_how_it_pipelined(tiny_run: str) -> None:
    import json

    from typer.testing import CliRunner

    from reverie.cli import app

    def bench(*extra: str) -> dict[str, Any]:
        argv = ["bench", "engine", "--model", tiny_run, "--frames", "20", "--json", *extra]
        res = CliRunner().invoke(app, argv)
        assert res.exit_code == 0, res.output
        return json.loads(res.output.strip().splitlines()[-1])

    assert bench("--pipeline", "on")["pipelined"] == 1.0
    assert bench("--pipeline", "off")["pipelined"] == 0.0
    res = CliRunner().invoke(app, ["bench", "engine", "--model", tiny_run, "--frames", "10", "--joins", "1"])
    assert isinstance(res.exception, ReverieError) and "more --frames" in str(res.exception)
    res = CliRunner().invoke(app, ["bench", "engine", "--model", tiny_run, "--pipeline", "maybe"])
    assert isinstance(res.exception, ReverieError) and "auto, on, off" in str(res.exception)
