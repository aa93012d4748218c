"""The road of `reverie/Drive-v0`: a looping track of short segments, its roadside, and the traffic on it.

The track is a ring of `SEG`-metre segments. Each segment has a curvature (1/m, > 0 bends right), a road
height (hills), a roadside zone (trees, buildings, fields) and up to one roadside object per side. Curves
and zones come in sections, so the scene attributes a caption is written from change only at section
boundaries and stay put in between.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEG = 3.0  # metres per segment
LANE_W = 3.5  # metres per lane
TRACK_LEN = 9000.0  # metres; an episode of 1000 steps at top speed covers about 2.5 km
STRAIGHT, LEFT, RIGHT = 0, 1, 2
ROAD_KINDS = ("straight", "left curve", "right curve")
ZONES = ("trees", "buildings", "fields")

# Roadside object kinds (indices into sprites.PROPS).
PINE, ROUND_TREE, POLE, LAMP, BUILDING_A, BUILDING_B, BUILDING_C, SIGN_LEFT, SIGN_RIGHT, SIGN_INFO, BUSH = (
    range(11)
)
NONE = -1


@dataclass
class Track:
    curve: np.ndarray  # (N,) float64 curvature per segment, 1/m
    height: np.ndarray  # (N,) float64 road height at each segment's near boundary, m
    zone: np.ndarray  # (N,) int8 index into ZONES
    section: np.ndarray  # (N,) int8 STRAIGHT / LEFT / RIGHT
    heading: np.ndarray  # (N,) float64 world heading at each segment's near boundary, rad
    prop: np.ndarray  # (N, 2) int8 roadside object kind per side (left, right), NONE for none
    prop_off: np.ndarray  # (N, 2) float32 metres from the road edge outwards
    lanes: int

    @property
    def n(self) -> int:
        return len(self.curve)

    @property
    def length(self) -> float:
        return self.n * SEG

    @property
    def half_width(self) -> float:
        return self.lanes * LANE_W / 2

    def seg_at(self, s: float) -> int:
        return int(s // SEG) % self.n


def _sections(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Curvature and section kind per segment: straights and eased curves of random radius."""
    curve = np.zeros(n)
    section = np.zeros(n, np.int8)
    i = int(rng.integers(25, 50))  # start on a straight, so the first frames are calm
    kind = STRAIGHT
    while i < n:
        kind = STRAIGHT if kind != STRAIGHT else int(rng.choice([LEFT, RIGHT]))
        length = int(rng.integers(25, 90)) if kind == STRAIGHT else int(rng.integers(30, 90))
        length = min(length, n - i)
        if kind != STRAIGHT:
            radius = float(rng.uniform(90.0, 260.0))
            t = np.linspace(0.0, 1.0, length)
            ease = np.clip(np.minimum(t, 1 - t) * 4, 0, 1)  # ramp in and out over a quarter each
            ease = ease * ease * (3 - 2 * ease)
            curve[i : i + length] = (1 if kind == RIGHT else -1) * ease / radius
        section[i : i + length] = kind
        i += length
    return curve, section


def _zones(rng: np.random.Generator, n: int) -> np.ndarray:
    zone = np.zeros(n, np.int8)
    i, z = 0, int(rng.integers(len(ZONES)))
    while i < n:
        length = int(rng.integers(120, 320))
        zone[i : i + length] = z
        z = (z + int(rng.integers(1, len(ZONES)))) % len(ZONES)
        i += length
    return zone


def _hills(rng: np.random.Generator, n: int, amplitude: float) -> np.ndarray:
    """Smooth periodic heights: a few sines whose periods divide the track, so the ring closes."""
    s = np.arange(n) * SEG
    h = np.zeros(n)
    if amplitude <= 0:
        return h
    length = n * SEG
    for _ in range(3):
        k = int(rng.integers(int(length / 900), int(length / 300)))
        h += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * k * s / length + rng.uniform(0, 2 * np.pi))
    return h * (amplitude / max(np.abs(h).max(), 1e-6))


