"""Reconstruction losses for the frame autoencoder: L1, L2, differentiable SSIM and PSNR.

No pretrained perceptual network exists offline, so SSIM stands in for "looks right": it rewards local
contrast and structure that a pure L1/L2 loss blurs away.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _gaussian_window(size: int, sigma: float, channels: int, device: torch.device) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    w2 = g[:, None] * g[None, :]  # (size, size)
    return w2.expand(channels, 1, size, size).contiguous()  # depthwise (C, 1, k, k)


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 7, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM of images in [-1, 1], shape (B, C, H, W); computed in float32, differentiable.

    The 7-pixel window (not the classic 11) suits 64x64 frames: 11 would blur across most objects.
    Autocast is switched off inside: in bf16 the variance terms (E[x^2] - E[x]^2) cancel to zero or
    below and the ratio blows up to inf within a few training steps.
    """
    with torch.autocast(x.device.type, enabled=False):
        return _ssim(x.float(), y.float(), window, sigma)


def _ssim(x: torch.Tensor, y: torch.Tensor, window: int, sigma: float) -> torch.Tensor:
    C = x.shape[1]
    w = _gaussian_window(window, sigma, C, x.device)
    # constants for a dynamic range of 2 (images in [-1, 1])
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    pad = window // 2
    mu_x = F.conv2d(F.pad(x, [pad] * 4, mode="reflect"), w, groups=C)
    mu_y = F.conv2d(F.pad(y, [pad] * 4, mode="reflect"), w, groups=C)
    xx = F.conv2d(F.pad(x * x, [pad] * 4, mode="reflect"), w, groups=C) - mu_x**2
    yy = F.conv2d(F.pad(y * y, [pad] * 4, mode="reflect"), w, groups=C) - mu_y**2
    xy = F.conv2d(F.pad(x * y, [pad] * 4, mode="reflect"), w, groups=C) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (xx + yy + c2))
    return s.mean()


def reconstruction_loss(
    x_hat: torch.Tensor, x: torch.Tensor, l1: float = 1.0, l2: float = 0.0, ssim_weight: float = 0.2
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted L1 + L2 + (1 - SSIM), in float32 whatever the autocast dtype."""
    x_hat, x = x_hat.float(), x.float()
    l1_v = (x_hat - x).abs().mean()
    l2_v = (x_hat - x).square().mean()
    loss = l1 * l1_v + l2 * l2_v
    metrics = {"l1": l1_v.item(), "mse": l2_v.item(), "psnr": psnr_from_mse(l2_v.item())}
    if ssim_weight > 0:
        s = ssim(x_hat, x)
        loss = loss + ssim_weight * (1 - s)
        metrics["ssim"] = s.item()
    return loss, metrics


def psnr_from_mse(mse_pm1: float) -> float:
    """PSNR in dB of images in [-1, 1] given their MSE (equal to PSNR on a 0..255 scale)."""
    return 10 * math.log10(4.0 / max(mse_pm1, 1e-12))


def psnr_uint8(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two uint8 images or batches (range 255), the metric reports use."""
    mse = (a.double() - b.double()).square().mean().item()
    return 10 * math.log10(255.0**2 / max(mse, 1e-12))
