"""Image metrics on uint8 RGB frames: PSNR and SSIM, as docs/measures.md defines them.

Both take frames (..., H, W, 3) uint8 (or any numeric array in [0, 255]) and return one value per
frame, so callers can average "over positions" themselves.

PSNR of two identical frames is infinite; per-frame values are capped at `PSNR_CAP_DB` so means stay
finite and JSON-able. 120 dB is above any PSNR two *different* uint8 frames can reach at the sizes we
use (one pixel off by one in a 1024x1024 frame is ~113 dB), so a capped value still means "identical".
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

__all__ = ["PSNR_CAP_DB", "mse", "psnr", "ssim"]

PSNR_CAP_DB = 120.0
DATA_RANGE = 255.0

# The standard SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03.
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # radius int(3.5 * 1.5 + 0.5) = 5 -> the 11-tap window of the paper
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _as_float_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"frames differ in shape: {a.shape} vs {b.shape}")
    if a.ndim < 3 or a.shape[-1] != 3:
        raise ValueError(f"expected frames (..., H, W, 3), got {a.shape}")
    return a.astype(np.float64), b.astype(np.float64)


def mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean squared error per frame over H, W, C: shape (...) for inputs (..., H, W, 3)."""
    x, y = _as_float_pair(a, b)
    return np.asarray(((x - y) ** 2).mean(axis=(-3, -2, -1)))


def psnr(a: np.ndarray, b: np.ndarray, cap: float | None = PSNR_CAP_DB) -> np.ndarray:
    """PSNR in dB per frame, range 255. `cap=None` returns inf for identical frames."""
    err = mse(a, b)
    with np.errstate(divide="ignore"):
        out = 10.0 * np.log10(DATA_RANGE**2 / err)
    if cap is not None:
        out = np.minimum(out, cap)
    return np.asarray(out)


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean SSIM per frame (Gaussian window, per channel, averaged over channels).

    Matches the standard definition (and skimage's `gaussian_weights=True,
    use_sample_covariance=False`): local statistics are Gaussian-weighted, and the mean is taken
    over pixels at least one window radius from the border, where the filter saw only real pixels.
    """
    x, y = _as_float_pair(a, b)
    lead = x.shape[:-3]
    h, w = x.shape[-3], x.shape[-2]
    x = x.reshape(-1, h, w, 3)  # (N, H, W, C)
    y = y.reshape(-1, h, w, 3)
    sigma = (0.0, SSIM_SIGMA, SSIM_SIGMA, 0.0)  # blur H and W only, never across frames or channels

    def blur(v: np.ndarray) -> np.ndarray:
        return np.asarray(gaussian_filter(v, sigma=sigma, truncate=SSIM_TRUNCATE, mode="reflect"))

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1 = (SSIM_K1 * DATA_RANGE) ** 2
    c2 = (SSIM_K2 * DATA_RANGE) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    r = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    if h > 2 * r and w > 2 * r:
        s = s[:, r : h - r, r : w - r]
    return np.asarray(s.mean(axis=(1, 2, 3)).reshape(lead))
