"""DESIGN.md "Measures" computed over a Predictor and real episodes: teacher-forced PSNR/SSIM,
rollout PSNR@k beside the copy-last-frame baseline, and dtPSNR@16 (controllability)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from reverie.eval.metrics import psnr, ssim
from reverie.eval.rollout import CopyLastPredictor, Predictor, RealEpisodes

__all__ = ["HORIZONS", "RolloutScores", "copy_last_scores", "dtpsnr", "rollout_scores", "teacher_forced"]

HORIZONS: tuple[int, ...] = (1, 4, 16, 64)


@dataclass
class RolloutScores:
    psnr_at: dict[int, float]  # k -> mean PSNR of generated frame k vs real frame k (dB)
    psnr_per_step: list[float]  # every k = 1..max horizon, for the curve
    frames: np.ndarray = field(repr=False)  # generated (B, K, H, W, 3) uint8


def teacher_forced(
    predictor: Predictor, real: RealEpisodes, positions: list[int], progress: bool = False
) -> tuple[float, float]:
    """(mean PSNR, mean SSIM) of one frame generated from the real episode up to each position."""
    ps, ss = [], []
    for p in tqdm(positions, desc="teacher-forced", unit="pos", disable=not progress):
        if not 1 <= p < real.obs.shape[1]:
            raise ValueError(f"position {p} outside 1..{real.obs.shape[1] - 1}")
        predictor.reset(real.obs[:, :p], real.act[:, :p], real.seeds)
        pred = predictor.step(real.act[:, p])
        ps.append(psnr(pred, real.obs[:, p]))
        ss.append(ssim(pred, real.obs[:, p]))
    return float(np.mean(ps)), float(np.mean(ss))


def rollout_scores(
    predictor: Predictor,
    real: RealEpisodes,
    context: int,
    horizons: tuple[int, ...] = HORIZONS,
    act: np.ndarray | None = None,
    progress: bool = False,
    desc: str = "rollout",
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
    predictor.reset(real.obs[:, :context], real.act[:, :context], real.seeds)
    frames, per_step = [], []
    for k in tqdm(range(1, K + 1), desc=desc, unit="frame", disable=not progress):
        i = context + k - 1
        pred = predictor.step(act[:, i])
        frames.append(pred)
        per_step.append(float(psnr(pred, real.obs[:, i]).mean()))
    return RolloutScores({k: per_step[k - 1] for k in horizons}, per_step, np.stack(frames, 1))


def copy_last_scores(real: RealEpisodes, context: int, horizons: tuple[int, ...] = HORIZONS) -> RolloutScores:
    return rollout_scores(CopyLastPredictor(), real, context, horizons)


def dtpsnr(
    predictor: Predictor,
    real: RealEpisodes,
    random_act: np.ndarray,
    context: int,
    k: int = 16,
    true_scores: RolloutScores | None = None,
    progress: bool = False,
) -> float:
    """Rollout PSNR@k with the true actions minus the same with random (exploration) actions.

    Both rollouts are scored against the real frames of the true actions, so a model that ignores
    actions scores ~0 and one that follows them scores > 0.
    """
    if true_scores is None or k not in true_scores.psnr_at:
        true_scores = rollout_scores(predictor, real, context, (k,), progress=progress)
    rand = rollout_scores(
        predictor, real, context, (k,), act=random_act, progress=progress, desc="random acts"
    )
    return true_scores.psnr_at[k] - rand.psnr_at[k]
