"""Frechet distance between two Gaussians fitted to feature sets (the FID formula, any features).

    d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))

Eval feeds it pooled autoencoder latents of generated and real frames (drift per minute).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

__all__ = ["feature_stats", "frechet_distance", "frechet_from_features"]


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of features (N, D); N >= 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need features (N>=2, D), got {f.shape}")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Squared Frechet distance between N(mu1, sigma1) and N(mu2, sigma2); always >= 0."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched statistics: {mu1.shape}, {s1.shape}, {mu2.shape}, {s2.shape}")
    diff = mu1 - mu2
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)  # singular input is handled just below
        covmean = np.asarray(linalg.sqrtm(s1 @ s2))
    if not np.isfinite(covmean).all():
        # Singular products (fewer samples than dims, constant features): nudge both diagonals.
        offset = np.eye(s1.shape[0]) * eps
        covmean = np.asarray(linalg.sqrtm((s1 + offset) @ (s2 + offset)))
    # sqrtm of a product of PSD matrices is real in exact arithmetic; drop round-off imaginary parts.
    covmean = np.real(covmean)
    d = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))
    return max(d, 0.0)  # tiny negative values are round-off of an exact 0


def frechet_from_features(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between feature sets a (N, D) and b (M, D)."""
    return frechet_distance(*feature_stats(a), *feature_stats(b))