def _props(rng: np.random.Generator, zone: np.ndarray, section: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(zone)
    prop = np.full((n, 2), NONE, np.int8)
    off = np.zeros((n, 2), np.float32)
    u = rng.random((n, 2))
    jitter = rng.random((n, 2)).astype(np.float32)
    idx = np.repeat(np.arange(n)[:, None], 2, axis=1)  # (n, 2) segment index per side
    zz = np.repeat(zone[:, None], 2, axis=1)
    trees, town, fields = zz == 0, zz == 1, zz == 2
    # Forest: a tree every few segments, pines and round trees mixed, at varying distance.
    m = trees & (idx % 4 == 0) & (u < 0.85)
    prop[m] = np.where(jitter[m] < 0.55, PINE, ROUND_TREE)
    off[m] = 2.0 + 9.0 * u[m]
    # Town: a row of buildings set back from the road, street lamps at the kerb.
    m = town & (idx % 6 == 0)
    prop[m] = BUILDING_A + (jitter[m] * 3).astype(np.int8)
    off[m] = 3.0 + 3.0 * u[m]
    m = town & (idx % 6 == 3)
    prop[m] = LAMP
    off[m] = 0.8
    # Fields: power poles along one side, a bush now and then.
    m = fields & (idx % 12 == 0)
    m[:, 0] = False
    prop[m] = POLE
    off[m] = 3.0
    m = fields & (idx % 5 == 2) & (u < 0.3)
    prop[m] = BUSH
    off[m] = 3.0 + 12.0 * jitter[m]
    # A chevron sign on the outside of the road a little before each curve begins.
    starts = np.flatnonzero((section[1:] != section[:-1]) & (section[1:] != STRAIGHT)) + 1
    for i in starts:
        side, kind = (0, SIGN_RIGHT) if section[i] == RIGHT else (1, SIGN_LEFT)
        for j in (i - 8, i - 2, i + 4):
            prop[j % n, side], off[j % n, side] = kind, 1.0
    # An information board now and then on the right.
    for i in np.flatnonzero((idx[:, 0] % 97 == 50) & (section == STRAIGHT)):
        prop[i, 1], off[i, 1] = SIGN_INFO, 1.5
    return prop, off


def make_track(rng: np.random.Generator, lanes: int, hill_amplitude: float) -> Track:
    n = int(TRACK_LEN / SEG)
    curve, section = _sections(rng, n)
    zone = _zones(rng, n)
    height = _hills(rng, n, hill_amplitude)
    heading = np.concatenate([[0.0], np.cumsum(curve[:-1] * SEG)])
    prop, off = _props(rng, zone, section)
    return Track(curve, height, zone, section, heading, prop, off, lanes)


def lane_center(track: Track, lane: int | np.ndarray) -> float | np.ndarray:
    """Lateral offset (m, + is right) of a lane's centre; lane 0 is the leftmost."""
    return (np.asarray(lane) + 0.5) * LANE_W - track.half_width


# Vehicle kinds: name, width (m), height (m), length (m).
VEHICLES = (("car", 1.8, 1.4, 4.2), ("van", 2.0, 2.3, 5.0), ("truck", 2.5, 3.6, 8.0))
# Traffic colours: chosen to stay distinct from one another and from the player's teal car at 64x64.
COLORS = {
    "red": (200, 30, 30),
    "blue": (40, 70, 210),
    "yellow": (235, 200, 30),
    "white": (230, 230, 230),
    "orange": (240, 120, 20),
    "purple": (130, 50, 170),
    "black": (35, 35, 40),
}
COLOR_NAMES = tuple(COLORS)
TRAFFIC_WINDOW = (-120.0, 450.0)  # cars live in this range of distances from the player


@dataclass
class Traffic:
    """Other vehicles as parallel arrays; they keep their lanes and follow the car ahead."""

    s: np.ndarray  # (M,) distance along the track, m (same unwrapped frame as the player)
    lane: np.ndarray  # (M,) int
    speed: np.ndarray  # (M,) m/s
    cruise: np.ndarray  # (M,) preferred speed, m/s
    kind: np.ndarray  # (M,) index into VEHICLES
    color: np.ndarray  # (M,) index into COLOR_NAMES
    braking: np.ndarray  # (M,) bool, brake lights on

    @classmethod
    def spawn(cls, rng: np.random.Generator, count: int, lanes: int, player_s: float) -> Traffic:
        _lo, hi = TRAFFIC_WINDOW
        s = player_s + np.sort(rng.uniform(25.0, hi, count))
        kind = rng.choice(len(VEHICLES), count, p=[0.6, 0.25, 0.15])
        cruise = rng.uniform(14.0, 30.0, count) - 3.0 * (kind == 2)
        return cls(
            s=s,
            lane=rng.integers(0, lanes, count),
            speed=cruise.copy(),
            cruise=cruise,
            kind=kind,
            color=rng.integers(0, len(COLOR_NAMES), count),
            braking=np.zeros(count, bool),
        )

    def lateral(self, track: Track) -> np.ndarray:
        return np.asarray(lane_center(track, self.lane), np.float64)

    def length(self) -> np.ndarray:
        return np.array([VEHICLES[k][3] for k in self.kind])

    def width(self) -> np.ndarray:
        return np.array([VEHICLES[k][1] for k in self.kind])

    def step(
        self, dt: float, player_s: float, player_x: float, track: Track, rng: np.random.Generator
    ) -> None:
        """Car following per lane (the player counts as a car in the lanes it overlaps), then recycling."""
        m = len(self.s)
        if m == 0:
            return
        x = self.lateral(track)
        lengths = self.length()
        # Gap to the nearest thing ahead in the same lane: other cars, or the player's car.
        ahead = self.s[None, :] - self.s[:, None]  # (M, M) distance from car i to car j
        same = (self.lane[None, :] == self.lane[:, None]) & (ahead > 0)
        gap = np.where(same, ahead - lengths[None, :] / 2 - lengths[:, None] / 2, np.inf).min(axis=1)
        lead = np.where(same, ahead, np.inf).argmin(axis=1)
        lead_speed = self.speed[lead]
        to_player = player_s - self.s
        in_lane = np.abs(x - player_x) < 2.0
        p_gap = np.where(in_lane & (to_player > 0), to_player - 2.1 - lengths / 2, np.inf)
        closer = p_gap < gap
        gap = np.where(closer, p_gap, gap)
        lead_speed = np.where(closer, 0.0, lead_speed)  # the player may stop dead: keep a margin
        want = np.where(gap < 30.0, np.minimum(self.cruise, lead_speed + (gap - 10.0) * 0.4), self.cruise)
        want = np.maximum(want, 0.0)
        accel = np.clip(want - self.speed, -8.0 * dt, 2.0 * dt)
        self.braking = accel < -0.5 * dt
        self.speed = np.maximum(self.speed + accel, 0.0)
        self.s = self.s + self.speed * dt
        # Cars that fell far behind reappear far ahead (in the fog), cars that ran away reappear behind.
        lo, hi = TRAFFIC_WINDOW
        rel = self.s - player_s
        behind, gone = rel < lo, rel > hi + 50.0
        if behind.any() or gone.any():
            for i in np.flatnonzero(behind | gone):
                self.s[i] = player_s + (hi - rng.uniform(0, 40.0) if behind[i] else lo + rng.uniform(0, 20.0))
                self.lane[i] = rng.integers(0, track.lanes)
                self.speed[i] = self.cruise[i]
