"""Measures over a Predictor and real episodes (definitions in docs/measures.md): teacher-forced
PSNR/SSIM, rollout PSNR@k beside the copy-last-frame baseline, dtPSNR@k (control) and sharpness.

Honest means: a frame pair that is identical in the real episode (the last context frame and the
real frame k steps later, or two consecutive real frames for teacher forcing) is a free 120 dB for
copy-last; such pairs are left out of every PSNR mean and median, for the model and the baseline
alike, and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reverie.eval.image_stats import gradient_magnitude
from reverie.eval.metrics import psnr, ssim
from reverie.eval.rollout import CopyLastPredictor, Predictor, RealEpisodes

__all__ = [
    "DT_HORIZONS",
    "HORIZONS",
    "RolloutScores",
    "copy_last_scores",
    "dtpsnr",
    "honest",
    "rollout_scores",
    "sharpness",
    "teacher_forced",
]

HORIZONS: tuple[int, ...] = (1, 4, 8, 16, 64)
DT_HORIZONS: tuple[int, ...] = (4, 8, 16)
Tick = Callable[[int], None]  # progress: called with the number of frames just generated


def _no_tick(n: int) -> None:
    pass


def honest(values: np.ndarray, identical: np.ndarray) -> dict[str, Any]:
    """Mean and median of `values` over the entries whose real pair is not identical; counts both."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    keep = ~np.asarray(identical, dtype=bool).reshape(-1)
    kept = v[keep]
    return {
        "mean": float(kept.mean()) if kept.size else None,
        "median": float(np.median(kept)) if kept.size else None,
        "n": int(kept.size),
        "excluded": int(v.size - kept.size),
    }


