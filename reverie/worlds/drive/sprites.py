"""Sprites of `reverie/Drive-v0`: vehicles seen from behind and roadside props, drawn procedurally.

Each sprite is a small RGBA picture plus an "emissive" mask (lights, lit windows) that stays bright at
night. Scaled copies are made with a box filter (no shimmering windows at 64x64) and cached by pixel
size, tint and fog level, so a blit in the render loop is one masked copy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from reverie.worlds.drive import road

Sprite = tuple[np.ndarray, np.ndarray]  # (h, w, 4) uint8 RGBA, (h, w) bool emissive


class _Canvas:
    def __init__(self, w: int, h: int) -> None:
        self.rgba = np.zeros((h, w, 4), np.uint8)
        self.glow = np.zeros((h, w), bool)
        yy, xx = np.mgrid[0:h, 0:w]
        self.u = (xx + 0.5) / w  # (h, w) in [0, 1]
        self.v = (yy + 0.5) / h

    def fill(self, mask: np.ndarray, color: tuple[int, int, int], glow: bool = False) -> None:
        self.rgba[mask] = (*color, 255)
        self.glow[mask] = glow

    def rect(
        self, x0: float, y0: float, x1: float, y1: float, color: tuple[int, int, int], glow: bool = False
    ) -> None:
        self.fill((self.u >= x0) & (self.u < x1) & (self.v >= y0) & (self.v < y1), color, glow)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, color: tuple[int, int, int]) -> None:
        self.fill(((self.u - cx) / rx) ** 2 + ((self.v - cy) / ry) ** 2 <= 1.0, color)

    def sprite(self) -> Sprite:
        return self.rgba, self.glow


def _shade(c: tuple[int, int, int], k: float) -> tuple[int, int, int]:
    return (min(255, int(c[0] * k)), min(255, int(c[1] * k)), min(255, int(c[2] * k)))


def vehicle(kind: int, color: tuple[int, int, int], braking: bool) -> Sprite:
    """Rear view: body, dark window or cargo door, tail lights (bright when braking), tyres."""
    name = road.VEHICLES[kind][0]
    light = (255, 60, 50) if braking else (150, 20, 20)
    tyre = (20, 20, 22)
    if name == "car":
        c = _Canvas(36, 28)
        c.rect(0.05, 0.80, 0.25, 1.0, tyre)
        c.rect(0.75, 0.80, 0.95, 1.0, tyre)
        c.rect(0.0, 0.40, 1.0, 0.88, color)
        c.rect(0.12, 0.08, 0.88, 0.45, _shade(color, 0.8))
        c.rect(0.18, 0.14, 0.82, 0.42, (40, 50, 65))  # rear window
        c.rect(0.02, 0.50, 0.22, 0.64, light, glow=True)
        c.rect(0.78, 0.50, 0.98, 0.64, light, glow=True)
        c.rect(0.38, 0.64, 0.62, 0.76, (225, 225, 205))  # plate
        c.rect(0.0, 0.86, 1.0, 0.92, _shade(color, 0.5))
    elif name == "van":
        c = _Canvas(36, 40)
        c.rect(0.06, 0.88, 0.26, 1.0, tyre)
        c.rect(0.74, 0.88, 0.94, 1.0, tyre)
        c.rect(0.0, 0.04, 1.0, 0.92, color)
        c.rect(0.10, 0.10, 0.90, 0.38, (40, 50, 65))
        c.rect(0.49, 0.40, 0.51, 0.80, _shade(color, 0.6))
        c.rect(0.03, 0.62, 0.15, 0.76, light, glow=True)
        c.rect(0.85, 0.62, 0.97, 0.76, light, glow=True)
        c.rect(0.0, 0.86, 1.0, 0.92, (50, 50, 55))
    else:  # truck: tall cargo box over a dark chassis
        c = _Canvas(36, 52)
        c.rect(0.06, 0.90, 0.28, 1.0, tyre)
        c.rect(0.72, 0.90, 0.94, 1.0, tyre)
        c.rect(0.0, 0.0, 1.0, 0.84, color)
        c.rect(0.0, 0.0, 1.0, 0.05, _shade(color, 0.7))
        c.rect(0.485, 0.05, 0.515, 0.84, _shade(color, 0.55))
        c.rect(0.02, 0.84, 0.98, 0.92, (45, 45, 50))
        c.rect(0.03, 0.84, 0.16, 0.90, light, glow=True)
        c.rect(0.84, 0.84, 0.97, 0.90, light, glow=True)
    return c.sprite()


def player_car(braking: bool) -> Sprite:
    """The player's car is always teal, a colour no traffic car has, so the model can tell it apart."""
    return vehicle(0, (20, 170, 160), braking)


def _pine() -> Sprite:
    c = _Canvas(24, 48)
    c.rect(0.42, 0.78, 0.58, 1.0, (95, 60, 30))
    tri = (c.v > 0.02) & (c.v < 0.82) & (np.abs(c.u - 0.5) < 0.5 * (c.v - 0.02) / 0.8)
    c.fill(tri & (c.u < 0.5), (25, 95, 40))
    c.fill(tri & (c.u >= 0.5), (18, 72, 32))
    return c.sprite()


def _round_tree() -> Sprite:
    c = _Canvas(32, 40)
    c.rect(0.43, 0.6, 0.57, 1.0, (100, 68, 36))
    c.ellipse(0.5, 0.38, 0.48, 0.36, (50, 120, 45))
    c.ellipse(0.62, 0.45, 0.3, 0.24, (38, 100, 38))
    return c.sprite()


