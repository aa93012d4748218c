"""The long start-from-nothing rollout on the second core, and one progress bar across every stage.

The drift rollout is one long chain of frames that nothing else waits on until the end, so when a
second core is free it runs in its own process (spawned: a forked torch can deadlock) while the main
process scores everything else; each process uses one thread, which on a CPU beats two threads
fighting over one batch. `DriftJob` is plain data, so the same `run_drift_job` runs in-process when
only one core is available.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from reverie.errors import ReverieError
from reverie.eval.drift import DriftRun
from reverie.models.world_model import START_CAPTION

__all__ = ["BackgroundDrift", "DriftJob", "Progress", "run_drift_job"]


@dataclass
class DriftJob:
    predictor: str  # model | simulator | copy-last
    model: str | None
    precision: str
    steps: int | None
    context_noise: float | None
    world: str
    size: str
    continuous: bool
    seeds: list[int]
    context: np.ndarray  # (B, W, H, W, 3) the real frames up to the player's start
    act: np.ndarray  # (B, W - 1 + T[, D]) aligned with them, then the dream's actions
    sheet_at: list[int]
    idm_state: dict[str, Any] | None = None  # InverseDynamics weights, to score each generated pair
    idm_actions: int = 0
    idm_width: int = 32
    threads: int | None = None
    start_caption: bool = START_CAPTION  # the player's start plays with its walk's caption as its text
    context_blur: float | None = None  # None: the model's play setting


def run_drift_job(job: DriftJob, tick: Any = None) -> DriftRun:
    """Build the predictor the player would see and run the long rollout."""
    import torch

    from reverie.eval.drift import generate_drift, latent_features, pixel_features
    from reverie.eval.rollout import CopyLastPredictor, Predictor, SimulatorPredictor

    if job.threads:
        torch.set_num_threads(job.threads)
    pred: Predictor
    if job.predictor == "model":
        from reverie.eval.player import EnginePredictor

        assert job.model is not None
        engine = EnginePredictor(job.model, precision=job.precision, steps=job.steps,
                                 context_noise=job.context_noise, context_blur=job.context_blur,
                                 threads=job.threads,
                                 start_caption=job.start_caption)  # fmt: skip
        pred, features = engine, latent_features(engine.encode)
    elif job.predictor == "simulator":
        pred, features = SimulatorPredictor(job.world, job.size, job.continuous), pixel_features
    else:
        pred, features = CopyLastPredictor(), pixel_features
    score = None
    if job.idm_state is not None:
        from reverie.eval.idm import InverseDynamics

        idm = InverseDynamics(job.idm_actions, job.idm_width)
        idm.load_state_dict(job.idm_state)
        score = idm.eval().hits
    return generate_drift(pred, job.context, job.act, job.seeds, features, job.sheet_at, score,
                          tick=tick or (lambda n: None))  # fmt: skip


def _worker(job: DriftJob, counter: Any, out: Any) -> None:
    def tick(n: int) -> None:
        with counter.get_lock():
            counter.value += n

    try:
        out.put(("ok", run_drift_job(job, tick)))
    except BaseException as e:  # the parent re-raises it with the worker's traceback
        out.put(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))


class Progress:
    """One tqdm bar over every stage (unit: generated frames, summed over rows), with an ETA."""

    def __init__(self, total: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="frame", desc="eval", disable=not enabled, smoothing=0.05)
        self.background: Any = None  # a shared counter the drift worker advances
        self._seen = 0

    def stage(self, name: str) -> None:
        self.bar.set_description(f"eval: {name}")
        self.sync()

    def tick(self, n: int) -> None:
        self.bar.update(n)
        self.sync()

    def sync(self) -> None:
        if self.background is not None:
            now = int(self.background.value)
            if now > self._seen:
                self.bar.update(now - self._seen)
                self._seen = now

    def close(self) -> None:
        self.bar.close()


class BackgroundDrift:
    """A DriftJob in a spawned process; `result()` waits for it (advancing the bar) and re-raises errors."""

    def __init__(self, job: DriftJob, progress: Progress) -> None:
        ctx = mp.get_context("spawn")
        self.counter = ctx.Value("q", 0)
        self.out = ctx.Queue()
        self.proc = ctx.Process(target=_worker, args=(job, self.counter, self.out), daemon=True)
        self.progress = progress
        progress.background = self.counter
        self.proc.start()

    def result(self) -> DriftRun:
        try:
            while True:
                self.progress.sync()
                try:
                    status, payload = self.out.get(timeout=0.5)
                    break
                except queue.Empty:
                    if not self.proc.is_alive():
                        raise ReverieError(
                            f"the drift worker died (exit code {self.proc.exitcode}) before reporting"
                        ) from None
            self.progress.sync()
            self.proc.join(timeout=10)
        finally:
            self.stop()
        if status != "ok":
            raise ReverieError(f"the drift rollout failed in its worker: {payload}")
        assert isinstance(payload, DriftRun)
        return payload

    def stop(self) -> None:
        """End the worker (an interrupted eval leaves nothing running)."""
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=5)
