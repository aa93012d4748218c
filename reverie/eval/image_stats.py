"""Per-frame image statistics for eval (definitions in docs/measures.md): sharpness (mean gradient
magnitude), brightness, colour saturation, frame-to-frame change and horizontal shift between frames.

All take uint8 RGB frames (..., H, W, 3) and return one value per frame (or per pair), so callers
choose what to average over.
"""

from __future__ import annotations

import numpy as np

__all__ = ["brightness", "frame_change", "gradient_magnitude", "horizontal_shift", "saturation"]

MAX_SHIFT_FRACTION = 0.25  # shifts searched up to a quarter of the width: a turn step is far less


def _luma(frames: np.ndarray) -> np.ndarray:
    """Rec. 601 luma in [0, 255], (..., H, W) float64."""
    x = np.asarray(frames, dtype=np.float64)
    return np.asarray(x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114)


def gradient_magnitude(frames: np.ndarray) -> np.ndarray:
    """Mean |d/dx| + |d/dy| of luma per frame, in grey levels per pixel: 0 for a flat frame.

    Forward differences inside the frame (no padding), so a flat frame scores exactly 0 and blur
    lowers the value in proportion to how much edge contrast it removes.
    """
    y = _luma(frames)
    dx = np.abs(np.diff(y, axis=-1)).mean(axis=(-2, -1))
    dy = np.abs(np.diff(y, axis=-2)).mean(axis=(-2, -1))
    return np.asarray(dx + dy)


def brightness(frames: np.ndarray) -> np.ndarray:
    """Mean luma per frame in [0, 1]."""
    return np.asarray(_luma(frames).mean(axis=(-2, -1)) / 255.0)


def saturation(frames: np.ndarray) -> np.ndarray:
    """Mean HSV saturation per frame in [0, 1] ((max - min) / max per pixel; 0 for black pixels)."""
    x = np.asarray(frames, dtype=np.float64)
    hi, lo = x.max(axis=-1), x.min(axis=-1)
    s = np.divide(hi - lo, hi, out=np.zeros_like(hi), where=hi > 0)
    return np.asarray(s.mean(axis=(-2, -1)))


def frame_change(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute difference per frame pair, in grey levels (0-255): 0 when nothing moved."""
    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    return np.asarray(d.mean(axis=(-3, -2, -1)))


def horizontal_shift(a: np.ndarray, b: np.ndarray, max_shift: int | None = None) -> np.ndarray:
    """The horizontal shift (px, sub-pixel) that best maps each frame a onto b: b[:, x] ~ a[:, x - s].

    Positive s: the picture moved right. The shift minimises the mean absolute luma difference over
    the overlapping columns, refined by a parabola through the best shift and its neighbours. Frames
    (..., H, W, 3); returns (...,).
    """
    ya, yb = _luma(a), _luma(b)
    lead, (H, W) = ya.shape[:-2], ya.shape[-2:]
    ya, yb = ya.reshape(-1, H, W), yb.reshape(-1, H, W)
    m = max_shift if max_shift is not None else max(1, int(W * MAX_SHIFT_FRACTION))
    shifts = np.arange(-m, m + 1)
    cost = np.empty((len(ya), len(shifts)))
    for i, s in enumerate(shifts):
        if s >= 0:
            cost[:, i] = np.abs(yb[:, :, s:] - ya[:, :, : W - s]).mean(axis=(1, 2))
        else:
            cost[:, i] = np.abs(yb[:, :, :s] - ya[:, :, -s:]).mean(axis=(1, 2))
    best = cost.argmin(axis=1)
    out = shifts[best].astype(np.float64)
    inner = (best > 0) & (best < len(shifts) - 1)
    idx = np.nonzero(inner)[0]
    c0, c1, c2 = cost[idx, best[idx] - 1], cost[idx, best[idx]], cost[idx, best[idx] + 1]
    denom = c0 - 2 * c1 + c2
    frac = np.divide(c0 - c2, 2 * denom, out=np.zeros_like(denom), where=denom > 1e-12)
    out[idx] += np.clip(frac, -0.5, 0.5)
    return out.reshape(lead)
