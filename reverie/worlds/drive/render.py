"""Pseudo-3D rendering of `reverie/Drive-v0` (OutRun-style): the road is projected per segment boundary,
every screen row is assigned the nearest visible segment (hills hide what lies behind a crest), and the
ground is classified per pixel with a handful of whole-frame NumPy operations. Sky and mountains come
from a per-episode panorama; cars and props are cached, pre-scaled sprites drawn far to near.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from reverie.worlds.drive import road, sprites

GROUND, RUMBLE, ROAD, EDGE, LANE = range(5)
NCLS = 5  # classes per lighting; night doubles them (headlight-lit copies)
DRAW_SEGS = 160  # segments projected per frame (480 m)
SPRITE_DIST = 240.0  # metres; props further away are sub-pixel at 64x64 anyway
STRIPE = 2  # segments per dash / rumble colour
VFOV = math.radians(50.0)  # vertical field of view; the horizontal one grows with the aspect ratio


@dataclass(frozen=True)
class Look:
    """Colours and light of one time of day."""

    sky_top: tuple[int, int, int]
    sky_low: tuple[int, int, int]
    fog: tuple[int, int, int]
    fog_near: float  # metres where fog starts
    fog_far: float  # metres where everything is fog
    gain: tuple[float, float, float]  # multiplies daylight colours
    glow: tuple[float, float, float]  # multiplies emissive pixels (lights, windows)
    mountains: tuple[int, int, int]


LOOKS = {
    "day": Look(
        (60, 120, 215), (175, 210, 240), (185, 210, 232), 80.0, 460.0, (1, 1, 1), (1, 1, 1), (105, 135, 165)
    ),
    "dusk": Look(
        (55, 45, 110),
        (245, 145, 80),
        (205, 130, 100),
        50.0,
        330.0,
        (0.78, 0.62, 0.62),
        (1.1, 1.0, 0.95),
        (95, 60, 95),
    ),
    "night": Look(
        (6, 8, 22), (28, 32, 60), (8, 10, 20), 12.0, 130.0, (0.2, 0.2, 0.3), (1.6, 1.2, 0.6), (20, 22, 38)
    ),
}
# Daylight ground colours per zone, in two shades that alternate with the stripes (motion cue).
_GROUND = {"trees": ((62, 140, 52), (55, 128, 46)), "buildings": ((150, 150, 146), (138, 138, 134)),
           "fields": ((160, 172, 72), (148, 160, 64))}  # fmt: skip
_ROAD = ((108, 108, 112), (100, 100, 104))
_RUMBLE = ((215, 40, 40), (235, 235, 235))
_LINE = (240, 240, 240)


@dataclass(frozen=True)
class Camera:
    back: float  # metres behind the car
    height: float  # metres above the road
    horizon: float  # horizon row as a fraction of the frame height


CAMERAS = {"chase": Camera(6.0, 2.3, 0.4), "driver": Camera(0.0, 1.2, 0.45)}


def _palette(look: Look, night: bool) -> np.ndarray:
    """(Z, 2, C, 3) float32 colours per zone, stripe phase and class (C = 2 * NCLS at night)."""
    gain = np.asarray(look.gain, np.float32)
    table = np.zeros((len(road.ZONES), 2, NCLS, 3), np.float32)
    for z, zone in enumerate(road.ZONES):
        for p in range(2):
            table[z, p, GROUND] = _GROUND[zone][p]
            table[z, p, RUMBLE] = _RUMBLE[p] if zone != "buildings" else (200, 200, 196)
            table[z, p, ROAD] = _ROAD[p]
            table[z, p, EDGE] = _LINE
            table[z, p, LANE] = _LINE
    if not night:
        return table * gain
    lit = table * np.asarray((0.85, 0.8, 0.65), np.float32)  # warm headlight cone
    return np.concatenate([table * gain, lit], axis=2)


def _panorama(look: Look, rows: int, focal: float, time: str, rng: np.random.Generator) -> np.ndarray:
    """(rows, P, 3) uint8 sky all around the car (P columns = 360 degrees), with mountains and sun/moon."""
    width = max(8, round(2 * math.pi * focal))
    v = (np.arange(rows) + 0.5)[:, None] / max(rows, 1)
    sky = np.asarray(look.sky_top, np.float32) * (1 - v**0.7) + np.asarray(look.sky_low, np.float32) * v**0.7
    pano = np.broadcast_to(sky[:, None, :], (rows, width, 3)).copy()
    ang = np.arange(width) / width * 2 * math.pi
    yy = np.arange(rows)[:, None] + 0.5
    xx = np.arange(width)[None, :]
    if time == "day":  # a few big soft clouds, flat colour so they stay clean at 64x64
        for _ in range(int(rng.integers(3, 7))):
            cx, cy = rng.uniform(0, width), rng.uniform(0.15, 0.55) * rows
            rx, ry = rng.uniform(0.08, 0.16) * focal, rng.uniform(0.04, 0.07) * focal
            dx = (xx - cx + width / 2) % width - width / 2
            pano[(dx / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1] = (240, 244, 250)
    else:  # low sun at dusk, a moon at night
        cx = rng.uniform(0, width)
        cy, r = (0.8 * rows, 0.12 * focal) if time == "dusk" else (0.3 * rows, 0.05 * focal)
        dx = (xx - cx + width / 2) % width - width / 2
        pano[dx**2 + (yy - cy) ** 2 < r * r] = (255, 200, 90) if time == "dusk" else (225, 225, 205)
    for layer, (scale, shade) in enumerate(((0.30, 1.0), (0.16, 0.8))):
        ridge = np.zeros(width)
        for k in (2, 3, 5, 7, 11):
            ridge += rng.uniform(0.2, 1.0) / k**0.6 * np.sin(k * ang + rng.uniform(0, 2 * math.pi))
        ridge = (ridge - ridge.min()) / max(np.ptp(ridge), 1e-6)
        top = rows - (0.25 + 0.75 * ridge) * scale * rows * (1.3 - 0.3 * layer)
        color = np.asarray(look.mountains, np.float32) * shade
        pano[yy >= top[None, :]] = color
    return np.clip(pano, 0, 255).astype(np.uint8)


_PROP_W = np.array([p[1] for p in sprites.PROPS])
_PROP_H = np.array([p[2] for p in sprites.PROPS])


class DriveRenderer:
    """Draws one frame from the player's state; owns the per-episode palette, panorama and geometry."""

    def __init__(
        self, width: int, height: int, view: str, time: str, track: road.Track, rng: np.random.Generator
    ):
        self.w, self.h = width, height
        self.track = track
        self.cam = CAMERAS[view]
        self.view = view
        self.time = time
        self.look = LOOKS[time]
        self.night = time == "night"
        self.focal = (height / 2) / math.tan(VFOV / 2)  # pixels per (metre / metre of depth)
        self.horizon = self.cam.horizon * height
        self.sky_rows = math.ceil(self.horizon)
        self.pano = _panorama(self.look, self.sky_rows, self.focal, time, rng)
        self.palette = _palette(self.look, self.night)
        self.ncls = self.palette.shape[2]
        self.cols = np.arange(width, dtype=np.float32) + 0.5
        self.rows = np.arange(height, dtype=np.float64) + 0.5
        self.kd = (np.arange(DRAW_SEGS + 1) + 1) * road.SEG  # boundary distances before the fractional shift
        self.fog_rgb = np.asarray(self.look.fog, np.float32)
        self.light = (self.look.gain, self.look.glow)
        if view == "driver":  # the bonnet: a dark band with a rounded top edge
            u = (self.cols - width / 2) / (width / 2)
            top = height * (0.9 + 0.06 * u**2)
            self.hood = self.rows[:, None] >= top[None, :]

    # -- geometry -------------------------------------------------------------------------------
    def _project(self, s_cam: float, px: float) -> dict[str, np.ndarray | float | int]:
        tr, seg, k = self.track, road.SEG, DRAW_SEGS
        i0 = int(s_cam // seg)
        frac = s_cam - i0 * seg
        idx = (i0 + np.arange(k + 2)) % tr.n  # segment i0 holds the camera; boundaries are i0+1 ...
        kap = tr.curve[idx]
        rest = seg - frac
        # Heading and lateral offset of each boundary in the camera's frame (small-angle, exact per
        # segment), continuous in s_cam so the road never jumps when a boundary is crossed.
        head = kap[0] * rest + seg * np.concatenate([[0.0], np.cumsum(kap[1 : k + 1])])  # (k+1,)
        lat = 0.5 * kap[0] * rest**2 + np.concatenate(
            [[0.0], np.cumsum(head[:-1] * seg + 0.5 * kap[1 : k + 1] * seg**2)]
        )
        d = self.kd - frac
        invd = 1.0 / d
        h0, h1 = tr.height[idx[0]], tr.height[idx[1]]
        cam_y = h0 + (h1 - h0) * frac / seg + self.cam.height
        ys = self.horizon + (cam_y - tr.height[idx[1:]]) * self.focal * invd  # (k+1,) screen rows
        xs = self.w / 2 + (lat - px) * self.focal * invd
        top = np.minimum.accumulate(ys)
        return {"i0": i0, "idx": idx, "d": d, "invd": invd, "ys": ys, "xs": xs, "top": top, "lat": lat,
                "cam_y": cam_y, "frac": frac}  # fmt: skip

    # -- frame ----------------------------------------------------------------------------------
    def render(self, s: float, x: float, steer: float, braking: bool, traffic: road.Traffic) -> np.ndarray:
        tr, w, h, f = self.track, self.w, self.h, self.focal
        s_cam = s - self.cam.back
        g = self._project(s_cam, x)
        ys, xs, invd, top = g["ys"], g["xs"], g["invd"], g["top"]
        i0 = g["i0"]
        assert isinstance(i0, int) and isinstance(ys, np.ndarray) and isinstance(top, np.ndarray)
        assert isinstance(xs, np.ndarray) and isinstance(invd, np.ndarray)
        frame = np.empty((h, w, 3), np.uint8)

        # Rows -> segment: row r belongs to segment j when top[j+1] <= r < top[j].
        cnt = np.searchsorted(-top, -self.rows)
        j = np.clip(cnt - 1, 0, DRAW_SEGS - 1)
        valid = cnt <= DRAW_SEGS
        y0, y1 = ys[j], ys[j + 1]
        t = (y0 - self.rows) / np.maximum(y0 - y1, 1e-3)
        inv = np.maximum(invd[j] + (invd[j + 1] - invd[j]) * t, 1e-4)
        cx = xs[j] + (xs[j + 1] - xs[j]) * t
        dist = 1.0 / inv
        scale = f * inv  # pixels per metre on this row
        seg_id = i0 + 1 + j
        phase = (seg_id // STRIPE) % 2
        zone = tr.zone[seg_id % tr.n]
        fog = np.where(
            valid, np.clip((dist - self.look.fog_near) / (self.look.fog_far - self.look.fog_near), 0, 1), 1
        )

        sky_end = min(self.sky_rows, max(0, math.ceil(float(top[-1]) - 0.5)))
        if sky_end > 0:
            shift = round(self._heading(s_cam) * f) - w // 2
            cols = (np.arange(w) + shift) % self.pano.shape[1]
            frame[:sky_end] = self.pano[:sky_end, cols]

        if sky_end < h:
            r = slice(sky_end, h)
            hw = tr.half_width * scale[r]  # (R,) road half width in pixels
            hw = np.where(valid[r], hw, 1e-3)
            u = (self.cols[None, :] - cx[r, None]) * (1.0 / hw)[:, None]  # (R, W) lateral, +-1 = road edge
            au = np.abs(u)
            rumble_u = 1.0 + 0.8 / tr.half_width
            cls = (au < rumble_u).astype(np.uint8) + (au < 1.0)
            edge_px = (1.0 - au) * hw[:, None]
            e0 = 0.25 * scale[r]
            e1 = np.where(hw >= 5, np.maximum(e0 + 0.8, 0.5 * scale[r]), -1.0)
            cls += (edge_px > e0[:, None]) & (edge_px < e1[:, None])
            lane_px = road.LANE_W * scale[r]
            lw = np.where(
                (phase[r] == 0) & (lane_px >= 3.0) & (tr.lanes > 1), np.maximum(0.55, 0.16 * scale[r]), -1.0
            )
            v = (self.cols[None, :] - (cx[r] - hw)[:, None]) * (1.0 / lane_px)[:, None]
            near = np.abs(v - np.rint(v)) * lane_px[:, None]
            lane = (near < lw[:, None]) & (v > 0.5) & (v < tr.lanes - 0.5)
            cls += 2 * lane.astype(np.uint8)
            if self.night:  # headlight cone: a wedge ahead of the car, out to about 45 m
                cone = np.where(dist[r] < 45.0, (1.6 + 0.22 * dist[r]) * scale[r], -1.0)
                cls += (NCLS * (np.abs(self.cols[None, :] - w / 2) < cone[:, None])).astype(np.uint8)
            pal = self.palette[zone[r], phase[r]]  # (R, C, 3)
            fr = fog[r, None, None]
            pal = (pal * (1 - fr) + self.fog_rgb * fr).astype(np.uint8).reshape(-1, 3)
            base = (np.arange(h - sky_end) * self.ncls)[:, None]
            frame[r] = pal[cls + base]

        self._draw_sprites(frame, g, s_cam, x, traffic)
        self._draw_player(frame, steer, braking)
        return frame

    def _heading(self, s_cam: float) -> float:
        tr = self.track
        i = int(s_cam // road.SEG) % tr.n
        return float(tr.heading[i] + tr.curve[i] * (s_cam % road.SEG))

    def _fog_q(self, d: float) -> float:
        fog = (d - self.look.fog_near) / (self.look.fog_far - self.look.fog_near)
        return round(min(max(fog, 0.0), 1.0) * 6) / 6  # few levels: the sprite cache stays small

    def _draw_sprites(
        self, frame: np.ndarray, g: dict, s_cam: float, px: float, traffic: road.Traffic
    ) -> None:
        tr, f, w = self.track, self.focal, self.w
        ys, xs, invd, top, lat, d = g["ys"], g["xs"], g["invd"], g["top"], g["lat"], g["d"]
        items: list[tuple[float, tuple, float, float, float, float, float]] = []
        # Props at segment boundaries, culled as arrays before any per-sprite Python work.
        idx = g["idx"][1:]
        for side, sign in ((0, -1.0), (1, 1.0)):
            kinds = tr.prop[idx, side]  # (k+1,)
            m = np.flatnonzero((kinds >= 0) & (d < SPRITE_DIST) & (d > 1.0))  # a prop at the camera is huge
            if len(m) == 0:
                continue
            kind = kinds[m]
            sc = f * invd[m]
            sw, sh = _PROP_W[kind] * sc, _PROP_H[kind] * sc
            sx = xs[m] + sign * (tr.half_width + tr.prop_off[idx[m], side] + _PROP_W[kind] / 2) * sc
            ok = (sh >= 2.0) & (sw >= 1.0) & (sx + sw / 2 > 0) & (sx - sw / 2 < w)
            for q in np.flatnonzero(ok).tolist():
                mi = int(m[q])
                items.append((d[mi], ("prop", int(kind[q])), sx[q], ys[mi], sw[q], sh[q], top[mi]))
        # Traffic between the camera and the draw distance.
        rel = traffic.s - s_cam
        cx_lane = traffic.lateral(tr)
        for i in np.flatnonzero((rel > 1.0) & (rel < SPRITE_DIST)).tolist():
            dm = rel[i]
            mf = min(max((dm + g["frac"]) / road.SEG - 1.0, 0.0), DRAW_SEGS - 1e-6)
            mb = int(mf)
            t = mf - mb
            sc = f / dm
            lat_road = lat[mb] + (lat[mb + 1] - lat[mb]) * t
            y_road = tr.height[g["idx"][mb + 1]] * (1 - t) + tr.height[g["idx"][mb + 2]] * t
            kind = int(traffic.kind[i])
            _, vw, vh, _ = road.VEHICLES[kind]
            sx = w / 2 + (lat_road + cx_lane[i] - px) * sc
            sy = self.horizon + (g["cam_y"] - y_road) * sc
            key = ("car", kind, int(traffic.color[i]), bool(traffic.braking[i]))
            items.append((dm, key, sx, sy, vw * sc, vh * sc, top[min(mb + 1, DRAW_SEGS)]))
        items.sort(key=lambda it: -it[0])
        for dm, key, sx, sy, sw, sh, clip in items:
            if sh < 1.5 or sw < 1.0 or sh > 4 * self.h or sx + sw / 2 < 0 or sx - sw / 2 > w:
                continue
            self._blit(frame, key, self._fog_q(dm), sx, sy, sw, sh, clip)

    def _blit(self, frame: np.ndarray, key: tuple, fog: float, sx: float, sy: float, sw: float, sh: float,
              clip: float) -> None:  # fmt: skip
        """Draw a sprite centred at column sx, standing on row sy, hidden below row `clip` (nearer road)."""
        if fog >= 1.0:
            return
        pw, ph = max(1, round(sw)), max(1, round(sh))
        x0, y0 = round(sx - pw / 2), round(sy - ph)
        x1, y1 = x0 + pw, y0 + ph
        cx0, cy0 = max(x0, 0), max(y0, 0)
        cx1, cy1 = min(x1, self.w), min(y1, self.h, math.ceil(clip))
        if cx1 <= cx0 or cy1 <= cy0:
            return
        rgb, mask = sprites.scaled(key, self.light, fog, self.look.fog, pw, ph)
        sub = (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0))
        np.copyto(frame[cy0:cy1, cx0:cx1], rgb[sub], where=mask[sub][..., None])

    def _draw_player(self, frame: np.ndarray, steer: float, braking: bool) -> None:
        if self.view == "driver":
            frame[self.hood] = (25, 95, 90) if not self.night else (8, 30, 30)
            return
        f, back = self.focal, self.cam.back
        _, vw, vh, _ = road.VEHICLES[0]
        sw, sh = vw * f / back, vh * f / back
        sy = self.horizon + self.cam.height * f / back
        sx = self.w / 2 + steer * 0.08 * sw  # a slight sway with the wheel
        light = self.light if not self.night else ((0.45, 0.45, 0.5), self.look.glow)
        pw, ph = max(1, round(sw)), max(1, round(sh))
        x0, y0 = round(sx - pw / 2), round(sy - ph)
        rgb, mask = sprites.scaled(("player", braking), light, 0.0, self.look.fog, pw, ph)
        cx0, cx1, cy1 = max(x0, 0), min(x0 + pw, self.w), min(y0 + ph, self.h)
        sub = (slice(0, cy1 - y0), slice(cx0 - x0, cx1 - x0))
        np.copyto(frame[y0:cy1, cx0:cx1], rgb[sub], where=mask[sub][..., None])
