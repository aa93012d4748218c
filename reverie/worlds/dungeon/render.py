"""First-person ray caster in NumPy: walls, floor, ceiling, fog and z-buffered billboards.

Speed comes from doing a fixed number of whole-array operations per frame, never a Python loop over
pixels or DDA steps: each column's ray is tested against its first K vertical and K horizontal grid
lines all at once (a (W, K) gather), the first solid cell along each family wins. Rays that hit nothing
within K lines end in full fog. Floor and ceiling pixels share one gather from the baked light maps.

The camera sits at half the wall height. The vertical field of view is fixed, so a wider frame sees
more to the sides rather than a stretched picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from reverie.worlds.dungeon.bake import FLOOR_TEX, LIGHT_RES, MIPS, TEX, Baked
from reverie.worlds.dungeon.map import DungeonMap
from reverie.worlds.dungeon.sprites import S as SPRITE_TEX
from reverie.worlds.dungeon.sprites import Sprite


@dataclass(frozen=True)
class RenderConfig:
    vfov_deg: float = 64.0
    crossings: int = 14  # grid lines tested per ray and axis; beyond them lies fog
    fog_scale: float = 5.5  # cells; exponential fog, renormalised to be opaque at `fog_end`
    fog_end: float = 13.0
    fog_color: tuple[int, int, int] = (14, 12, 16)
    y_side_shade: float = 0.78  # faces along x are darker: cheap directional light


class Renderer:
    def __init__(
        self,
        dmap: DungeonMap,
        baked: Baked,
        sprites: dict[str, Sprite],
        width: int,
        height: int,
        cfg: RenderConfig | None = None,
    ) -> None:
        self.cfg = cfg or RenderConfig()
        self.W, self.H = width, height
        self.n = dmap.solid.shape[0]
        self.solid = np.concatenate([dmap.solid.reshape(-1), [True]])  # last entry: outside the map
        self.baked = baked
        self.sprites = sprites
        self.props = dmap.props
        self.prop_xy = np.array([[p.x, p.y] for p in dmap.props], np.float32).reshape(-1, 2)
        self.fog_rgb = np.array(self.cfg.fog_color, np.float32)
        self.focal = (height / 2) / math.tan(math.radians(self.cfg.vfov_deg) / 2)  # pixels
        self.cam_x = ((np.arange(width) + 0.5 - width / 2) / self.focal).astype(np.float32)  # (W,)
        off = (np.arange(height) + 0.5 - height / 2).astype(np.float32)  # (H,) row offset from horizon
        self.row_off = off
        self.k = np.arange(self.cfg.crossings, dtype=np.float32)  # (K,)
        # Floor and ceiling: each row sees the plane at one distance; the ceiling mirrors the floor.
        dist = (self.focal * 0.5 / np.maximum(np.abs(off), 1e-3)).astype(np.float32)
        self.row_dist = dist[:, None]  # (H, 1)
        fog = self._fog(dist)
        self.row_a = (1 - fog)[:, None, None]  # (H, 1, 1)
        self.row_b = (fog[:, None] * self.fog_rgb)[:, None, :]  # (H, 1, 3)
        texels_per_px = dist * FLOOR_TEX / self.focal
        level = np.clip(np.floor(np.log2(np.maximum(texels_per_px, 1e-6)) + 0.5), 0, MIPS - 1).astype(
            np.int64
        )
        m = baked.plane_size
        layer = level + np.where(off < 0, MIPS, 0)
        self.row_base = (layer * m * m)[:, None]  # (H, 1) flat offset of each row's plane level
        self.m_mask = m - 1
        self.rows = off[:, None]  # (H, 1)
        self.cols = np.arange(width)
        self.tex_level_stride = baked.n_tex * TEX * TEX

    def _fog(self, d: np.ndarray) -> np.ndarray:
        c = self.cfg
        f = (1 - np.exp(-d / c.fog_scale)) / (1 - math.exp(-c.fog_end / c.fog_scale))
        return np.clip(f, 0, 1).astype(np.float32)

    def _fog_scalar(self, d: float) -> float:
        c = self.cfg  # the same curve as _fog, for one sprite without array overhead
        return min(max((1 - math.exp(-d / c.fog_scale)) / (1 - math.exp(-c.fog_end / c.fog_scale)), 0.0), 1.0)

    def _cast(self, px: float, py: float, rx: np.ndarray, ry: np.ndarray) -> tuple[np.ndarray, ...]:
        """Perpendicular distance, hit cell, face texture and texture u for every column."""
        n, k, cols = self.n, self.k, self.cols
        fx, fy = math.floor(px), math.floor(py)
        sx = np.where(rx > 0, 1.0, -1.0).astype(np.float32)
        sy = np.where(ry > 0, 1.0, -1.0).astype(np.float32)
        rx = np.where(np.abs(rx) < 1e-6, 1e-6, rx)
        ry = np.where(np.abs(ry) < 1e-6, 1e-6, ry)
        # Vertical grid lines x = fx + (sx > 0) + k*sx, entering cell column fx + (k+1)*sx.
        cx = fx + sx[:, None] * (k + 1)  # (W, K)
        tx = (fx + (sx[:, None] > 0) + sx[:, None] * k - px) / rx[:, None]
        cy_x = np.floor(py + tx * ry[:, None])
        # Horizontal grid lines, entering cell row fy + (k+1)*sy.
        cy = fy + sy[:, None] * (k + 1)
        ty = (fy + (sy[:, None] > 0) + sy[:, None] * k - py) / ry[:, None]
        cx_y = np.floor(px + ty * rx[:, None])
        outside = n * n
        idx_x = np.where((cx >= 0) & (cx < n) & (cy_x >= 0) & (cy_x < n), cy_x * n + cx, outside).astype(
            np.int64
        )
        idx_y = np.where((cx_y >= 0) & (cx_y < n) & (cy >= 0) & (cy < n), cy * n + cx_y, outside).astype(
            np.int64
        )
        hit_x, hit_y = self.solid[idx_x], self.solid[idx_y]
        first_x, first_y = hit_x.argmax(1), hit_y.argmax(1)
        dist_x = np.where(hit_x[cols, first_x], tx[cols, first_x], np.inf)
        dist_y = np.where(hit_y[cols, first_y], ty[cols, first_y], np.inf)
        use_x = dist_x <= dist_y
        dist = np.minimum(dist_x, dist_y)
        # The open cell in front of the face decides its look (room material, door jambs).
        prev_x = idx_x[cols, first_x] - sx.astype(np.int64)
        prev_y = idx_y[cols, first_y] - sy.astype(np.int64) * n
        prev = np.clip(np.where(use_x, prev_x, prev_y), 0, n * n - 1)
        face = self.baked.face_tex[prev]
        hx, hy = px + dist * rx, py + dist * ry
        u = np.where(use_x, np.where(sx > 0, hy, -hy), np.where(sy > 0, -hx, hx)) % 1.0
        return dist, use_x, face, u, hx, hy

    def render(self, px: float, py: float, angle: float, flicker: float) -> np.ndarray:
        """The frame seen from (px, py) looking along `angle`, as (H, W, 3) uint8."""
        _H, _W, b = self.H, self.W, self.baked
        dx, dy = math.cos(angle), math.sin(angle)
        rx = (dx - dy * self.cam_x).astype(np.float32)  # camera right is (-dy, dx)
        ry = (dy + dx * self.cam_x).astype(np.float32)
        # Floor and ceiling.
        wx = px + self.row_dist * rx  # (H, W)
        wy = py + self.row_dist * ry
        m = b.plane_size
        ix = (wx * FLOOR_TEX).astype(np.int64) & self.m_mask
        iy = (wy * FLOOR_TEX).astype(np.int64) & self.m_mask
        g = b.plane[self.row_base + iy * m + ix].astype(np.float32)  # (H, W, 6)
        plane = (g[..., :3] + flicker * g[..., 3:]) * self.row_a + self.row_b
        # Walls.
        dist, use_x, face, u, hx, hy = self._cast(px, py, rx, ry)
        # float32 from here on: the (H, W) wall maths would otherwise run in float64
        dist = np.where(np.isfinite(dist), dist, 1e4).astype(np.float32)
        hx, hy, u = hx.astype(np.float32), hy.astype(np.float32), u.astype(np.float32)
        back = 0.02  # sample the light just in front of the face, inside the open cell
        lx = ((hx - back * rx) * LIGHT_RES).astype(np.int64).clip(0, b.light0.shape[1] - 1)
        ly = ((hy - back * ry) * LIGHT_RES).astype(np.int64).clip(0, b.light0.shape[0] - 1)
        light = b.light0[ly, lx] + flicker * b.light_f[ly, lx]
        fog = self._fog(dist)
        gain = light * np.where(use_x, np.float32(1.0), np.float32(self.cfg.y_side_shade)) * (1 - fog)
        v = self.rows * (dist / self.focal) + 0.5  # (H, W) height on the wall, 0 top .. 1 bottom
        on_wall = (v >= 0) & (v < 1)
        tv = (v * TEX).astype(np.int64).clip(0, TEX - 1)
        level = np.clip(np.floor(np.log2(np.maximum(dist * TEX / self.focal, 1e-6)) + 0.5), 0, MIPS - 1)
        col_base = (
            level.astype(np.int64) * self.tex_level_stride + face * (TEX * TEX) + (u * TEX).astype(np.int64)
        )
        wall = b.wall_tex[col_base + tv * TEX] * gain[:, None] + fog[:, None] * self.fog_rgb
        frame = np.where(on_wall[..., None], wall, plane)
        if len(self.props):
            self._draw_sprites(frame, px, py, dx, dy, dist, flicker)
        np.clip(frame, 0, 255, out=frame)
        return frame.astype(np.uint8)

    def _draw_sprites(
        self, frame: np.ndarray, px: float, py: float, dx: float, dy: float, zbuf: np.ndarray, flicker: float
    ) -> None:
        rel = self.prop_xy - np.array([px, py], np.float32)
        depth = rel[:, 0] * dx + rel[:, 1] * dy
        lateral = rel[:, 0] * -dy + rel[:, 1] * dx
        sx = self.W / 2 + self.focal * lateral / np.maximum(depth, 1e-3)
        visible = (depth > 0.15) & (depth < self.cfg.fog_end) & (np.abs(sx - self.W / 2) < self.W)
        b = self.baked
        for i in np.nonzero(visible)[0][np.argsort(-depth[visible])]:
            prop, d = self.props[i], float(depth[i])
            spr = self.sprites[prop.kind]
            w_px, h_px = self.focal * spr.width / d, self.focal * spr.height / d
            left, bottom = sx[i] - w_px / 2, self.H / 2 + self.focal * 0.5 / d
            top = bottom - h_px
            x0, x1 = max(0, math.floor(left + 0.5)), min(self.W, math.ceil(left + w_px - 0.5))
            y0, y1 = max(0, math.floor(top + 0.5)), min(self.H, math.ceil(bottom - 0.5))
            if x0 >= x1 or y0 >= y1:
                continue
            cols = np.arange(x0, x1)
            # x0 >= left - 0.5 and y0 >= top - 0.5, so texel indices are never negative: only the top clamps
            tu = np.minimum(((cols + 0.5 - left) * (SPRITE_TEX / w_px)).astype(np.int64), SPRITE_TEX - 1)
            tv = np.minimum(
                ((np.arange(y0, y1) + 0.5 - top) * (SPRITE_TEX / h_px)).astype(np.int64), SPRITE_TEX - 1
            )
            texel = spr.rgba[tv[:, None], tu[None, :]]  # (h, w, 4)
            mask = (texel[..., 3] > 0) & (d < zbuf[x0:x1])[None, :]
            ly = min(int(prop.y * LIGHT_RES), b.light0.shape[0] - 1)
            lx = min(int(prop.x * LIGHT_RES), b.light0.shape[1] - 1)
            light = b.light0[ly, lx] + flicker * b.light_f[ly, lx]
            fog = self._fog_scalar(d)
            lit = light + spr.emissive[tv[:, None], tu[None, :]] * (1 + 0.5 * flicker)
            color = texel[..., :3] * (lit * (1 - fog * 0.9))[..., None] + fog * self.fog_rgb
            region = frame[y0:y1, x0:x1]
            region[mask] = color[mask]
