"""Engine: controls, seeded determinism, batched == unbatched, the clock's latest-frame slots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pytest

from reverie.engine.backends import SimulatorBackend, StepOut
from reverie.engine.clock import ClockConfig, EngineClock, PlaySession, ResetRequest
from reverie.engine.controls import InputMapper, InputState
from reverie.engine.encode import decode
from reverie.engine.session import WorldSession
from reverie.errors import ReverieError
from reverie.sizes import Size

DUNGEON = "reverie/Dungeon-v0"
DRIVE = "reverie/Drive-v0"
DUNGEON_NAMES = ["noop", "forward", "back", "turn_left", "turn_right", "strafe_left", "strafe_right",
                 "forward_left", "forward_right"]  # fmt: skip
DRIVE_NAMES = ["noop", "accelerate", "brake", "left", "right", "accelerate_left", "accelerate_right"]
DUNGEON_BOX = {
    "type": "box",
    "shape": [3],
    "low": [-1.0] * 3,
    "high": [1.0] * 3,
    "names": ["move", "strafe", "turn"],
}
DRIVE_BOX = {
    "type": "box",
    "shape": [3],
    "low": [-1.0, 0, 0],
    "high": [1.0, 1, 1],
    "names": ["steer", "throttle", "brake"],
}


def keys(*k: str, **axes: float) -> InputState:
    return InputState(keys=frozenset(k), **axes)


def discrete(names: list[str]) -> InputMapper:
    return InputMapper({"type": "discrete", "n": len(names), "names": names})


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (keys(), "noop"),
        (keys("w"), "forward"),
        (keys("arrowup"), "forward"),
        (keys("keys"), "back"),
        (keys("a"), "turn_left"),
        (keys("arrowright"), "turn_right"),
        (keys("q"), "strafe_left"),
        (keys("e"), "strafe_right"),
        (keys("w", "a"), "forward_left"),
        (keys("w", "d"), "forward_right"),
        (keys("w", "s"), "noop"),  # opposite keys cancel
        (keys(forward=0.7, turn=-0.3), "forward"),  # a stick mostly pushed forward
        (keys(forward=0.7, turn=-0.7), "forward_left"),
        (keys(forward=0.1, turn=0.05), "noop"),  # inside the dead zone
        (InputState(buttons=frozenset({"strafe_right"}), keys=frozenset({"w"})), "strafe_right"),
    ],
)
def test_dungeon_keys_map_to_named_actions(state: InputState, expected: str) -> None:
    m = discrete(DUNGEON_NAMES)
    assert m.names[m(state)] == expected


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (keys("w"), "accelerate"),
        (keys("s"), "brake"),
        (keys("a"), "left"),
        (keys("d"), "right"),
        (keys("w", "d"), "accelerate_right"),
        (keys("e"), "right"),  # no strafing in a car: sideways input steers
        (keys(side=-0.9), "left"),
    ],
)
def test_drive_keys_map_to_named_actions(state: InputState, expected: str) -> None:
    m = discrete(DRIVE_NAMES)
    assert m.names[m(state)] == expected


def test_analog_axes_map_to_continuous_actions_by_name() -> None:
    dungeon = InputMapper(DUNGEON_BOX)
    np.testing.assert_allclose(dungeon(keys("w", "a")), [1, 0, -1])
    np.testing.assert_allclose(dungeon(keys(forward=0.5, side=-0.25, turn=0.75)), [0.5, -0.25, 0.75])
    np.testing.assert_allclose(dungeon(keys(forward=0.05)), [0, 0, 0])  # stick drift
    drive = InputMapper(DRIVE_BOX)
    np.testing.assert_allclose(drive(keys("w", "d")), [1, 1, 0])
    np.testing.assert_allclose(drive(keys("s")), [0, 0, 1])  # brake, never negative throttle
    np.testing.assert_allclose(drive(keys(forward=-0.5, side=0.5)), [0.5, 0, 0.5])
    assert drive(keys(forward=float("nan"))).tolist() == [0, 0, 0]


def _frames(session: WorldSession, seed: int, actions: Sequence[Any]) -> list[np.ndarray]:
    out = [session.reset(seed=seed).frame]
    out += [session.step(a).frame for a in actions]
    return out


@pytest.fixture(scope="module")
def dungeon() -> SimulatorBackend:
    return SimulatorBackend(DUNGEON, "64x64")


def _walk(n: int, spec: dict[str, Any], seed: int = 0) -> list[Any]:
    """A player's walk: held keys changing every few frames."""
    rng = np.random.default_rng(seed)
    m = InputMapper(spec)
    choices = [keys("w"), keys("w", "a"), keys("d"), keys("s"), keys("q"), keys()]
    return [m(choices[int(rng.integers(len(choices)))]) for _ in range(n // 4) for _ in range(4)]


def test_seed_reproduces_a_session(dungeon: SimulatorBackend) -> None:
    actions = _walk(24, dungeon.spec)
    with WorldSession(dungeon) as a, WorldSession(dungeon) as b:
        first, again = _frames(a, 7, actions), _frames(b, 7, actions)
        other = _frames(b, 8, actions)
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert not np.array_equal(first[0], other[0])  # another seed is another world
    assert any(not np.array_equal(first[0], f) for f in first[1:])  # the walk moves the view
    assert first[0].shape == (64, 64, 3) and first[0].dtype == np.uint8


@pytest.mark.parametrize("world", [DUNGEON, DRIVE])
def test_batched_step_equals_unbatched(world: str) -> None:
    batched, alone = SimulatorBackend(world, "48x32"), SimulatorBackend(world, "48x32")
    acts_a, acts_b = _walk(16, batched.spec, seed=1), _walk(16, batched.spec, seed=2)
    batched.reset(1, seed=3)
    batched.reset(2, seed=4)
    alone.reset(1, seed=3)
    for a, b in zip(acts_a, acts_b):
        out_a, out_b = batched.step([1, 2], [a, b])
        (single,) = alone.step([1], [a])
        assert np.array_equal(out_a.frame, single.frame)
        assert out_a.frame.shape == (32, 48, 3)
    assert not np.array_equal(out_a.frame, out_b.frame)
    batched.close_all()
    alone.close_all()


def _settle(clock: EngineClock) -> None:
    """One tick that hands resets to the worker, then wait for their first frames."""
    clock.tick()
    clock.wait_resets(timeout=30)


def test_clock_steps_sessions_in_one_tick_and_keeps_only_the_latest_frame(dungeon: SimulatorBackend) -> None:
    clock = EngineClock(ClockConfig(fps=30))
    a, b = PlaySession({"dream": dungeon}, seed=5), PlaySession({"dream": dungeon}, seed=5)
    clock.add(a)
    clock.add(b)
    _settle(clock)
    (fa,), (fb,) = a.take_frames(), b.take_frames()
    assert fa.index == fb.index == 0 and fa.data == fb.data  # same seed, same first frame
    a.set_input(InputState(keys=frozenset({"w"}), seq=3))
    clock.tick()
    (f1,) = a.take_frames()
    assert (f1.index, f1.seq) == (1, 3)
    assert decode(f1.data).shape == (64, 64, 3)
    assert a.take_frames() == []  # taken frames are gone
    for _ in range(3):  # a client that does not keep up skips frames, it never queues them
        clock.tick()
    (latest,) = a.take_frames()
    assert latest.index == 4 and a.dropped == 2 and a.produced == 5
    b.paused = True
    clock.tick()
    assert b.take_frames()[0].index < a.take_frames()[0].index  # paused b made no new frame
    clock.remove(a)
    clock.tick()
    assert a.sid not in dungeon._envs and b.sid in dungeon._envs  # a's slot was freed
    clock.stop()


def test_reset_request_replays_the_seed_and_two_views_stay_in_step(dungeon: SimulatorBackend) -> None:
    real = SimulatorBackend(DUNGEON, "64x64")
    clock = EngineClock()
    s = PlaySession({"dream": dungeon, "real": real}, seed=11)
    clock.add(s)
    _settle(clock)
    start = {f.view: f.data for f in s.take_frames()}
    assert start[0] == start[1]
    s.set_input(InputState(keys=frozenset({"w", "d"}), seq=1))
    for _ in range(5):
        clock.tick()
    moved = s.take_frames()
    assert {f.view for f in moved} == {0, 1} and moved[0].data == moved[1].data
    s.request_reset(ResetRequest())  # no seed: the same world again
    _settle(clock)
    again = {f.view: f.data for f in s.take_frames()}
    assert again == start
    clock.stop()


class _Broken:
    """A backend whose step fails: the clock must end its sessions and keep ticking for others."""

    name, world, accepts_prompt, accepts_image = "broken", "none", False, False
    size = Size(8, 8)  # a backend's own size, not a recording size
    spec: ClassVar[dict[str, Any]] = {"type": "discrete", "n": 1, "names": ["noop"]}

    def reset(
        self, sid: int, seed: int, prompt: str | None = None, image: np.ndarray | None = None
    ) -> StepOut:
        return StepOut(np.zeros((8, 8, 3), np.uint8))

    def step(self, sids: Sequence[int], actions: Sequence[Any]) -> list[StepOut]:
        raise RuntimeError("boom")

    def close(self, sid: int) -> None:
        pass


def test_a_failing_backend_ends_its_sessions_not_the_clock(dungeon: SimulatorBackend) -> None:
    clock = EngineClock()
    bad, good = PlaySession({"dream": _Broken()}), PlaySession({"dream": dungeon})
    clock.add(bad)
    clock.add(good)
    _settle(clock)
    for _ in range(3):
        clock.tick()
    assert bad.error is not None and "boom" in bad.error
    assert good.error is None and good.produced == 4
    clock.stop()


def test_clock_thread_ticks_and_stops() -> None:
    ticks: list[int] = []
    clock = EngineClock(ClockConfig(fps=200), on_tick=lambda s, n, late: ticks.append(n))
    clock.start()
    while len(ticks) < 5:
        clock._stop.wait(0.01)
    clock.stop()
    assert clock.ticks >= 5 and clock._thread is None


@pytest.mark.parametrize("codec", ["jpeg", "webp"])
def test_encoder_round_trip(codec: str) -> None:
    from reverie.engine.encode import Encoder, EncoderConfig

    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, 32:] = (200, 40, 10)  # two flat halves survive lossy coding within a few levels
    out = decode(Encoder(EncoderConfig(codec=codec, quality=90))(frame))
    assert out.shape == (48, 64, 3)
    assert np.abs(out[:, 40:].astype(int) - (200, 40, 10)).max() < 12
    with pytest.raises(ReverieError):
        EncoderConfig(codec="gif")


def test_bench_engine_and_play_cli() -> None:
    import json

    from typer.testing import CliRunner

    from reverie.cli import app

    runner = CliRunner()
    argv = "bench engine --world reverie/Dungeon-v0 --frames 20 --sessions 2 --size 32x32 --json"
    res = runner.invoke(app, argv.split())
    assert res.exit_code == 0, res.output
    line = json.loads(res.output.strip().splitlines()[-1])
    assert line["sessions"] == 2 and line["backend"] == "simulator" and line["steps"] == 0
    assert (line["width"], line["height"]) == (32, 32) and line["fps"] > 0
    assert line["frame_ms_p50"] <= line["frame_ms_p99"]
    res = runner.invoke(app, ["play", "--model", "nope"])
    assert isinstance(res.exception, ReverieError) and "--model" in str(res.exception)


def test_bench_engine_load_times_quiet_then_busy() -> None:
    import json
    import multiprocessing as mp

    from typer.testing import CliRunner

    from reverie.cli import app

    argv = "bench engine --world reverie/Dungeon-v0 --frames 20 --size 32x32 --load --json"
    res = CliRunner().invoke(app, argv.split())
    assert res.exit_code == 0, res.output
    line = json.loads(res.output.strip().splitlines()[-1])
    assert line["load"] == "one core busy" and line["loaded_fps"] > 0 and line["fps"] > 0
    assert line["loaded_frame_ms_p50"] <= line["loaded_frame_ms_p99"]
    ratio = (1e3 / line["loaded_fps"]) / (1e3 / line["fps"])
    assert line["loaded_slowdown"] == pytest.approx(ratio, rel=0.05)
    assert not [p for p in mp.active_children() if p.is_alive()]  # the load process is gone


def test_busy_core_runs_a_process_and_stops_it() -> None:
    import multiprocessing as mp
    import threading

    from reverie.engine.bench import _spin, busy_core

    with busy_core():
        alive = [p for p in mp.active_children() if p.is_alive()]
        assert len(alive) == 1
    alive[0].join(5)
    assert not alive[0].is_alive()
    # an orphaned spinner (its parent pid no longer matches) returns by itself
    import torch

    threads = torch.get_num_threads()  # _spin sets its process's threads: this test's, here
    ready, stop = threading.Event(), threading.Event()
    done = threading.Thread(target=_spin, args=(-1, ready, stop))
    done.start()
    done.join(60)
    torch.set_num_threads(threads)
    assert ready.is_set() and not done.is_alive() and not stop.is_set()
