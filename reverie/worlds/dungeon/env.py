"""`reverie/Dungeon-v0`: a first-person procedural dungeon, ray-cast in NumPy.

    env = gymnasium.make("reverie/Dungeon-v0", render_mode="rgb_array", width=64, height=64)
    obs, info = env.reset(seed=0)   # info: pose, room, blocked, caption, scene

Each seed builds rooms and corridors with their own wall material and colour, floor, ceiling and
light (bright, dim, flickering lamps), pillars, lamps and items as billboards, doorways with coloured
frames, and distance fog. The caption describes the room or corridor the player stands in; it changes
only when the player enters another one, and its wording is drawn from (episode seed, region).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from reverie.errors import ReverieError
from reverie.sizes import parse_size
from reverie.worlds.captions import Phrasebook
from reverie.worlds.dungeon.bake import bake
from reverie.worlds.dungeon.map import DungeonMap, generate
from reverie.worlds.dungeon.render import RenderConfig, Renderer
from reverie.worlds.dungeon.sprites import make_sprites

ACTION_NAMES = [
    "noop", "forward", "back", "turn_left", "turn_right",
    "strafe_left", "strafe_right", "forward_left", "forward_right",
]  # fmt: skip
# (move, strafe, turn) for each discrete action; turn > 0 turns right.
ACTION_TABLE = np.array(
    [[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 0, -1], [0, 0, 1], [0, -1, 0], [0, 1, 0], [1, 0, -1], [1, 0, 1]],
    dtype=np.float32,
)
MOVE_SPEED = 0.12  # cells per step: about 3.6 cells/s at 30 FPS
BACK_SPEED = 0.08
STRAFE_SPEED = 0.09
TURN_RATE = math.radians(6.0)  # per discrete step: 180 degrees/s at 30 FPS
MAX_TURN_RATE = math.radians(8.0)  # continuous stick at full deflection
PLAYER_RADIUS = 0.2

PHRASES = Phrasebook(
    templates=(
        "a {light} {color} {material} {kind}[ with {objects}]",
        "a {size} {kind} with {color} {material} walls[ and {objects}], {light}",
        "{light} {kind} with {color} {material} walls[ and {objects}]",
        "inside a {size} {color} {material} {kind}, {light}[, with {objects}]",
        "a {color} {kind} of {material}, {light}[, {objects} around]",
        "{color} {material} walls in a {light} {kind}[ with {objects}]",
        "you stand in a {light} {kind}; the walls are {color} {material}[ and there are {objects}]",
    ),
    words={
        "light": {
            "bright": ("bright", "brightly lit", "well-lit", "light-filled"),
            "dim": ("dim", "dimly lit", "gloomy", "dark"),
            "flickering": ("flickering", "flicker-lit", "unsteadily lit"),
        },
        "material": {
            "stone": ("stone", "rough stone", "stone-block"),
            "brick": ("brick", "bricked"),
            "wood": ("wooden", "wood-panelled", "timber"),
            "metal": ("metal", "iron-plated", "riveted metal"),
            "moss": ("mossy stone", "moss-covered stone"),
        },
        "kind": {"room": ("room", "chamber"), "corridor": ("corridor", "passage", "hallway")},
        "objects": {
            "pillars": ("pillars", "stone pillars", "columns"),
            "lamps": ("lamps", "standing lamps", "lanterns"),
            "barrels": ("barrels", "wooden barrels"),
            "crates": ("crates", "wooden crates"),
            "chests": ("chests", "treasure chests"),
        },
        "size": {
            "small": ("small", "cramped"),
            "large": ("large", "wide", "spacious"),
            "narrow": ("narrow",),
        },
    },
)


class DungeonEnv(gym.Env[np.ndarray, Any]):
    """First-person dungeon crawler; the observation is the rendered frame (H, W, 3) uint8."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}  # noqa: RUF012

    def __init__(
        self,
        render_mode: str | None = "rgb_array",
        width: int = 64,
        height: int = 64,
        continuous: bool = False,
        max_steps: int = 1000,
        render_config: RenderConfig | None = None,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ReverieError(f"render_mode {render_mode!r} is not supported; accepted: 'rgb_array'")
        parse_size((width, height))  # the one frame-size rule (reverie.sizes)
        self.render_mode = render_mode
        self.width, self.height = int(width), int(height)
        self.continuous = continuous
        self.max_steps = int(max_steps)
        self.render_config = render_config or RenderConfig()
        self.observation_space = spaces.Box(0, 255, (self.height, self.width, 3), np.uint8)
        if continuous:
            self.action_names = ["move", "strafe", "turn"]
            self.action_space: spaces.Space[Any] = spaces.Box(-1.0, 1.0, (3,), np.float32)
        else:
            self.action_names = list(ACTION_NAMES)
            self.action_space = spaces.Discrete(len(ACTION_NAMES))
        self.map: DungeonMap | None = None
        self._renderer: Renderer | None = None
        self._frame = np.zeros((self.height, self.width, 3), np.uint8)

    # ---- episode -------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.episode_seed = int(self.np_random.integers(2**31 - 1))
        self.map = generate(self.episode_seed)
        self._renderer = Renderer(
            self.map, bake(self.map, self.episode_seed), make_sprites(self.episode_seed),
            self.width, self.height, self.render_config,
        )  # fmt: skip
        self.x, self.y, self.angle = self.map.start
        self.steps = 0
        self._captions: dict[int, tuple[str, dict[str, Any]]] = {}
        self._flicker_phase = np.random.default_rng([self.episode_seed, 3]).uniform(0, 2 * np.pi, 3)
        self._frame = self._draw()
        return self._frame, self._info(blocked=False)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        assert self.map is not None, "call reset() first"
        if self.continuous:
            move, strafe, turn = np.clip(np.asarray(action, np.float32).reshape(3), -1.0, 1.0)
            turn_rate = MAX_TURN_RATE
        else:
            move, strafe, turn = ACTION_TABLE[int(action)]
            turn_rate = TURN_RATE
        self.angle = (self.angle + float(turn) * turn_rate + math.pi) % (2 * math.pi) - math.pi
        speed = MOVE_SPEED if move >= 0 else BACK_SPEED
        ca, sa = math.cos(self.angle), math.sin(self.angle)
        # Strafe right is the camera's right vector (-sin, cos) (y grows down on the map).
        mx = float(move) * speed * ca - float(strafe) * STRAFE_SPEED * sa
        my = float(move) * speed * sa + float(strafe) * STRAFE_SPEED * ca
        blocked = False
        if mx != 0.0:
            if self._free(self.x + mx, self.y):
                self.x += mx
            else:
                blocked = True
        if my != 0.0:
            if self._free(self.x, self.y + my):
                self.y += my
            else:
                blocked = True
        self.steps += 1
        self._frame = self._draw()
        truncated = self.steps >= self.max_steps
        return self._frame, 0.0, False, truncated, self._info(blocked)

    def render(self) -> np.ndarray | None:
        return self._frame if self.render_mode == "rgb_array" else None

    # ---- helpers -------------------------------------------------------------------------------
    def _free(self, x: float, y: float) -> bool:
        """The player's square of side 2*radius touches no wall and no prop."""
        assert self.map is not None
        r, solid, n = PLAYER_RADIUS, self.map.solid, self.map.solid.shape[0]
        for cx in (int(x - r), int(x + r)):
            for cy in (int(y - r), int(y + r)):
                if not (0 <= cx < n and 0 <= cy < n) or solid[cy, cx]:
                    return False
        return all((p.x - x) ** 2 + (p.y - y) ** 2 >= (p.radius + r) ** 2 for p in self.map.props)

    def _flicker(self) -> float:
        """Lamp flicker signal in about [-1, 0.35]: a wobble plus short deterministic drop-outs."""
        t, ph = float(self.steps), self._flicker_phase
        wobble = 0.2 * math.sin(0.9 * t + ph[0]) + 0.15 * math.sin(2.3 * t + ph[1])
        dip = math.sin(0.31 * t + ph[2]) * math.sin(0.13 * t)
        return wobble - (0.8 if dip > 0.75 else 0.0)

    def _draw(self) -> np.ndarray:
        assert self._renderer is not None
        return self._renderer.render(self.x, self.y, self.angle, self._flicker())

    def region_at(self, x: float, y: float) -> int:
        assert self.map is not None
        return int(self.map.region[int(y), int(x)])

    def scene(self, region: int) -> dict[str, Any]:
        """The attributes of a region, as written into info["scene"]."""
        assert self.map is not None
        st = self.map.styles[region]
        return {
            "kind": st.kind, "material": st.material, "color": st.color, "light": st.light,
            "objects": list(st.objects), "size": st.size, "floor": st.floor, "ceiling": st.ceiling,
            "door": st.door,
        }  # fmt: skip

    def _caption(self, region: int) -> tuple[str, dict[str, Any]]:
        if region not in self._captions:
            scene = self.scene(region)
            rng = np.random.default_rng([self.episode_seed, region + 1])
            self._captions[region] = (PHRASES.compose(scene, rng), scene)
        return self._captions[region]

    def _info(self, blocked: bool) -> dict[str, Any]:
        assert self.map is not None
        region = self.region_at(self.x, self.y)
        region = max(region, 0)  # never negative: _free keeps the player out of wall cells
        caption, scene = self._caption(region)
        room = region if region < self.map.n_rooms else -1
        return {
            "pose": (float(self.x), float(self.y), float(self.angle)),
            "room": room, "region": region, "blocked": blocked,
            "caption": caption, "scene": dict(scene, objects=list(scene["objects"])),
        }  # fmt: skip
