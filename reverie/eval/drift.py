"""Drift: does a long rollout stay in the world? Frechet distance per minute between features of
generated and real frames (DESIGN.md "Measures": 9,000 frames, one value per 1,800-frame minute), and
the action response of the drifted model per minute (dtPSNR@16 from the rollout's own state)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from reverie.eval.frechet import frechet_from_features
from reverie.eval.metrics import psnr
from reverie.eval.rollout import Predictor, RealEpisodes

__all__ = ["Drift", "FeatureFn", "PairScore", "drift_fd", "latent_features", "pixel_features"]

FeatureFn = Callable[[np.ndarray], np.ndarray]  # frames uint8 (N, H, W, 3) -> features (N, D)


def latent_features(encode: Callable[[np.ndarray], object]) -> FeatureFn:
    """Pooled autoencoder latents: per-channel mean and std over h, w -> (N, 2C)."""
    import torch

    def features(frames: np.ndarray) -> np.ndarray:
        z = encode(frames)
        assert isinstance(z, torch.Tensor)
        z = z.float()  # (N, C, h, w)
        return torch.cat([z.mean((2, 3)), z.std((2, 3))], 1).numpy().astype(np.float64)

    return features


def pixel_features(frames: np.ndarray) -> np.ndarray:
    """A model-free stand-in (no autoencoder at hand): 4x4 average-pooled RGB -> (N, 48)."""
    N, H, W, _ = frames.shape
    h, w = H // 4 * 4, W // 4 * 4
    x = frames[:, :h, :w].astype(np.float64).reshape(N, 4, h // 4, 4, w // 4, 3)  # (N, 4, h/4, 4, w/4, 3)
    return x.mean((2, 4)).reshape(N, -1)


PairScore = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (prev, nxt, act) -> hits (N,) bool


@dataclass
class Drift:
    fd: list[float]  # Frechet distance per segment
    action_acc: list[float] | None  # inverse-dynamics accuracy on generated pairs per segment
    dtpsnr: list[float] | None = None  # PSNR@k true minus random actions, branched at each segment start


def drift_fd(
    predictor: Predictor,
    real: RealEpisodes,
    context: int,
    segment: int,
    features: FeatureFn,
    progress: bool = False,
    chunk: int = 300,
    pair_score: PairScore | None = None,
    random_act: np.ndarray | None = None,
    probe: int = 16,
) -> Drift:
    """Roll out to the end of the real episodes with their actions; FD per `segment` frames.

    Features are computed in chunks as frames arrive, so a 9,000-frame rollout never holds all
    generated frames. A trailing partial segment is dropped (a short set gives a noisy FD).
    pair_score (an inverse-dynamics model) also scores, per segment, whether each generated pair
    (frame_t, frame_t+1) shows the action that was fed: the action response after m minutes.

    random_act (aligned with real.act, (B, T[, D])) turns on the per-segment dtPSNR@`probe`: at the
    start of each segment the predictor is forked twice, in the state the long rollout drifted into;
    one branch rolls `probe` frames with the true actions, the other with random_act at the same
    positions, and both are scored against the real frames the true actions led to, as
    measures.dtpsnr does from a real context. Segments shorter than `probe` leave it None.
    """
    T = real.obs.shape[1]
    total = (T - context) // segment * segment
    if total == 0:
        raise ValueError(
            f"episodes of {T} frames hold no full {segment}-frame segment after {context} context"
        )
    predictor.reset(real.obs[:, :context], real.act[:, :context], real.seeds)
    gen_feats: list[np.ndarray] = []
    hits = np.zeros((real.obs.shape[0], total), dtype=bool)
    prev = real.obs[:, context - 1]  # (B, H, W, 3)
    buf: list[np.ndarray] = []
    dt: list[float] | None = [] if random_act is not None and segment >= probe else None
    for k in tqdm(range(total), desc="drift rollout", unit="frame", disable=not progress):
        if dt is not None and random_act is not None and k % segment == 0:
            dt.append(_branch_dtpsnr(predictor, real, random_act, context + k, probe))
        act = real.act[:, context + k]
        frame = predictor.step(act)
        if pair_score is not None:
            hits[:, k] = pair_score(prev, frame, act)
        prev = frame
        buf.append(frame)
        if len(buf) == chunk or k == total - 1:
            frames = np.stack(buf, 1)  # (B, n, H, W, 3)
            gen_feats.append(features(frames.reshape(-1, *frames.shape[2:])).reshape(*frames.shape[:2], -1))
            buf = []
    gen = np.concatenate(gen_feats, 1)  # (B, total, D)
    fd = []
    for s in range(0, total, segment):
        real_frames = real.obs[:, context + s : context + s + segment]
        real_f = features(real_frames.reshape(-1, *real_frames.shape[2:]))
        fd.append(frechet_from_features(gen[:, s : s + segment].reshape(-1, gen.shape[-1]), real_f))
    acc = [float(hits[:, s : s + segment].mean()) for s in range(0, total, segment)] if pair_score else None
    return Drift(fd, acc, dt)


def _branch_dtpsnr(predictor: Predictor, real: RealEpisodes, random_act: np.ndarray, i: int, k: int) -> float:
    """PSNR@k of a true-action branch minus a random-action branch, both forked at frame index i."""
    target = real.obs[:, i + k - 1]  # the real world's k-th frame under the true actions
    scores = []
    for act in (real.act, random_act):
        branch = predictor.fork()
        for j in range(i, i + k):
            frame = branch.step(act[:, j])
        scores.append(float(psnr(frame, target).mean()))
        close = getattr(branch, "close", None)
        if close is not None:  # a simulator branch holds its own worlds (emulators hold native handles)
            close()
    return scores[0] - scores[1]
