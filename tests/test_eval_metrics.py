"""Eval metrics against analytic cases: PSNR, SSIM, Frechet distance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reverie.eval.frechet import feature_stats, frechet_distance, frechet_from_features
from reverie.eval.metrics import PSNR_CAP_DB, mse, psnr, ssim


def _frames(n: int = 2, h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def test_psnr_identical_is_inf_or_cap() -> None:
    a = _frames()
    assert np.all(np.isinf(psnr(a, a, cap=None)))
    assert np.all(psnr(a, a) == PSNR_CAP_DB)


def test_psnr_of_known_mse() -> None:
    a = np.full((1, 8, 8, 3), 100, dtype=np.uint8)
    b = a.copy()
    b[..., 0] += 10  # one channel off by 10 -> MSE = 100 / 3
    assert mse(a, b)[0] == pytest.approx(100 / 3)
    assert psnr(a, b)[0] == pytest.approx(10 * math.log10(255**2 / (100 / 3)))
    # Per frame: a batch gives one value per frame, no mixing across frames.
    c = np.concatenate([a, b])
    assert psnr(np.concatenate([a, a]), c)[0] == PSNR_CAP_DB
    assert psnr(np.concatenate([a, a]), c)[1] == pytest.approx(psnr(a, b)[0])


def test_psnr_no_uint8_wraparound() -> None:
    a = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    b = np.full((1, 4, 4, 3), 255, dtype=np.uint8)
    assert psnr(a, b)[0] == pytest.approx(0.0)


def test_psnr_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        psnr(_frames(1, 8, 8), _frames(1, 8, 9))


def test_ssim_identical_is_one() -> None:
    a = _frames(3)
    assert np.allclose(ssim(a, a), 1.0)


def test_ssim_of_constant_frames_is_luminance_term() -> None:
    # Constant frames have no variance, so only the luminance term (2ab + C1) / (a^2 + b^2 + C1) remains.
    a_val, b_val = 80.0, 140.0
    a = np.full((1, 32, 32, 3), a_val, dtype=np.uint8)
    b = np.full((1, 32, 32, 3), b_val, dtype=np.uint8)
    c1 = (0.01 * 255) ** 2
    expected = (2 * a_val * b_val + c1) / (a_val**2 + b_val**2 + c1)
    assert ssim(a, b)[0] == pytest.approx(expected, rel=1e-9)


def test_ssim_drops_with_noise_and_is_symmetric() -> None:
    rng = np.random.default_rng(1)
    a = _frames(1, 32, 32)
    small = np.clip(a.astype(int) + rng.integers(-5, 6, a.shape), 0, 255).astype(np.uint8)
    large = np.clip(a.astype(int) + rng.integers(-60, 61, a.shape), 0, 255).astype(np.uint8)
    s_small, s_large = ssim(a, small)[0], ssim(a, large)[0]
    assert 1.0 > s_small > s_large
    assert ssim(small, a)[0] == pytest.approx(s_small)


def _ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. 2004 written out: an explicit 11x11 Gaussian (sigma 1.5), 'valid' windows only."""
    from scipy.signal import convolve2d

    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    win = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    out = []
    for ch in range(3):
        x, y = a[..., ch].astype(float), b[..., ch].astype(float)

        def f(v: np.ndarray) -> np.ndarray:
            return np.asarray(convolve2d(v, win, mode="valid"))

        mx, my = f(x), f(y)
        vx, vy, cxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        out.append(s.mean())
    return float(np.mean(out))


def test_ssim_matches_the_written_out_definition() -> None:
    a, b = _frames(1, 30, 40, seed=4)[0], _frames(1, 30, 40, seed=5)[0]
    blurred = ((a.astype(int) + b.astype(int)) // 2).astype(np.uint8)  # a correlated pair, SSIM well above 0
    for x, y in ((a, b), (a, blurred)):
        assert ssim(x[None], y[None])[0] == pytest.approx(_ssim_reference(x, y), abs=1e-9)


def test_frechet_of_set_with_itself_is_zero() -> None:
    f = np.random.default_rng(0).normal(size=(200, 6))
    assert frechet_from_features(f, f) == pytest.approx(0.0, abs=1e-6)


def test_frechet_of_shifted_gaussians_is_mean_distance() -> None:
    rng = np.random.default_rng(0)
    cov = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.5]])
    mu1, mu2 = np.zeros(3), np.array([1.0, -2.0, 0.5])
    assert frechet_distance(mu1, cov, mu2, cov) == pytest.approx(float((mu1 - mu2) @ (mu1 - mu2)))
    # The same holds for sample sets: shifting a set changes only the mean term.
    f = rng.normal(size=(500, 3))
    assert frechet_from_features(f, f + mu2) == pytest.approx(float(mu2 @ mu2), rel=1e-6)


def test_frechet_trace_term_for_diagonal_covariances() -> None:
    # For commuting (diagonal) covariances Tr(S1 + S2 - 2 sqrt(S1 S2)) = sum (sqrt(s1) - sqrt(s2))^2.
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([3.0, 1.0, 0.0])
    expected = float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum())
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected)


def test_frechet_singular_covariance_is_finite() -> None:
    # Fewer samples than dims and a constant feature: covariances are singular.
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 10))
    a[:, 0] = 1.0
    b = rng.normal(size=(4, 10))
    d = frechet_from_features(a, b)
    assert np.isfinite(d) and d >= 0.0


def test_feature_stats_needs_two_samples() -> None:
    with pytest.raises(ValueError):
        feature_stats(np.zeros((1, 3)))
