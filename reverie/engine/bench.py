"""`bench_engine`: the engine's tick (every session's batched step plus JPEG encode), unpaced."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from reverie.errors import ReverieError
from reverie.sizes import Size

# What a bench player holds, a new pick every 8 ticks
_KEYS = [frozenset(k) for k in ([], ["w"], ["w", "a"], ["w", "d"], ["a"], ["d"], ["s"], ["q"], ["e"])]


def bench_engine(
    model: str | None = None,
    world: str | None = None,
    *,
    size: Size | str = "64x64",
    frames: int = 1000,
    sessions: int = 1,
    quality: int = 85,
    seed: int = 0,
    steps: int | None = None,
    threads: int = 0,
    load: bool = False,
    joins: int = 0,
    progress: bool = False,
    pipeline: str = "auto",
) -> dict[str, Any]:
    """Time `frames` ticks of `sessions` players after a short warm-up; one JSON-able result dict.

    `model` (a run dir or model package) plays its own world, size and actions; otherwise `world`'s
    simulator plays at `size`. `steps` and `threads` (0: the default) apply to a model only. With
    `load`, the same ticks are timed again while another process keeps one core busy (as a training
    run beside the server does), and the result adds `loaded_*` and the slowdown. With `joins`, a
    guest player joins that many times during the timed ticks (evenly spaced) and leaves JOIN_STAY
    ticks later, as in a server with a queue (its start runs on the clock's reset worker meanwhile);
    the percentiles include every tick, and `join_ms_max` / `join_ms_p50` are the ticks that added
    the guest's row to the batch and the ticks it left on. `pipeline` is the clock's (ClockConfig);
    `pipelined` in the result is the share of ticks (warm-up included) that decoded beside the next.
    """
    from reverie.engine.backends import SimulatorBackend
    from reverie.engine.clock import ClockConfig, EngineClock, PlaySession
    from reverie.engine.encode import EncoderConfig

    if model is not None and world is not None:
        raise ValueError("bench_engine times a model or a world's simulator, not both")
    backend: Any
    if model is not None:
        from reverie.engine.model_backend import ModelBackend, ModelConfig

        try:
            backend = ModelBackend(model, ModelConfig(steps=steps, threads=threads or None))
        except ReverieError as e:
            raise ReverieError(f"--model {model}: {e}") from e
        world = backend.world
    elif world is not None:
        backend = SimulatorBackend(world, size)
    else:
        raise ValueError("bench_engine times a model or a world's simulator: give one")
    clock = EngineClock(ClockConfig(encoder=EncoderConfig(quality=quality), pipeline=pipeline))
    live = [PlaySession({"dream": backend}, seed=seed + i) for i in range(sessions)]
    for s in live:
        clock.add(s)
    clock.tick()
    clock.wait_resets()
    failed = [s.error for s in live if s.error is not None]
    if failed:
        clock.stop()
        raise ReverieError(f"{world} could not start: {failed[0]}")
    try:
        piped0, ticks0 = clock.pipelined_ticks, clock.ticks
        ms, at_join = _time_ticks(clock, live, frames, seed, progress, "bench engine", joins, backend)
        pipelined = (clock.pipelined_ticks - piped0) / max(1, clock.ticks - ticks0)
        if load:
            with busy_core():
                loaded, loaded_at_join = _time_ticks(
                    clock, live, frames, seed + 1, progress, "bench engine, one core busy", joins, backend
                )
    finally:
        clock.stop()
    if any(s.error is not None for s in live):
        raise ReverieError(f"{world} failed while stepping: {next(s.error for s in live if s.error)}")
    result = {
        "bench": "engine", "world": world, "backend": backend.name, "sessions": sessions, "frames": frames,
        "fps": round(1e3 / float(ms.mean()), 1), "frame_ms_p50": round(float(np.percentile(ms, 50)), 3),
        "frame_ms_p99": round(float(np.percentile(ms, 99)), 3), "height": backend.size.height,
        "width": backend.size.width, "steps": backend.sampler.steps if model else 0, "threads": getattr(backend, "threads", 1),
        "precision": str(getattr(backend, "dtype", "numpy")).replace("torch.", ""), "quality": quality,
        "pipeline": pipeline, "pipelined": round(pipelined, 2),
    }  # fmt: skip
    if joins:
        if not at_join.any():
            raise ReverieError(
                f"no guest got to play within {frames} frames (a start takes a while: a model ticks fast); "
                "give more --frames"
            )
        result |= {"joins": joins, "join_ticks": int(at_join.sum()), "join_ms_max": round(float(ms[at_join].max()), 3),
                   "join_ms_p50": round(float(np.percentile(ms[at_join], 50)), 3)}  # fmt: skip
    if load:
        result |= {
            "load": "one core busy", "loaded_fps": round(1e3 / float(loaded.mean()), 1),
            "loaded_frame_ms_p50": round(float(np.percentile(loaded, 50)), 3),
            "loaded_frame_ms_p99": round(float(np.percentile(loaded, 99)), 3),
            "loaded_slowdown": round(float(loaded.mean() / ms.mean()), 2),
        }  # fmt: skip
        if joins:
            result["loaded_join_ms_max"] = round(float(loaded[loaded_at_join].max()), 3)
    return result


JOIN_STAY = 30  # ticks a bench guest plays before it leaves


def _time_ticks(
    clock: Any,
    live: list[Any],
    frames: int,
    seed: int,
    progress: bool,
    desc: str,
    joins: int = 0,
    backend: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(milliseconds of `frames` ticks after a short warm-up, the players' keys changing every 8 ticks;
    which of them a guest's join or leave touched). A guest joins `joins` times, evenly spaced."""
    from tqdm import tqdm

    from reverie.engine.clock import PlaySession
    from reverie.engine.controls import InputState

    rng = np.random.default_rng(seed)
    times, touched = [], []
    warmup = min(50, frames // 10)
    period = frames // (joins + 1) if joins else 0
    join_at = {warmup + k * period for k in range(1, joins + 1)}
    guest, guest_since, joining = None, 0, False  # joining: reset asked, its row not yet in the batch
    for i in tqdm(range(warmup + frames), desc=desc, unit="tick", disable=not progress):
        if i in join_at and guest is None:  # a player leaves the queue and starts: a reset, then a join
            guest, guest_since, joining = PlaySession({"dream": backend}, seed=seed + 1000 + i), i, True
            clock.add(guest)
        leaving = guest is not None and i - guest_since >= JOIN_STAY and not joining
        if leaving:
            clock.remove(guest)
            guest = None
        if i % 8 == 0:  # a player holds a key for a few frames, like the exploration policy
            for s in live:
                s.set_input(InputState(keys=_KEYS[int(rng.integers(len(_KEYS)))], seq=i))
        # the guest's row comes in on the first tick that steps it (its action is then set), whenever its
        # start ends on the reset worker, and whether or not its frame is out yet (a pipelined clock)
        unstepped = guest is not None and guest.last_action is None
        t0 = time.perf_counter()
        clock.tick()
        elapsed = time.perf_counter() - t0
        joined = joining and unstepped and guest is not None and guest.last_action is not None
        joining = joining and not joined
        guest_since = i if joined else guest_since  # it plays JOIN_STAY ticks from here
        if i >= warmup:
            times.append(elapsed)
            touched.append(joined or leaving)
        for s in [*live, *([guest] if guest is not None else [])]:
            s.take_frames()
    return np.asarray(times) * 1e3, np.asarray(touched, dtype=bool)


@contextlib.contextmanager
def busy_core() -> Iterator[None]:
    """Another process keeps one core busy with one-thread matmuls (a training run's kind of load).

    A fresh interpreter (spawn: a forked torch can hang in its thread pool), stopped on exit; it also
    stops by itself when this process is gone, so a killed bench leaves nothing spinning.
    """
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_spin, args=(os.getpid(), ready, stop), daemon=True)
    proc.start()
    try:
        if not ready.wait(120):
            raise ReverieError("the background load process did not start within 120 s")
        yield
    finally:
        stop.set()
        proc.join(10)
        if proc.is_alive():
            proc.kill()


def _spin(parent: int, ready: Any, stop: Any) -> None:
    import torch

    torch.set_num_threads(1)
    a = torch.randn(256, 256)
    ready.set()
    while not stop.is_set() and os.getppid() == parent:
        for _ in range(50):
            a = torch.tanh(a @ a)
