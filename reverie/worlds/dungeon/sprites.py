"""Billboard sprites of the dungeon (pillars, lamps, barrels, crates, chests), drawn procedurally.

Each sprite is an RGBA texture stretched over a world-space box (width, height in cells) standing on
the floor, plus an emissive mask (lamp flames glow through darkness and fog).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reverie.worlds.textures import smooth_noise

S = 32


@dataclass(frozen=True)
class Sprite:
    rgba: np.ndarray  # (S, S, 4) float32, alpha is 0 or 1
    emissive: np.ndarray  # (S, S) float32, extra light added to the sprite's own colour
    width: float  # world size in cells
    height: float


def _grid() -> tuple[np.ndarray, np.ndarray]:
    v, u = np.mgrid[0:S, 0:S]
    return (u + 0.5) / S, (v + 0.5) / S  # u across, v down, both in (0, 1)


def _cylinder_shade(u: np.ndarray, half_width: float) -> np.ndarray:
    """Round objects lit from the upper left: bright toward one side, dark at the rim."""
    x = np.clip((u - 0.5) / half_width, -1, 1)
    return 0.55 + 0.55 * np.sqrt(np.clip(1 - x * x, 0, 1)) - 0.15 * x


def _pillar(rng: np.random.Generator) -> Sprite:
    u, v = _grid()
    rgba = np.zeros((S, S, 4), np.float32)
    body = np.abs(u - 0.5) < 0.34
    cap = ((v < 0.1) | (v > 0.9)) & (np.abs(u - 0.5) < 0.48)
    shade = _cylinder_shade(u, 0.34) * (0.9 + 0.2 * smooth_noise(S, 4, rng))
    bands = 1 - 0.25 * ((v * 8) % 1 < 0.1)
    base = np.array([150, 146, 136]) * (shade * bands)[..., None]
    rgba[..., :3] = np.where(cap[..., None], np.array([120, 116, 108]) * shade[..., None], base)
    rgba[..., 3] = body | cap
    return Sprite(rgba, np.zeros((S, S), np.float32), 0.55, 1.0)


def _lamp(rng: np.random.Generator) -> Sprite:
    u, v = _grid()
    rgba = np.zeros((S, S, 4), np.float32)
    pole = (np.abs(u - 0.5) < 0.06) & (v > 0.35)
    foot = (v > 0.9) & (np.abs(u - 0.5) < 0.25)
    head = (np.abs(u - 0.5) < 0.22) & (v > 0.08) & (v < 0.36)
    flame_d = ((u - 0.5) / 0.16) ** 2 + ((v - 0.23) / 0.12) ** 2
    flame = head & (flame_d < 1)
    iron = np.array([52, 46, 44]) * _cylinder_shade(u, 0.25)[..., None]
    glow = np.array([230, 150, 60]) * (0.9 - 0.35 * flame_d)[..., None]
    rgba[..., :3] = np.where(flame[..., None], glow, iron)
    rgba[..., 3] = pole | foot | head
    emissive = np.where(flame, 0.7, 0.0).astype(np.float32)
    return Sprite(rgba, emissive, 0.4, 0.8)


def _barrel(rng: np.random.Generator) -> Sprite:
    u, v = _grid()
    rgba = np.zeros((S, S, 4), np.float32)
    bulge = 0.4 + 0.06 * np.sin(np.pi * v)
    body = np.abs(u - 0.5) < bulge
    hoops = ((np.abs(v - 0.2) < 0.05) | (np.abs(v - 0.8) < 0.05)).astype(float)
    staves = 1 - 0.18 * (((u - 0.5) * 7) % 1 < 0.15)
    wood = np.array([140, 88, 48]) * (_cylinder_shade(u, 0.45) * staves)[..., None]
    iron = np.array([70, 66, 64]) * _cylinder_shade(u, 0.45)[..., None]
    rgba[..., :3] = wood * (1 - hoops[..., None]) + iron * hoops[..., None]
    rgba[..., 3] = body
    return Sprite(rgba, np.zeros((S, S), np.float32), 0.4, 0.5)


def _crate(rng: np.random.Generator) -> Sprite:
    u, v = _grid()
    rgba = np.ones((S, S, 4), np.float32)
    frame = (np.abs(u - 0.5) > 0.4) | (np.abs(v - 0.5) > 0.4)
    brace = (np.abs(u - v) < 0.07) | (np.abs(u + v - 1) < 0.07)
    shade = np.where(frame | brace, 1.0, 0.78) * (0.9 + 0.15 * smooth_noise(S, 3, rng))
    rgba[..., :3] = np.array([168, 128, 74]) * shade[..., None]
    edge = (np.abs(u - 0.5) > 0.47) | (np.abs(v - 0.5) > 0.47)
    rgba[..., :3] = np.where(edge[..., None], np.array([80.0, 58.0, 34.0]), rgba[..., :3])
    return Sprite(rgba, np.zeros((S, S), np.float32), 0.45, 0.45)


def _chest(rng: np.random.Generator) -> Sprite:
    u, v = _grid()
    rgba = np.zeros((S, S, 4), np.float32)
    body = (v > 0.15) | ((v - 0.15) ** 2 / 0.03 + (u - 0.5) ** 2 / 0.45 < 1)
    band = (np.abs(u - 0.2) < 0.05) | (np.abs(u - 0.8) < 0.05) | (np.abs(v - 0.42) < 0.04)
    lock = (np.abs(u - 0.5) < 0.07) & (np.abs(v - 0.5) < 0.08)
    wood = np.array([122, 64, 36]) * (0.85 + 0.2 * smooth_noise(S, 3, rng))[..., None]
    gold = np.array([214, 174, 70])
    rgba[..., :3] = np.where((band | lock)[..., None], gold, wood)
    rgba[..., 3] = body & (np.abs(u - 0.5) < 0.48)
    return Sprite(rgba, np.zeros((S, S), np.float32), 0.5, 0.38)


def make_sprites(seed: int) -> dict[str, Sprite]:
    rng = np.random.default_rng([seed, 7])
    makers = {"pillar": _pillar, "lamp": _lamp, "barrel": _barrel, "crate": _crate, "chest": _chest}
    return {name: make(rng) for name, make in makers.items()}
