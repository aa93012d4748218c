"""Per-episode precomputation for the dungeon ray caster: textures, light maps, baked floor and ceiling.

Everything that does not change while the player walks is done once at reset, so a frame is a few
dozen vectorised NumPy operations. Light is a scalar field on a grid of LIGHT_RES cells per map cell:
room ambient plus soft pools around lamps, split into a steady part and a flickering part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, grey_dilation

from reverie.worlds.dungeon.map import DungeonMap
from reverie.worlds.textures import texture

TEX = 32  # wall texture size (texels per cell)
FLOOR_TEX = 16  # floor/ceiling texels per cell in the baked maps
LIGHT_RES = 4  # light-map samples per cell
MIPS = 3  # texture levels: far walls and floors use blurred levels instead of aliasing into noise
AMBIENT = {"bright": 1.0, "dim": 0.42, "flickering": 0.62}
LAMP_GAIN = 0.75  # peak extra light at a lamp
LAMP_RADIUS = 3.2  # cells
FLOOR_COLORS = {"flagstone": (120, 116, 108), "planks": (130, 92, 58), "dirt": (112, 94, 72)}
CEILING_COLORS = {"beams": (104, 78, 52), "plaster": (150, 146, 136), "stone": (96, 94, 92)}


@dataclass
class Baked:
    wall_tex: np.ndarray  # (MIPS * T * TEX * TEX, 3) float32, flat for a single gather
    n_tex: int
    face_tex: np.ndarray  # (N*N,) int: texture of wall faces seen from that open cell
    light0: np.ndarray  # (N*LIGHT_RES, N*LIGHT_RES) float32 steady light
    light_f: np.ndarray  # same shape: light that follows the flicker signal
    plane: (
        np.ndarray
    )  # (2 * MIPS * M * M, 6) float16: floor levels then ceiling levels; steady rgb, flicker rgb
    plane_size: int  # M = N * FLOOR_TEX


def _mips(img: np.ndarray, levels: int) -> list[np.ndarray]:
    """Box-filtered levels, each upsampled back to full size so every level shares one index space."""
    out = [img.astype(np.float32)]
    cur = img.astype(np.float32)
    for k in range(1, levels):
        h, w = cur.shape[:2]
        cur = cur.reshape(h // 2, 2, w // 2, 2, -1).mean((1, 3))
        out.append(np.repeat(np.repeat(cur, 2**k, 0), 2**k, 1))
    return out


def _wall_textures(dmap: DungeonMap, seed: int) -> tuple[np.ndarray, int, np.ndarray]:
    n = dmap.solid.shape[0]
    texs = []
    shade = (0.8 + 0.2 * np.sin(np.pi * (np.arange(TEX) + 0.5) / TEX) ** 0.5)[:, None, None]
    for i, st in enumerate(dmap.styles):
        texs.append(texture(st.material, seed + i, TEX, st.color) * shade)
    door_base = len(texs)
    for i in range(dmap.n_rooms):
        door = texture("wood", seed + 100 + i, TEX, dmap.styles[i].door).astype(np.float32)
        door[:, :3] *= 0.5  # dark frame edge where the jamb meets the wall
        door[:, -3:] *= 0.5
        texs.append(door * shade)
    face = np.where(dmap.region >= 0, dmap.region, 0)
    # A doorway shows the door colour of the room it opens into.
    ys, xs = np.nonzero(dmap.doorway)
    for y, x in zip(ys, xs):
        nb = [dmap.region[y + dy, x + dx] for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0))]
        rooms = [r for r in nb if 0 <= r < dmap.n_rooms]
        if rooms:
            face[y, x] = door_base + rooms[0]
    levels = [np.stack(_mips(t, MIPS)) for t in texs]  # each (MIPS, TEX, TEX, 3)
    stack = np.stack(levels, 1)  # (MIPS, T, TEX, TEX, 3)
    return stack.reshape(-1, 3).astype(np.float32), len(texs), face.reshape(n * n).astype(np.int64)


def _light(dmap: DungeonMap) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steady light, flickering light and an ambient-occlusion factor, each (N*LIGHT_RES,)*2."""
    n = dmap.solid.shape[0]
    reg = np.repeat(np.repeat(dmap.region, LIGHT_RES, 0), LIGHT_RES, 1)
    amb_cell = np.zeros((n, n), np.float32)
    flick_cell = np.zeros((n, n), bool)
    for r, st in enumerate(dmap.styles):
        amb_cell[dmap.region == r] = AMBIENT[st.light]
        flick_cell[dmap.region == r] = st.light == "flickering"
    # Walls take their brightest neighbour's ambient so blurring does not darken faces.
    amb_cell = np.where(dmap.solid, grey_dilation(amb_cell, size=3), amb_cell)
    amb = np.repeat(np.repeat(amb_cell, LIGHT_RES, 0), LIGHT_RES, 1)
    flick = np.repeat(np.repeat(flick_cell, LIGHT_RES, 0), LIGHT_RES, 1)
    lamps = np.zeros_like(amb)
    lamps_f = np.zeros_like(amb)
    c = (np.arange(n * LIGHT_RES) + 0.5) / LIGHT_RES
    for p in dmap.props:
        if p.kind != "lamp":
            continue
        d = np.hypot(c[None, :] - p.x, c[:, None] - p.y)
        pool = LAMP_GAIN * np.clip(1 - d / LAMP_RADIUS, 0, 1) ** 2
        # Lamp light stays in its room (and on the room's walls), it does not shine through walls.
        room = (reg == p.region) | (reg < 0)
        target = lamps_f if dmap.styles[p.region].light == "flickering" else lamps
        target += pool * room
    steady = gaussian_filter(amb * np.where(flick, 0.6, 1.0) + lamps, 1.5)
    flicker = gaussian_filter(amb * np.where(flick, 0.4, 0.0) + lamps_f, 1.5)
    wall = np.repeat(np.repeat(dmap.solid, LIGHT_RES, 0), LIGHT_RES, 1).astype(np.float32)
    occlusion = 1 - 0.45 * gaussian_filter(wall, 2.0)
    return steady.astype(np.float32), flicker.astype(np.float32), occlusion.astype(np.float32)


