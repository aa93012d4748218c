"""Seeded dungeon layouts: rectangular rooms joined by corridors, per-region styles and props.

The map is a square grid of cells (x = column, y = row, y grows "down" on the map). Every open cell
belongs to a region: rooms are 0..n_rooms-1, each corridor is n_rooms + k. A wall face takes the look
of the open cell it is seen from, so one wall can be brick on the room side and stone in the corridor.
Doorway cells (where a corridor pierces a room's wall ring) show door-frame jambs.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

MATERIALS = ("stone", "brick", "wood", "metal", "moss")
WALL_COLORS = ("red", "blue", "green", "grey", "brown", "yellow", "purple", "white")
LIGHTS = ("bright", "dim", "flickering")
FLOORS = ("flagstone", "planks", "dirt")
CEILINGS = ("beams", "plaster", "stone")
DOOR_COLORS = ("brown", "red", "blue", "green", "yellow")
ITEMS = ("barrels", "crates", "chests")


@dataclass(frozen=True)
class Style:
    kind: str  # "room" | "corridor"
    material: str
    color: str
    light: str
    floor: str
    ceiling: str
    door: str
    size: str
    objects: tuple[str, ...]


@dataclass(frozen=True)
class Prop:
    x: float
    y: float
    kind: str  # "pillar" | "lamp" | "barrel" | "crate" | "chest"
    region: int
    radius: float  # collision radius in cells


@dataclass(frozen=True)
class Room:
    x0: int
    y0: int
    w: int
    h: int

    @property
    def center(self) -> tuple[float, float]:
        return self.x0 + self.w / 2, self.y0 + self.h / 2


@dataclass
class DungeonMap:
    solid: np.ndarray  # (N, N) bool, True = wall
    region: np.ndarray  # (N, N) int, -1 in walls
    doorway: np.ndarray  # (N, N) bool
    rooms: list[Room]
    styles: list[Style]  # one per region
    props: list[Prop]
    start: tuple[float, float, float]  # x, y, angle

    @property
    def n_rooms(self) -> int:
        return len(self.rooms)


def _place_rooms(n: int, rng: np.random.Generator) -> list[Room]:
    rooms: list[Room] = []
    for _ in range(80):
        if len(rooms) >= 7:
            break
        w, h = int(rng.integers(3, 9)), int(rng.integers(3, 9))
        x0, y0 = int(rng.integers(2, n - 2 - w)), int(rng.integers(2, n - 2 - h))
        # Keep a gap of 3 cells (two walls and a corridor) between rooms.
        if all(
            x0 + w + 3 <= r.x0 or r.x0 + r.w + 3 <= x0 or y0 + h + 3 <= r.y0 or r.y0 + r.h + 3 <= y0
            for r in rooms
        ):
            rooms.append(Room(x0, y0, w, h))
    return rooms


def _edges(rooms: list[Room], rng: np.random.Generator) -> list[tuple[int, int]]:
    """Minimum spanning tree over room centres plus one or two loops."""
    c = np.array([r.center for r in rooms])
    d = np.abs(c[:, None] - c[None]).sum(-1)
    inside, edges = {0}, []
    while len(inside) < len(rooms):
        best = min((d[i, j], i, j) for i in inside for j in range(len(rooms)) if j not in inside)
        edges.append((best[1], best[2]))
        inside.add(best[2])
    for _ in range(int(rng.integers(1, 3))):
        i, j = (int(v) for v in rng.choice(len(rooms), 2, replace=False))
        if (i, j) not in edges and (j, i) not in edges:
            edges.append((i, j))
    return edges


def _door_cell(room: Room, toward: tuple[float, float], rng: np.random.Generator) -> tuple[int, int]:
    cx, cy = room.center
    dx, dy = toward[0] - cx, toward[1] - cy
    if abs(dx) * room.h > abs(dy) * room.w:
        x = room.x0 + room.w if dx > 0 else room.x0 - 1
        return x, room.y0 + int(rng.integers(room.h))
    y = room.y0 + room.h if dy > 0 else room.y0 - 1
    return room.x0 + int(rng.integers(room.w)), y


def _carve_path(
    blocked: np.ndarray, carved: np.ndarray, a: tuple[int, int], b: tuple[int, int]
) -> list[tuple[int, int]]:
    """Cheapest 4-connected path a -> b; turns cost extra (straight corridors), old corridors are cheap."""
    n = blocked.shape[0]
    moves = ((1, 0), (-1, 0), (0, 1), (0, -1))
    start = (0.0, a[0], a[1], -1)
    best: dict[tuple[int, int, int], float] = {}
    prev: dict[tuple[int, int, int], tuple[int, int, int] | None] = {(a[0], a[1], -1): None}
    heap = [start]
    while heap:
        cost, x, y, d = heapq.heappop(heap)
        if (x, y) == b:
            path, key = [], (x, y, d)
            while key is not None:
                path.append((key[0], key[1]))
                key = prev[key]  # type: ignore[assignment]
            return path[::-1]
        for k, (mx, my) in enumerate(moves):
            nx, ny = x + mx, y + my
            if not (1 <= nx < n - 1 and 1 <= ny < n - 1) or (blocked[ny, nx] and (nx, ny) != b):
                continue
            step = (0.4 if carved[ny, nx] else 1.0) + (0.0 if d in (-1, k) else 1.5)
            key = (nx, ny, k)
            if cost + step < best.get(key, np.inf):
                best[key] = cost + step
                prev[key] = (x, y, d)
                heapq.heappush(heap, (cost + step, nx, ny, k))
    return []


def _style(kind: str, size: str, rng: np.random.Generator, used: set[tuple[str, str]]) -> Style:
    for _ in range(20):  # neighbouring rooms should look different
        material = str(rng.choice(MATERIALS if kind == "room" else ("stone", "brick", "moss", "wood")))
        color = str(rng.choice(WALL_COLORS))
        if (material, color) not in used:
            break
    used.add((material, color))
    light = str(rng.choice(LIGHTS, p=(0.4, 0.35, 0.25) if kind == "room" else (0.35, 0.5, 0.15)))
    floor = str(rng.choice(FLOORS))
    ceiling = str(rng.choice(CEILINGS))
    return Style(kind, material, color, light, floor, ceiling, str(rng.choice(DOOR_COLORS)), size, ())


def _room_props(
    room: Room, rid: int, style: Style, doorway: np.ndarray, rng: np.random.Generator
) -> list[Prop]:
    props: list[Prop] = []
    x1, y1 = room.x0 + room.w - 1, room.y0 + room.h - 1
    if room.w >= 5 and room.h >= 5 and rng.random() < 0.6:
        for px in (room.x0 + 1, x1 - 1):
            for py in (room.y0 + 1, y1 - 1):
                props.append(Prop(px + 0.5, py + 0.5, "pillar", rid, 0.3))
    # Edge cells next to a doorway stay free so the way in is never blocked.
    edge = []
    for x in range(room.x0, x1 + 1):
        for y in range(room.y0, y1 + 1):
            if x in (room.x0, x1) or y in (room.y0, y1):
                near_door = doorway[y - 1 : y + 2, x - 1 : x + 2].any()
                taken = any(int(p.x) == x and int(p.y) == y for p in props)
                if not near_door and not taken:
                    edge.append((x, y))
    order = rng.permutation(len(edge))
    n_lamps = {"bright": 3, "dim": 1, "flickering": 2}[style.light] + int(rng.integers(0, 2))
    kinds = ["lamp"] * n_lamps
    if rng.random() < 0.7:
        item = str(rng.choice(ITEMS))[:-1]  # "barrels" -> "barrel"
        kinds += [item] * int(rng.integers(1, 3))
    for kind, i in zip(kinds, order):
        x, y = edge[i]
        # Push the prop toward the nearest wall so the middle of the room stays walkable.
        ox = -0.2 if x == room.x0 else (0.2 if x == x1 else 0.0)
        oy = -0.2 if y == room.y0 else (0.2 if y == y1 else 0.0)
        props.append(Prop(x + 0.5 + ox, y + 0.5 + oy, kind, rid, 0.22))
    return props


def generate(seed: int, n: int = 32) -> DungeonMap:
    """A connected dungeon for `seed`; the player starts in room 0."""
    rng = np.random.default_rng(seed)
    rooms = _place_rooms(n, rng)
    region = np.full((n, n), -1, dtype=np.int32)
    blocked = np.zeros((n, n), dtype=bool)
    for i, r in enumerate(rooms):
        region[r.y0 : r.y0 + r.h, r.x0 : r.x0 + r.w] = i
        blocked[r.y0 - 1 : r.y0 + r.h + 1, r.x0 - 1 : r.x0 + r.w + 1] = True
    carved = np.zeros((n, n), dtype=bool)
    doorway = np.zeros((n, n), dtype=bool)
    n_corr = 0
    for i, j in _edges(rooms, rng):
        a = _door_cell(rooms[i], rooms[j].center, rng)
        b = _door_cell(rooms[j], rooms[i].center, rng)
        blocked[a[1], a[0]] = False
        path = _carve_path(blocked, carved, a, b)
        blocked[a[1], a[0]] = True
        if not path:
            continue
        cid = len(rooms) + n_corr
        n_corr += 1
        for x, y in path:
            if region[y, x] < 0:
                region[y, x] = cid
            carved[y, x] = True
        doorway[a[1], a[0]] = doorway[b[1], b[0]] = True
    # Corridors that only re-use cells of earlier ones get no cells; renumber to keep ids dense.
    ids = sorted({int(v) for v in np.unique(region) if v >= len(rooms)})
    remap = {old: len(rooms) + k for k, old in enumerate(ids)}
    for old, new in remap.items():
        region[region == old] = new
    used: set[tuple[str, str]] = set()
    styles = []
    for r in rooms:
        area = r.w * r.h
        size = "small" if area <= 16 else ("large" if area >= 36 else "")
        styles.append(_style("room", size, rng, used))
    styles += [_style("corridor", "narrow", rng, used) for _ in ids]
    props: list[Prop] = []
    for i, r in enumerate(rooms):
        room_props = _room_props(r, i, styles[i], doorway, rng)
        props += room_props
        names = {
            "pillar": "pillars",
            "lamp": "lamps",
            "barrel": "barrels",
            "crate": "crates",
            "chest": "chests",
        }
        objects = tuple(sorted({names[p.kind] for p in room_props}))
        s = styles[i]
        styles[i] = Style(s.kind, s.material, s.color, s.light, s.floor, s.ceiling, s.door, s.size, objects)
    r0 = rooms[0]
    start = (r0.x0 + r0.w / 2, r0.y0 + r0.h / 2, float(rng.uniform(-np.pi, np.pi)))
    return DungeonMap(region < 0, region, doorway, rooms, styles, props, start)