def _identical(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether each frame pair (..., H, W, 3) is bit-identical: (...,) bool."""
    return np.asarray((np.asarray(a) == np.asarray(b)).all(axis=(-3, -2, -1)))


@dataclass
class RolloutScores:
    psnr: np.ndarray  # (B, K) PSNR of generated frame k vs real frame k, every k = 1..K
    identical: np.ndarray  # (B, K) the real frame k equals the last context frame
    horizons: tuple[int, ...]
    frames: np.ndarray = field(repr=False)  # generated (B, K, H, W, 3) uint8

    def at(self, k: int) -> dict[str, Any]:
        return honest(self.psnr[:, k - 1], self.identical[:, k - 1])

    @property
    def psnr_at(self) -> dict[int, float | None]:
        return {k: self.at(k)["mean"] for k in self.horizons}

    @property
    def psnr_per_step(self) -> list[float | None]:
        return [honest(self.psnr[:, k], self.identical[:, k])["mean"] for k in range(self.psnr.shape[1])]


def teacher_forced(
    predictor: Predictor, real: RealEpisodes, positions: list[int], tick: Tick = _no_tick
) -> dict[str, Any]:
    """PSNR and SSIM of one frame generated from the real episode up to each position (honest means)."""
    ps, ss, same = [], [], []
    for p in positions:
        if not 1 <= p < real.obs.shape[1]:
            raise ValueError(f"position {p} outside 1..{real.obs.shape[1] - 1}")
        predictor.reset(real.obs[:, :p], real.act[:, :p], real.seeds, real.caption_at(p - 1))
        pred = predictor.step(real.act[:, p])
        ps.append(psnr(pred, real.obs[:, p]))
        ss.append(ssim(pred, real.obs[:, p]))
        same.append(_identical(real.obs[:, p - 1], real.obs[:, p]))
        tick(len(real.seeds))
    p_stats, s_stats = honest(np.stack(ps), np.stack(same)), honest(np.stack(ss), np.stack(same))
    return {"psnr": p_stats, "ssim": s_stats}


def rollout_scores(
    predictor: Predictor,
    real: RealEpisodes,
    context: int,
    horizons: tuple[int, ...] = HORIZONS,
    act: np.ndarray | None = None,
    tick: Tick = _no_tick,
) -> RolloutScores:
    """Generate max(horizons) frames autoregressively after `context` real frames.

    act: the actions to feed (B, T[, D]) aligned with real.act; default the real ones. Frame k
    (k = 1..K) is compared with real frame context + k - 1, the one the real actions led to.
    """
    K = max(horizons)
    T = real.obs.shape[1]
    if context < 1 or context + K > T:
        raise ValueError(f"context {context} + horizon {K} needs {context + K} frames, episodes have {T}")
    act = real.act if act is None else act
    predictor.reset(real.obs[:, :context], real.act[:, :context], real.seeds, real.caption_at(context - 1))
    frames = []
    for k in range(1, K + 1):
        frames.append(predictor.step(act[:, context + k - 1]))
        tick(len(real.seeds))
    gen = np.stack(frames, 1)  # (B, K, H, W, 3)
    target = real.obs[:, context : context + K]
    same = _identical(real.obs[:, context - 1 : context], target)
    return RolloutScores(psnr(gen, target), same, tuple(horizons), gen)


def copy_last_scores(real: RealEpisodes, context: int, horizons: tuple[int, ...] = HORIZONS) -> RolloutScores:
    return rollout_scores(CopyLastPredictor(), real, context, horizons)


def dtpsnr(
    predictor: Predictor,
    real: RealEpisodes,
    random_acts: list[np.ndarray],
    context: int,
    true_scores: RolloutScores,
    horizons: tuple[int, ...] = DT_HORIZONS,
    tick: Tick = _no_tick,
) -> dict[str, dict[str, Any]]:
    """Rollout PSNR@k with the true actions minus the same with random actions, per horizon.

    random_acts: D draws of actions, each aligned with real.act (B, T[, D]). All draws run as one
    batch of B * D rows from the same context (a model row's noise comes from its episode seed, so
    true and random rows share their noise and differ only by the actions). Both are scored against
    the real frames of the true actions, so a model that ignores actions scores ~0 and one that follows
    them > 0. Per horizon: the mean over episodes of (true - mean over draws of random), its standard
    error over episodes, and the spread between draws.
    """
    D, B, K = len(random_acts), len(real.seeds), max(horizons)
    tiled = RealEpisodes(
        np.concatenate([real.obs[:, : context + K]] * D), np.concatenate([real.act[:, : context + K]] * D),
        list(real.seeds) * D, real.action_spec, real.rows(list(range(B)) * D),
    )  # fmt: skip
    act = np.concatenate([a[:, : context + K] for a in random_acts])
    rand = rollout_scores(predictor, tiled, context, horizons, act=act, tick=tick)
    out: dict[str, dict[str, Any]] = {}
    for k in horizons:
        diff = true_scores.psnr[:, k - 1][None] - rand.psnr[:, k - 1].reshape(D, B)  # (D, B)
        per_ep = diff.mean(0)
        per_draw = diff.mean(1)
        out[str(k)] = {
            "mean": float(per_ep.mean()),
            "stderr": float(per_ep.std(ddof=1) / np.sqrt(B)) if B > 1 else None,
            "draw_spread": float(per_draw.std(ddof=1)) if D > 1 else None,
            "draws": D,
        }
    return out


def sharpness(
    generated: np.ndarray, real: np.ndarray, horizons: tuple[int, ...], recon: np.ndarray | None = None
) -> dict[str, Any]:
    """Per horizon, mean gradient magnitude of generated frames over that of the real frames.

    generated, real: (B, K, H, W, 3) aligned frame for frame; recon: the autoencoder's reconstruction
    of `real` (its ceiling), same shape. 1 = as sharp as the world; 0 = flat colour.
    """
    g_real = gradient_magnitude(real)  # (B, K)
    g_gen = gradient_magnitude(generated)
    g_rec = gradient_magnitude(recon) if recon is not None else None

    def ratio(g: np.ndarray, k: int) -> float | None:
        den = float(g_real[:, k - 1].mean())
        return float(g[:, k - 1].mean()) / den if den > 0 else None

    return {
        "generated": {str(k): ratio(g_gen, k) for k in horizons},
        "autoencoder": {str(k): ratio(g_rec, k) for k in horizons} if g_rec is not None else None,
        "real_gradient": {str(k): float(g_real[:, k - 1].mean()) for k in horizons},
    }
