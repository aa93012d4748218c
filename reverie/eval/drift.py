"""Start from nothing, and drift (docs/measures.md): the player's own start (no image, no prompt), then
minutes of frames under the explore policy's actions, judged per minute against the real world.

`generate_drift` runs the long rollout (in its own process when a second core is free) and keeps
only what the scores need: pooled features, brightness and saturation of every frame, the inverse-
dynamics hits of every pair and the contact-sheet frames. `score_drift` compares them per minute with
the real episode and with the real world's own floor: the Frechet distance between two independent
real sets of the same size, so a model that collapses early and stays collapsed cannot look stable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from reverie.eval.frechet import frechet_from_features
from reverie.eval.image_stats import brightness, saturation
from reverie.eval.rollout import Predictor

__all__ = [
    "Drift",
    "DriftRun",
    "FeatureFn",
    "generate_drift",
    "latent_features",
    "pixel_features",
    "score_drift",
]

FeatureFn = Callable[[np.ndarray], np.ndarray]  # frames uint8 (N, H, W, 3) -> features (N, D)
PairScore = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (prev, nxt, act) -> hits (N,)


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


@dataclass
class DriftRun:
    """What the long rollout leaves behind, per session b and frame t (frame 0 is the start)."""

    features: np.ndarray  # (B, T, D)
    brightness: np.ndarray  # (B, T)
    saturation: np.ndarray  # (B, T)
    hits: np.ndarray | None  # (B, T - 1) inverse-dynamics hit of pair (t, t + 1), or None
    sheet: dict[int, np.ndarray] = field(default_factory=dict)  # frame index -> frames (B, H, W, 3)


def generate_drift(
    predictor: Predictor,
    context: np.ndarray,
    act: np.ndarray,
    seeds: list[int],
    features: FeatureFn,
    sheet_at: list[int],
    pair_score: PairScore | None = None,
    tick: Callable[[int], None] = lambda n: None,
    chunk: int = 300,
) -> DriftRun:
    """Start B sessions from the real frames context (B, W, H, W, 3) (a model player may ignore them for
    its own start) and step them through act (B, W - 1 + T[, D]), aligned with the context's frames.

    Frame 0 of the run is the start (the context's last frame, or the player's own); features are
    computed in chunks as frames arrive, so a 9,000-frame rollout never holds its frames.
    """
    B, W = context.shape[:2]
    T = act.shape[1] - W + 1
    predictor.reset(context, act[:, :W], seeds)
    first = getattr(predictor, "start_frames", None)
    prev = (
        np.asarray(first) if first is not None else context[:, -1]
    )  # the engine's own start, when it has one
    act = act[:, W - 1 :]  # act[:, t] led to frame t
    hits = np.zeros((B, T - 1), dtype=bool) if pair_score is not None else None
    feats, light, sat, buf = [], [], [], [prev]
    sheet = {0: prev.copy()} if 0 in sheet_at else {}
    for t in range(1, T):
        frame = predictor.step(act[:, t])
        if hits is not None and pair_score is not None:
            hits[:, t - 1] = pair_score(prev, frame, act[:, t])
        if t in sheet_at:
            sheet[t] = frame.copy()
        prev = frame
        buf.append(frame)
        tick(B)
        if len(buf) == chunk or t == T - 1:
            x = np.stack(buf, 1)  # (B, n, H, W, 3)
            flat = x.reshape(-1, *x.shape[2:])
            feats.append(features(flat).reshape(B, x.shape[1], -1))
            light.append(brightness(x))
            sat.append(saturation(x))
            buf = []
    close = getattr(predictor, "close", None)
    if close is not None:
        close()
    return DriftRun(np.concatenate(feats, 1), np.concatenate(light, 1), np.concatenate(sat, 1), hits, sheet)


@dataclass
class Drift:
    fd: list[float]  # Frechet distance to the real frames of the same minute
    fd_floor: list[float]  # the real world's own: two independent real sets of the same minute
    fd_over_floor: list[float | None]
    fd_over_floor_sessions: list[list[float | None]]  # (B, minutes): each player start alone
    fd_ratio_last_first: float | None  # the old drift ratio: last minute over the first
    action_acc: list[float] | None  # inverse-dynamics accuracy on generated pairs
    brightness: list[float]
    brightness_real: list[float]
    saturation: list[float]
    saturation_real: list[float]


def _chunked(frames: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], chunk: int = 512) -> np.ndarray:
    flat = frames.reshape(-1, *frames.shape[-3:])
    out = np.concatenate([fn(flat[i : i + chunk]) for i in range(0, len(flat), chunk)])
    return out.reshape(*frames.shape[:-3], *out.shape[1:])


@dataclass
class RealDrift:
    """The real side of the drift measure, computed while the dream is still running elsewhere."""

    features: np.ndarray  # (B, T, D) of the real episodes under the dream's actions
    floor: np.ndarray  # (B, T, D) of independent real episodes
    brightness: np.ndarray  # (B, T)
    saturation: np.ndarray  # (B, T)


def real_drift(real: np.ndarray, floor: np.ndarray, features: FeatureFn) -> RealDrift:
    """Features, brightness and saturation of real frames (B, T, H, W, 3) and of the floor set (same shape)."""
    return RealDrift(_chunked(real, features), _chunked(floor, features), brightness(real), saturation(real))


def score_drift(run: DriftRun, real: RealDrift, segment: int) -> Drift:
    """Per `segment`-frame minute: FD of the dream vs the real episodes, the floor FD of independent
    real episodes vs the same, brightness and saturation beside the real ones. Each session's own
    fd / floor comes beside the pooled one: one 5-minute path is one draw, and the spread between paths
    says how far a single path's number can be trusted."""
    T = run.features.shape[1]
    total = T // segment * segment
    if total == 0:
        raise ValueError(f"a drift of {T} frames holds no full {segment}-frame segment")
    fd, fl, light, light_r, sat, sat_r = [], [], [], [], [], []
    per: list[list[float | None]] = [[] for _ in range(run.features.shape[0])]
    acc: list[float] | None = [] if run.hits is not None else None
    for s in range(0, total, segment):
        seg = slice(s, s + segment)
        gen_f, real_f, floor_f = (
            f[:, seg].reshape(-1, f.shape[-1]) for f in (run.features, real.features, real.floor)
        )
        fd.append(frechet_from_features(gen_f, real_f))
        fl.append(frechet_from_features(floor_f, real_f))
        for b, row in enumerate(per):
            alone = frechet_from_features(real.floor[b, seg], real.features[b, seg])
            row.append(_over(frechet_from_features(run.features[b, seg], real.features[b, seg]), alone))
        light += [float(run.brightness[:, seg].mean())]
        light_r += [float(real.brightness[:, seg].mean())]
        sat += [float(run.saturation[:, seg].mean())]
        sat_r += [float(real.saturation[:, seg].mean())]
        if acc is not None and run.hits is not None:
            acc.append(float(run.hits[:, s : min(s + segment, total - 1)].mean()))
    over = [_over(d, f) for d, f in zip(fd, fl, strict=True)]
    ratio = fd[-1] / fd[0] if fd[0] > 0 else None
    return Drift(fd, fl, over, per, ratio, acc, light, light_r, sat, sat_r)


def _over(fd: float, floor: float) -> float | None:
    return fd / floor if floor > 0 else None
