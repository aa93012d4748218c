"""`reverie bench train`: training frames/s per (model kind, preset) on synthetic data, no files written.

Each result times the loop's own step (autocast forward, backward, clipping, AdamW, EMA) after warm-up.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from reverie.train.config import TrainConfig
from reverie.train.ema import EMA
from reverie.train.task import Task


def _time_steps(task: Task, cfg: TrainConfig, steps: int, warmup: int) -> float:
    """Seconds per training step (median) of `task` in this process."""
    from reverie.train.loop import _optimizer

    torch.manual_seed(cfg.seed)
    model = task.build_model()
    ema = EMA(model, cfg.ema_decay)
    opt = _optimizer(model, cfg)
    amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    times = []
    for step in range(warmup + steps):
        t0 = time.perf_counter()
        batch = task.batch(step, 0, 1)
        with amp:
            loss, _ = task.loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        ema.update(model, step)
        if step >= warmup:
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _autoencoder_task(preset: str, cfg: TrainConfig, size: tuple[int, int]) -> Task:
    from reverie.models.autoencoder import preset_config
    from reverie.train.autoencoder_task import AutoencoderTask

    w, h = size
    frames = np.random.default_rng(0).integers(0, 256, (256, h, w, 3), dtype=np.uint8)
    return AutoencoderTask.from_frames(frames, preset_config(preset), cfg)


def _dynamics_task(preset: str, cfg: TrainConfig, size: tuple[int, int]) -> Task | None:
    """The dynamics helper's synthetic task, when its module offers one (`DynamicsTask.synthetic`)."""
    try:
        from reverie.train.dynamics_task import DynamicsTask
    except ImportError:
        return None
    synthetic = getattr(DynamicsTask, "synthetic", None)
    return synthetic(preset=preset, cfg=cfg, size=size) if synthetic is not None else None


def presets(kind: str) -> list[str]:
    if kind == "autoencoder":
        from reverie.models.autoencoder import PRESETS as AE

        return list(AE)
    try:
        from reverie.models.dit import PRESETS as DIT
    except ImportError:
        return []
    return list(DIT)


def bench_train(
    kind: str, preset: str, *, batch_size: int, steps: int, size: tuple[int, int], precision: str
) -> dict[str, Any] | None:
    """One JSON-able result, or None when the kind/preset cannot be benchmarked in this build."""
    cfg = TrainConfig(batch_size=batch_size, precision=precision, warmup_steps=1)
    task = (_autoencoder_task if kind == "autoencoder" else _dynamics_task)(preset, cfg, size)
    if task is None:
        return None
    sec = _time_steps(task, cfg, steps, warmup=2)
    params = sum(p.numel() for p in task.build_model().parameters())
    return {
        "bench": "train",
        "kind": kind,
        "preset": preset,
        "size": f"{size[0]}x{size[1]}",
        "batch_size": batch_size,
        "precision": precision,
        "threads": torch.get_num_threads(),
        "params_m": round(params / 1e6, 3),
        "step_ms": round(sec * 1e3, 1),
        "frames_per_s": round(task.frames_per_batch() / sec, 1),
    }
