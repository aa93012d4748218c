"""The small convolutional trunk shared by eval's judges (inverse dynamics, scene attributes)."""

from __future__ import annotations

from torch import nn


def conv_trunk(in_channels: int, width: int, pool: int) -> list[nn.Module]:
    """Three stride-2 conv stages (width, 2x, 4x channels), pooled to a pool x pool map, flattened:
    (B, in_channels, H, W) -> (B, 4 * width * pool**2) for any frame size. A list, so callers can
    append their heads and keep the module indices (and saved weight names) of one Sequential."""
    w = width
    return [
        nn.Conv2d(in_channels, w, 4, 2, 1),
        nn.GroupNorm(8, w),
        nn.GELU(),
        nn.Conv2d(w, 2 * w, 4, 2, 1),
        nn.GroupNorm(8, 2 * w),
        nn.GELU(),
        nn.Conv2d(2 * w, 4 * w, 4, 2, 1),
        nn.GroupNorm(8, 4 * w),
        nn.GELU(),
        nn.AdaptiveAvgPool2d(pool),
        nn.Flatten(),
    ]
