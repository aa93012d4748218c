"""`reverie bench train`: training frames/s per (model kind, preset) on synthetic data, no files written.

Each result times the loop's own step (autocast forward, backward, clipping, AdamW, EMA) after warm-up.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from reverie.cpus import uses_bf16
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
    amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=uses_bf16(cfg.precision, torch.device("cpu")))
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
    """The dynamics task over random latents of the autoencoder's shape (8x smaller than the frames)."""
    try:
        from reverie.models.autoencoder import PRESETS as AE
        from reverie.train.dynamics_task import DynamicsTask, LatentClips
    except ImportError:
        return None
    C, s = AE["small"].latent_channels, AE["small"].stride
    N = 512
    g = torch.Generator().manual_seed(0)
    clips = LatentClips(
        z=torch.randn(N, C, size[1] // s, size[0] // s, generator=g),
        act=torch.randint(0, 9, (N,), generator=g),
        cap=torch.zeros(N, dtype=torch.long),
        captions=["a stone corridor"],
        lengths=[N],
    )
    spec = {"type": "discrete", "n": 9}
    return DynamicsTask.from_latents(clips, None, spec, preset, cfg.seed, batch_size=cfg.batch_size)


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
        "precision": "bf16" if uses_bf16(precision, torch.device("cpu")) else "fp32",
        "threads": torch.get_num_threads(),
        "params_m": round(params / 1e6, 3),
        "step_ms": round(sec * 1e3, 1),
        "frames_per_s": round(task.frames_per_batch() / sec, 1),
    }


def bench_codec(preset: str, *, size: tuple[int, int], precision: str, frames: int = 200) -> dict[str, Any]:
    """Milliseconds to encode and to decode one frame (batch 1, after warm-up), as play and reset use it."""
    from reverie.models.autoencoder import PRESETS, Autoencoder

    model = Autoencoder(PRESETS[preset]).eval()
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # as load_autoencoder
    w, h = size
    x = torch.rand(1, 3, h, w) * 2 - 1
    amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    enc, dec = [], []
    with torch.inference_mode(), amp:
        for i in range(frames + 20):
            t0 = time.perf_counter()
            z = model.encode(x)
            t1 = time.perf_counter()
            model.decode(z)
            t2 = time.perf_counter()
            if i >= 20:
                enc.append(t1 - t0)
                dec.append(t2 - t1)
    both = np.add(enc, dec)
    return {
        "bench": "autoencoder",
        "preset": preset,
        "size": f"{w}x{h}",
        "precision": precision,
        "threads": torch.get_num_threads(),
        "encode_ms_p50": round(float(np.median(enc)) * 1e3, 3),
        "decode_ms_p50": round(float(np.median(dec)) * 1e3, 3),
        "encode_decode_ms_p50": round(float(np.median(both)) * 1e3, 3),
        "encode_decode_ms_p99": round(float(np.percentile(both, 99)) * 1e3, 3),
    }