def _plane(dmap: DungeonMap, seed: int, light0: np.ndarray, light_f: np.ndarray, ceiling: bool) -> np.ndarray:
    n = dmap.solid.shape[0]
    m = n * FLOOR_TEX
    reg = np.repeat(np.repeat(np.maximum(grey_dilation(dmap.region, size=3), 0), FLOOR_TEX, 0), FLOOR_TEX, 1)
    albedo = np.zeros((m, m, 3), np.float32)
    for r, st in enumerate(dmap.styles):
        name = st.ceiling if ceiling else st.floor
        color = (CEILING_COLORS if ceiling else FLOOR_COLORS)[name]
        if not ceiling and st.kind == "room" and st.light == "bright":
            color = (int(color[0] * 1.1), int(color[1] * 1.1), int(color[2] * 1.1))
        tile = np.tile(texture(name, seed + 200 + r + 50 * ceiling, FLOOR_TEX, color), (n, n, 1))
        sel = reg == r
        albedo[sel] = tile[sel]
    up = FLOOR_TEX // LIGHT_RES
    l0 = np.repeat(np.repeat(light0, up, 0), up, 1)[..., None]
    lf = np.repeat(np.repeat(light_f, up, 0), up, 1)[..., None]
    if ceiling:  # the ceiling catches less lamp light than the floor
        l0, lf = l0 * 0.8, lf * 0.8
    steady = np.concatenate([albedo * l0, albedo * lf], -1)
    return np.stack(_mips(steady, MIPS)).astype(np.float16)  # (MIPS, M, M, 6)


def bake(dmap: DungeonMap, seed: int) -> Baked:
    wall_tex, n_tex, face = _wall_textures(dmap, seed)
    light0, light_f, occ = _light(dmap)
    floor = _plane(dmap, seed, light0 * occ, light_f * occ, ceiling=False)
    ceil = _plane(dmap, seed, light0 * occ, light_f * occ, ceiling=True)
    m = floor.shape[1]
    plane = np.concatenate([floor, ceil]).reshape(-1, 6)
    return Baked(wall_tex, n_tex, face, light0, light_f, plane, m)
