"""`reverie/Drive-v0`: driving seen from the car, a pseudo-3D road with curves, hills, traffic and props.

    env = gymnasium.make("reverie/Drive-v0", render_mode="rgb_array", width=64, height=64)

Each episode draws a track (curves, hills, roadside zones), a time of day (day, dusk, night with
headlights), a lane count and traffic. The reward is the distance advanced along the road in metres;
off the road (grass, kerb, field) the car slows down. `info` carries the ground truth: `pose`
(distance along the track, lateral offset from the centre line in metres with + to the right, heading
relative to the road in radians), `speed` (m/s), `lane` (0 = leftmost, -1 off the road), `offroad`,
`blocked` (hit a car this step), `scene` (attributes) and `caption` (a sentence written from them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from reverie.errors import ReverieError
from reverie.sizes import parse_size
from reverie.worlds.drive import road
from reverie.worlds.drive.caption import caption
from reverie.worlds.drive.render import CAMERAS, LOOKS, DriveRenderer

DT = 0.05  # seconds per step
TOP_SPEED = 45.0  # m/s on the road
GRASS_SPEED = 12.0  # m/s the car can hold off the road
DISCRETE_ACTIONS = ("noop", "accelerate", "brake", "left", "right", "accelerate_left", "accelerate_right")
# (steer, throttle, brake) per discrete action
_DISCRETE = np.array(
    [[0, 0, 0], [0, 1, 0], [0, 0, 1], [-1, 0, 0], [1, 0, 0], [-1, 1, 0], [1, 1, 0]], np.float32
)
CONTINUOUS_ACTIONS = ("steer", "throttle", "brake")
PLAYER_LEN, PLAYER_W = 4.2, 1.8


@dataclass(frozen=True)
class DriveConfig:
    width: int = 64
    height: int = 64
    continuous: bool = False
    max_steps: int = 1000
    view: str = "chase"  # "chase" (behind the car) or "driver" (from the seat, bonnet in view)
    time: str | None = None  # "day", "dusk" or "night"; None draws one per episode
    lanes: int | None = None  # 2..4; None draws one per episode
    traffic: float = 1.0  # multiplies the number of other cars (0 = an empty road)
    hills: bool = True

    def __post_init__(self) -> None:
        parse_size((self.width, self.height))
        if self.view not in CAMERAS:
            raise ReverieError(f"bad view {self.view!r}: accepted {', '.join(CAMERAS)}")
        if self.time is not None and self.time not in LOOKS:
            raise ReverieError(f"bad time {self.time!r}: accepted {', '.join(LOOKS)} or None")
        if self.lanes is not None and not 1 <= self.lanes <= 4:
            raise ReverieError(f"bad lanes {self.lanes}: accepted 1..4 or None")
        if self.max_steps < 1 or self.traffic < 0:
            raise ReverieError("max_steps must be >= 1 and traffic >= 0")


class DriveEnv(gymnasium.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": round(1 / DT)}  # noqa: RUF012

    def __init__(self, render_mode: str | None = "rgb_array", **kwargs: Any) -> None:
        self.cfg = DriveConfig(**kwargs)
        self.render_mode = render_mode
        h, w = self.cfg.height, self.cfg.width
        self.observation_space = spaces.Box(0, 255, (h, w, 3), np.uint8)
        if self.cfg.continuous:
            self.action_space: spaces.Space = spaces.Box(
                np.array([-1, 0, 0], np.float32), np.array([1, 1, 1], np.float32), dtype=np.float32
            )
            self.action_names = list(CONTINUOUS_ACTIONS)
        else:
            self.action_space = spaces.Discrete(len(DISCRETE_ACTIONS))
            self.action_names = list(DISCRETE_ACTIONS)
        self._frame = np.zeros((h, w, 3), np.uint8)
        self._caption_key: tuple | None = None
        self._caption = ""

    # -- episode --------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        rng = self.np_random
        cfg = self.cfg
        self.episode_seed = int(rng.integers(2**31))
        self.time = cfg.time or str(rng.choice(["day", "dusk", "night"], p=[0.45, 0.35, 0.2]))
        lanes = cfg.lanes or int(rng.choice([2, 3, 4], p=[0.4, 0.4, 0.2]))
        hills = float(rng.uniform(0.0, 12.0)) if cfg.hills else 0.0
        self.track = road.make_track(rng, lanes, hills)
        self.s = float(rng.uniform(0, self.track.length))
        self.x = float(road.lane_center(self.track, int(rng.integers(lanes))))
        self.speed = float(rng.uniform(0.0, 20.0))
        self.heading = 0.0
        count = int(rng.poisson(6.0 * cfg.traffic))
        self.traffic = road.Traffic.spawn(rng, count, lanes, self.s)
        self.renderer = DriveRenderer(cfg.width, cfg.height, cfg.view, self.time, self.track, rng)
        self.steps = 0
        self._steer, self._braking = 0.0, False
        self._caption_key = None
        self._frame = self._render_frame()
        return self._frame, self._info(blocked=False)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        steer, throttle, brake = self._controls(action)
        tr = self.track
        offroad = abs(self.x) > tr.half_width
        top = GRASS_SPEED if offroad else TOP_SPEED
        v = self.speed
        accel = throttle * 9.0 * max(0.0, 1.0 - v / top) - brake * 16.0 - 0.3 - 0.0004 * v * v
        if v > top:  # grass, gravel or kerb: scrub off speed quickly
            accel -= 14.0
        v = min(max(v + accel * DT, 0.0), TOP_SPEED)
        # Steering moves the car across the road; on a curve the car drifts outwards with v^2.
        kappa = float(tr.curve[tr.seg_at(self.s)])
        vx = steer * 9.0 * min(1.0, v / 12.0) - 0.3 * kappa * v * v
        s_old = self.s
        self.s += v * DT
        self.x = min(max(self.x + vx * DT, -tr.half_width - 10.0), tr.half_width + 10.0)
        self.heading = math.atan2(vx, max(v, 1.0))
        self.speed = v
        self.traffic.step(DT, self.s, self.x, tr, self.np_random)
        blocked = self._collide()
        self._steer, self._braking = steer, brake > 0.1
        self.steps += 1
        self._frame = self._render_frame()
        truncated = self.steps >= self.cfg.max_steps
        return self._frame, float(self.s - s_old), False, truncated, self._info(blocked)

    def _controls(self, action: Any) -> tuple[float, float, float]:
        if self.cfg.continuous:
            box = self.action_space
            assert isinstance(box, spaces.Box)
            a = np.clip(np.asarray(action, np.float32).reshape(3), box.low, box.high)
        else:
            i = int(action)
            if not 0 <= i < len(DISCRETE_ACTIONS):
                raise ReverieError(f"bad action {action!r}: accepted 0..{len(DISCRETE_ACTIONS) - 1}")
            a = _DISCRETE[i]
        return float(a[0]), float(a[1]), float(a[2])

    def _collide(self) -> bool:
        """Bumping into a car slows the player to below that car's speed and separates the two."""
        t = self.traffic
        if len(t.s) == 0:
            return False
        lengths = t.length()
        ds = t.s - self.s
        reach = (lengths + PLAYER_LEN) / 2
        hit = (np.abs(t.lateral(self.track) - self.x) < (t.width() + PLAYER_W) / 2 * 0.9) & (
            np.abs(ds) < reach
        )
        for i in np.flatnonzero(hit):
            if ds[i] >= 0:  # the player ran into the back of car i
                self.s = float(t.s[i] - reach[i])
                self.speed = min(self.speed, float(t.speed[i]) * 0.6)
            else:  # car i ran into the player
                t.s[i] = self.s - reach[i]
                t.speed[i] = min(float(t.speed[i]), self.speed * 0.6)
        return bool(hit.any())

    def render(self) -> np.ndarray:
        return self._frame.copy()

    def _render_frame(self) -> np.ndarray:
        return self.renderer.render(self.s, self.x, self._steer, self._braking, self.traffic)

    # -- ground truth and captions ----------------------------------------------------------------
    def _scene(self) -> dict[str, Any]:
        tr, t = self.track, self.traffic
        ahead = t.s - self.s
        near = (ahead > 0) & (ahead < 80.0)
        same = near & (np.abs(t.lateral(tr) - self.x) < 2.0) & (ahead < 30.0)
        if same.any() or near.any():
            pick = same if same.any() else near
            i = int(np.flatnonzero(pick)[np.argmin(ahead[pick])])
            vehicle = f"{road.COLOR_NAMES[t.color[i]]} {road.VEHICLES[t.kind[i]][0]}"
            traffic = "close" if same.any() else "ahead"
        else:
            vehicle, traffic = None, "none"
        return {
            "time": self.time,
            "road": road.ROAD_KINDS[tr.section[tr.seg_at(self.s + 25.0)]],
            "traffic": traffic,
            "vehicle": vehicle,
            "roadside": road.ZONES[tr.zone[tr.seg_at(self.s + 20.0)]],
            "lanes": tr.lanes,
            "offroad": bool(abs(self.x) > tr.half_width),
        }

    def _info(self, blocked: bool) -> dict[str, Any]:
        scene = self._scene()
        key = tuple(scene.values())
        if key != self._caption_key:
            self._caption_key, self._caption = key, caption(scene, self.episode_seed)
        tr = self.track
        offroad = scene["offroad"]
        return {
            "pose": (float(self.s), float(self.x), float(self.heading)),
            "speed": float(self.speed),
            "lane": -1 if offroad else min(int((self.x + tr.half_width) // road.LANE_W), tr.lanes - 1),
            "offroad": offroad,
            "blocked": blocked,
            "caption": self._caption,
            "scene": scene,
        }