def _pole() -> Sprite:
    c = _Canvas(8, 64)  # trunk half the width: a far pole never shrinks to a floating crossbar
    c.rect(0.25, 0.02, 0.75, 1.0, (110, 80, 55))
    c.rect(0.0, 0.08, 1.0, 0.13, (90, 65, 45))
    return c.sprite()


def _lamp() -> Sprite:
    c = _Canvas(16, 56)
    c.rect(0.44, 0.05, 0.56, 1.0, (120, 125, 130))
    c.rect(0.2, 0.05, 0.56, 0.09, (120, 125, 130))
    c.rect(0.0, 0.05, 0.3, 0.12, (255, 235, 160), glow=True)
    return c.sprite()


def _building(body: tuple[int, int, int], floors: int) -> Callable[[], Sprite]:
    def build() -> Sprite:
        c = _Canvas(40, 12 * floors)
        c.rect(0.0, 0.0, 1.0, 1.0, body)
        c.rect(0.0, 0.0, 1.0, 0.03, _shade(body, 0.7))
        # Windows as a coarse grid of big panes: they survive downscaling without turning into noise.
        win = (((c.u * 4) % 1.0) > 0.3) & (((c.u * 4) % 1.0) < 0.8)
        win &= (((c.v * floors) % 1.0) > 0.3) & (((c.v * floors) % 1.0) < 0.75) & (c.v < 1 - 1.0 / floors)
        c.fill(win, (150, 180, 210), glow=True)  # glass by day; the night glow gain turns it yellow
        c.rect(0.4, 1 - 0.8 / floors, 0.6, 1.0, (60, 45, 35))
        return c.sprite()

    return build


def _chevron(right: bool) -> Sprite:
    c = _Canvas(24, 36)
    c.rect(0.45, 0.5, 0.55, 1.0, (110, 110, 115))
    c.rect(0.0, 0.0, 1.0, 0.55, (245, 200, 20))
    du = (c.u - 0.5) if right else (0.5 - c.u)
    arrow = (np.abs(np.abs(c.v - 0.275) * 1.3 - (0.18 - du)) < 0.09) & (c.v < 0.5) & (c.v > 0.05)
    c.fill(arrow & (np.abs(du) < 0.3), (20, 20, 20))
    return c.sprite()


def _info() -> Sprite:
    c = _Canvas(40, 48)
    c.rect(0.12, 0.5, 0.18, 1.0, (110, 110, 115))
    c.rect(0.82, 0.5, 0.88, 1.0, (110, 110, 115))
    c.rect(0.0, 0.0, 1.0, 0.55, (20, 110, 60))
    c.rect(0.1, 0.12, 0.75, 0.2, (235, 235, 235))
    c.rect(0.1, 0.32, 0.6, 0.4, (235, 235, 235))
    return c.sprite()


def _bush() -> Sprite:
    c = _Canvas(32, 20)
    c.ellipse(0.5, 0.6, 0.5, 0.42, (60, 110, 40))
    return c.sprite()


# kind -> (builder, world width m, world height m); order follows the kind constants in road.py.
PROPS: tuple[tuple[Callable[[], Sprite], float, float], ...] = (
    (_pine, 4.0, 9.0),
    (_round_tree, 5.5, 7.0),
    (_pole, 0.9, 9.5),
    (_lamp, 1.6, 6.5),
    (_building((170, 90, 70), 3), 14.0, 11.0),
    (_building((150, 150, 160), 5), 14.0, 18.0),
    (_building((200, 180, 140), 4), 14.0, 14.0),
    (lambda: _chevron(False), 1.6, 2.6),
    (lambda: _chevron(True), 1.6, 2.6),
    (_info, 4.0, 5.0),
    (_bush, 2.6, 1.6),
)

_BASE: dict[tuple, Sprite] = {}
_SCALED: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
_MAX_CACHE = 20000


def base(key: tuple) -> Sprite:
    """key = ("prop", kind) | ("car", kind, color index, braking) | ("player", braking)."""
    hit = _BASE.get(key)
    if hit is None:
        if key[0] == "prop":
            hit = PROPS[key[1]][0]()
        elif key[0] == "car":
            hit = vehicle(key[1], road.COLORS[road.COLOR_NAMES[key[2]]], key[3])
        else:
            hit = player_car(key[1])
        _BASE[key] = hit
    return hit


def scaled(
    key: tuple, light: tuple, fog: float, fog_rgb: tuple, w: int, h: int
) -> tuple[np.ndarray, np.ndarray]:
    """A (h, w, 3) uint8 picture and (h, w) bool mask: tinted by `light` ((r, g, b) gains for lit and
    emissive pixels), faded towards `fog_rgb` by `fog`, box-filtered down to w x h pixels."""
    ck = (key, light, fog, fog_rgb, w, h)
    hit = _SCALED.get(ck)
    if hit is not None:
        return hit
    rgba, glow = base(key)
    rgb = rgba[..., :3].astype(np.float32)
    gain, glow_gain = np.asarray(light[0], np.float32), np.asarray(light[1], np.float32)
    rgb = np.where(glow[..., None], rgb * glow_gain, rgb * gain)
    rgb = rgb * (1 - fog) + np.asarray(fog_rgb, np.float32) * fog
    pic = np.dstack([np.clip(rgb, 0, 255).astype(np.uint8), rgba[..., 3]])
    small = np.asarray(Image.fromarray(pic, "RGBA").resize((w, h), Image.Resampling.BOX))
    hit = (np.ascontiguousarray(small[..., :3]), small[..., 3] >= 110)
    if len(_SCALED) > _MAX_CACHE:
        _SCALED.clear()
    _SCALED[ck] = hit
    return hit
