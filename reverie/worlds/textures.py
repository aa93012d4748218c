"""Procedural, tileable textures shared by the built-in worlds.

`texture(name, seed, size, color)` returns an (S, S, 3) uint8 image that tiles seamlessly. Patterns
have mid-scale structure (bricks, planks, panels, flagstones) and smooth shading on purpose: the world
model sees frames at 64x64, where per-pixel noise is unlearnable and only flickers as you move.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

RGB = tuple[int, int, int]

COLORS: dict[str, RGB] = {
    "red": (168, 56, 46),
    "blue": (58, 86, 170),
    "green": (66, 132, 62),
    "grey": (130, 130, 134),
    "brown": (128, 86, 50),
    "yellow": (188, 156, 60),
    "purple": (118, 68, 146),
    "white": (206, 204, 196),
}


def smooth_noise(size: int, cells: int, rng: np.random.Generator, cells_y: int | None = None) -> np.ndarray:
    """Periodic value noise in [0, 1]: a random (cells_y, cells) grid, smoothstep-interpolated. (S, S)"""
    cy = cells if cells_y is None else cells_y
    grid = rng.random((cy, cells))
    u = np.arange(size) / size

    def axis(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = u * n
        i0 = np.floor(p).astype(int)
        w = p - i0
        return i0 % n, (i0 + 1) % n, w * w * (3 - 2 * w)

    y0, y1, wy = axis(cy)
    x0, x1, wx = axis(cells)
    top = grid[y0][:, x0] * (1 - wx) + grid[y0][:, x1] * wx
    bot = grid[y1][:, x0] * (1 - wx) + grid[y1][:, x1] * wx
    return top * (1 - wy[:, None]) + bot * wy[:, None]


def _blocks(
    size: int, rows: int, rng: np.random.Generator, widths: tuple[int, int], mortar: int
) -> np.ndarray:
    """Running-bond blocks: per-block shade, dark mortar and a light top edge. Luminance (S, S)."""
    out = np.zeros((size, size))
    h = size // rows
    for r in range(rows):
        y0 = r * h
        x = int(rng.integers(0, size))
        edges = [x]
        while True:
            x += int(rng.integers(widths[0], widths[1] + 1))
            if x >= edges[0] + size - widths[0] // 2:
                break
            edges.append(x)
        edges.append(edges[0] + size)
        for a, b in itertools.pairwise(edges):
            cols = np.arange(a, b) % size
            shade = 0.82 + 0.3 * rng.random()
            block = np.full((h, len(cols)), shade)
            block[:mortar, :] = 0.42
            block[:, :mortar] = 0.42
            block[mortar, mortar:] *= 1.12
            block[-1, mortar:] *= 0.85
            out[y0 : y0 + h][:, cols] = block
    return out


def _brick(size: int, rng: np.random.Generator) -> np.ndarray:
    lum = _blocks(size, 4, rng, (size // 2, size // 2), max(1, size // 16))
    return lum * (0.9 + 0.2 * smooth_noise(size, 4, rng))


def _stone(size: int, rng: np.random.Generator) -> np.ndarray:
    lum = _blocks(size, 2, rng, (size // 3, size * 2 // 3), max(1, size // 16))
    return lum * (0.8 + 0.35 * smooth_noise(size, 4, rng))


def _moss(size: int, rng: np.random.Generator) -> np.ndarray:
    return _stone(size, rng)


def _wood(size: int, rng: np.random.Generator) -> np.ndarray:
    planks = 4
    w = size // planks
    grain = smooth_noise(size, planks * 2, rng, cells_y=2)
    lum = np.zeros((size, size))
    for p in range(planks):
        shade = 0.8 + 0.3 * rng.random()
        lum[:, p * w : (p + 1) * w] = shade * (0.85 + 0.25 * grain[:, p * w : (p + 1) * w])
        lum[:, p * w] = 0.45
        knot = int(rng.integers(0, size))
        lum[knot % size, p * w + 1 : (p + 1) * w] *= 0.9
    return lum


def _metal(size: int, rng: np.random.Generator) -> np.ndarray:
    half = size // 2
    lum = np.zeros((size, size))
    ramp = np.linspace(1.08, 0.86, half)
    for py in range(2):
        for px in range(2):
            shade = 0.85 + 0.2 * rng.random()
            lum[py * half : (py + 1) * half, px * half : (px + 1) * half] = shade * ramp[:, None]
    lum[::half, :] = 0.5
    lum[:, ::half] = 0.5
    r = max(1, size // 16)
    for cy in (r + 2, half - r - 2):
        for cx in (r + 2, half - r - 2):
            for oy in (0, half):
                for ox in (0, half):
                    lum[oy + cy - r + 1 : oy + cy + 1, ox + cx - r + 1 : ox + cx + 1] = 1.35
    return lum


def _flagstone(size: int, rng: np.random.Generator) -> np.ndarray:
    half = size // 2
    lum = np.zeros((size, size))
    for py in range(2):
        for px in range(2):
            lum[py * half : (py + 1) * half, px * half : (px + 1) * half] = 0.82 + 0.25 * rng.random()
    lum[::half, :] = 0.55
    lum[:, ::half] = 0.55
    return lum * (0.88 + 0.2 * smooth_noise(size, 4, rng))


def _planks(size: int, rng: np.random.Generator) -> np.ndarray:
    return _wood(size, rng).T.copy()


def _smooth(size: int, rng: np.random.Generator) -> np.ndarray:
    return 0.85 + 0.25 * smooth_noise(size, 3, rng)


def _beams(size: int, rng: np.random.Generator) -> np.ndarray:
    lum = 0.75 + 0.15 * smooth_noise(size, 3, rng)
    w = size // 4
    lum[:, :w] = 1.05
    lum[:, w - 1] = 0.5
    return lum


def _asphalt(size: int, rng: np.random.Generator) -> np.ndarray:
    return 0.8 + 0.2 * smooth_noise(size, 8, rng)


def _grass(size: int, rng: np.random.Generator) -> np.ndarray:
    return 0.75 + 0.35 * smooth_noise(size, 4, rng) * (0.8 + 0.2 * smooth_noise(size, 8, rng))


PATTERNS: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "brick": _brick,
    "stone": _stone,
    "moss": _moss,
    "wood": _wood,
    "metal": _metal,
    "flagstone": _flagstone,
    "planks": _planks,
    "plaster": _smooth,
    "dirt": _smooth,
    "beams": _beams,
    "asphalt": _asphalt,
    "concrete": _smooth,
    "grass": _grass,
}


def texture(name: str, seed: int, size: int = 32, color: RGB | str = "grey") -> np.ndarray:
    """A tileable (size, size, 3) uint8 texture: pattern `name` tinted by `color` (RGB or a COLORS name)."""
    if name not in PATTERNS:
        raise ValueError(f"unknown texture {name!r}; accepted: {', '.join(sorted(PATTERNS))}")
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    lum = PATTERNS[name](size, rng)
    rgb = np.asarray(COLORS[color] if isinstance(color, str) else color, dtype=np.float64)
    img = lum[..., None] * rgb
    if name == "moss":
        # Moss grows in soft patches, thicker toward the floor; blended over the tinted stone.
        patch = smooth_noise(size, 3, rng) * 0.7 + np.linspace(0.0, 0.45, size)[:, None]
        amount = np.clip((patch - 0.6) * 2.5, 0.0, 0.7)[..., None]
        moss = np.array([70.0, 118.0, 44.0]) * (0.85 + 0.3 * smooth_noise(size, 6, rng))[..., None]
        img = img * (1 - amount) + moss * amount
    return np.clip(img, 0, 255).astype(np.uint8)
