"""What each action does, read from its name, so exploration can walk forward and turn at walls.

Built-in worlds name their actions ("forward", "turn_left", "accelerate_right"); Atari, ViZDoom and
MiniWorld do too ("UPRIGHT", "MOVE_FORWARD+TURN_LEFT", "turn_left"). Unnamed actions ("a0", "x1")
get generic roles and the policy stays generic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reverie.worlds.action_spec import ActionSpec
from reverie.worlds.actions import SpecLike

_WORDS = re.compile(
    r"forward|backward|back|accelerate|throttle|gas|brake|reverse|strafe|steer|turn|look|yaw|"
    r"move|up|down|left|right|noop|none|idle"
)
_FWD, _BACK = (
    {"forward", "accelerate", "throttle", "gas", "up"},
    {"backward", "back", "brake", "reverse", "down"},
)
_NOOP = {"noop", "none", "idle", "nothing", "no_op"}


def _words(name: str) -> list[str]:
    return _WORDS.findall(name.lower())


def lateral_offset(info: dict[str, Any]) -> float | None:
    """Signed distance from the lane centre in lane widths (+ = right); None if the world has no lanes.

    A world may report it directly as info["lane_offset"]; for reverie/Drive-v0 it is worked out
    from pose (s, x metres right of the centre line, heading), lane and scene["lanes"].
    """
    v = info.get("lane_offset")
    if isinstance(v, int | float | np.floating) and np.isfinite(v):
        return float(v)
    pose, scene, lane = info.get("pose"), info.get("scene"), info.get("lane")
    if not (isinstance(pose, tuple | list) and len(pose) == 3 and isinstance(scene, dict)):
        return None
    if not (isinstance(lane, int) and isinstance(scene.get("lanes"), int)):
        return None
    try:
        from reverie.worlds.drive.road import LANE_W
    except ImportError:
        return None

    x = float(pose[1])
    half = scene["lanes"] * LANE_W / 2
    # Off the road (lane -1): head for the nearest edge lane rather than the middle of the field.
    centre = (lane + 0.5) * LANE_W - half if lane >= 0 else np.sign(x) * (half - LANE_W / 2)
    # No look-ahead from the heading: in Drive the heading is today's steering, gone once released.
    return float((x - centre) / LANE_W)


def _axis_role(w: set[str]) -> str | None:
    """Role of a box axis. A one-way button axis ("MOVE_LEFT", "TURN_RIGHT") is not a stick."""
    one_way = len(w & {"left", "right"}) == 1 or bool(w & {"back", "backward"})
    if w & {"brake", "reverse"}:
        return "brake"
    if w & {"strafe"} or ({"move", "left", "right"} <= w):
        return "strafe"
    if w & {"forward", "throttle", "gas", "accelerate"} or w == {"move"}:
        return None if one_way else "move"
    if w & {"turn", "steer", "yaw"}:
        return None if one_way else "turn"
    return None


@dataclass
class Roles:
    """Per-action (discrete) or per-axis (box) roles derived from the spec's names."""

    known: bool
    fwd: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n,) +1 forward, -1 back
    lat: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n,) -1 left, +1 right
    strafe: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    noop: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    axes: dict[str, int] = field(default_factory=dict)  # box: role -> axis index

    @classmethod
    def from_spec(cls, spec: SpecLike) -> Roles:
        spec = ActionSpec.of(spec)
        names = [str(n) for n in spec.names or ()]
        if spec.is_box:
            axes: dict[str, int] = {}
            for i, name in enumerate(names):
                role = _axis_role(set(_words(name)))
                if role and role not in axes:
                    axes[role] = i
            return cls(known=bool(axes), axes=axes)
        n = spec.n
        fwd, lat = np.zeros(n), np.zeros(n)
        strafe, noop = np.zeros(n, bool), np.zeros(n, bool)
        for i, name in enumerate(names[:n]):
            w = set(_words(name))
            fwd[i] = 1 if w & _FWD else -1 if w & _BACK else 0
            lat[i] = -1 if "left" in w else 1 if "right" in w else 0
            strafe[i] = "strafe" in w or ("move" in w and lat[i] != 0 and fwd[i] == 0)
            noop[i] = name.lower() in _NOOP
        known = bool(np.any(fwd != 0) or np.any(lat != 0))
        return cls(known=known, fwd=fwd, lat=lat, strafe=strafe, noop=noop)

    # ---- facts the policy asks about --------------------------------------------------------
    @property
    def has_pause(self) -> bool:
        return True if self.noop.size == 0 else bool(self.noop.any())

    @property
    def can_turn(self) -> bool:
        return bool(self.axes.get("turn") is not None or np.any((self.lat != 0) & ~self.strafe))

    def moving(self, current: Any, spec: ActionSpec) -> bool:
        if spec.is_discrete:
            return bool(self.fwd[int(current)] > 0)
        i = self.axes.get("move")
        return i is not None and float(np.asarray(current)[i]) > 0.2

    def turning_on_the_spot(self, current: Any, spec: ActionSpec) -> bool:
        if not spec.is_discrete or not self.known:
            return False
        i = int(current)
        return bool(self.fwd[i] == 0 and self.lat[i] != 0 and not self.strafe[i])

    # ---- discrete ---------------------------------------------------------------------------
    def _weights(self, bias: float) -> np.ndarray:
        if not self.known:
            w = np.ones(len(self.fwd))
        else:
            # Forward dominates, turning while moving next, standing turns, then the rest.
            w = np.where(self.fwd > 0, np.where(self.lat == 0, 8.0, 2.0), 0.0)
            w += np.where((self.fwd == 0) & (self.lat != 0), np.where(self.strafe, 0.7, 1.5), 0.0)
            w += np.where(self.fwd < 0, 0.4, 0.0) + np.where((self.fwd == 0) & (self.lat == 0), 0.8, 0.0)
            w *= np.where(self.lat < 0, 1 - bias, np.where(self.lat > 0, 1 + bias, 1.0))
        w = np.where(self.noop, 0.0, w)
        return w if w.sum() > 0 else np.ones(len(self.fwd))

    def _pick(self, rng: np.random.Generator, mask: np.ndarray, bias: float = 0.0) -> int | None:
        w = self._weights(bias) * mask
        if w.sum() <= 0:
            return None
        return int(rng.choice(len(w), p=w / w.sum()))

    # ---- plans: a discrete action, or a box target --------------------------------------------
    def sample(self, spec: ActionSpec, rng: np.random.Generator, bias: float, like: Any = None) -> Any:
        if spec.is_discrete:
            if like is not None and self.known:
                a = self._pick(rng, self.fwd == self.fwd[int(like)], bias)
                if a is not None:
                    return a
            return self._pick(rng, np.ones(len(self.fwd)), bias)
        low, high = np.asarray(spec.low, np.float32), np.asarray(spec.high, np.float32)
        target = np.asarray(spec.null_action(), np.float32).copy()
        for k in range(len(target)):
            if k not in self.axes.values() and rng.uniform() < 0.35:
                target[k] = rng.uniform(low[k], high[k])
        if (i := self.axes.get("move")) is not None:
            keep = like is not None and float(np.asarray(like)[i]) > 0
            target[i] = (
                np.asarray(like)[i]
                if keep
                else (
                    rng.uniform(0.4, 1.0) * high[i]
                    if rng.uniform() < 0.85
                    else rng.uniform(0.3, 0.6) * low[i]
                )
            )
        if (i := self.axes.get("turn")) is not None and rng.uniform() < 0.55:
            target[i] = rng.normal(bias * 0.4, 0.5)
        if (i := self.axes.get("strafe")) is not None and rng.uniform() < 0.3:
            target[i] = rng.normal(0.0, 0.4)
        if (i := self.axes.get("brake")) is not None and rng.uniform() < 0.08:
            target[i] = rng.uniform(0.3, 1.0) * high[i]
            if (m := self.axes.get("move")) is not None:
                target[m] = max(0.0, float(low[m]))
        return np.clip(target, low, high).astype(np.float32)

    def turn_plan(self, spec: ActionSpec, d: int, rng: np.random.Generator, walk: bool = True) -> Any:
        """Turn towards `d` (-1 left, +1 right); a box stick may keep walking slowly unless `walk` is off."""
        if spec.is_discrete:
            for mask in (
                (self.lat == d) & (self.fwd == 0) & ~self.strafe,
                (self.lat == d) & (self.fwd > 0),
                self.lat == d,
            ):
                a = self._pick(rng, mask.astype(float))
                if a is not None:
                    return a
            return self._pick(rng, np.ones(len(self.fwd)))  # unnamed actions: try something else
        target = self._box_null(spec)
        if (i := self.axes.get("turn")) is not None:
            target[i] = d * rng.uniform(0.6, 1.0)
            if (m := self.axes.get("move")) is not None and walk:
                target[m] = rng.uniform(0.0, 0.3) * spec.high[m]
            return self._clip(spec, target)
        return self._clip(spec, rng.uniform(spec.low, spec.high))

    def back_plan(self, spec: ActionSpec, rng: np.random.Generator) -> Any:
        if spec.is_discrete:
            return self._pick(rng, ((self.fwd < 0) & (self.lat == 0)).astype(float))
        target = self._box_null(spec)
        if (i := self.axes.get("brake")) is not None:
            target[i] = spec.high[i]
        elif (i := self.axes.get("move")) is not None and spec.low[i] < 0:
            target[i] = 0.5 * spec.low[i]
        else:
            return None
        return self._clip(spec, target)

    def forward_plan(self, spec: ActionSpec, rng: np.random.Generator) -> Any:
        if spec.is_discrete:
            a = self._pick(rng, ((self.fwd > 0) & (self.lat == 0)).astype(float))
            return a if a is not None else self.sample(spec, rng, 0.0)
        target = self._box_null(spec)
        if (i := self.axes.get("move")) is not None:
            target[i] = rng.uniform(0.5, 1.0) * spec.high[i]
            return self._clip(spec, target)
        return self.sample(spec, rng, 0.0)

    def steer_plan(self, spec: ActionSpec, d: float, rng: np.random.Generator) -> Any:
        """Steer towards `d` (-1 left, +1 right) while moving on: lane keeping."""
        if spec.is_discrete:
            a = self._pick(rng, ((self.lat == d) & (self.fwd > 0)).astype(float))
            return a if a is not None else self.turn_plan(spec, int(d), rng)
        target = self._box_null(spec)
        if (i := self.axes.get("turn")) is not None:
            target[i] = d * rng.uniform(0.3, 0.6)
        if (m := self.axes.get("move")) is not None:
            target[m] = rng.uniform(0.4, 0.8) * spec.high[m]
        return self._clip(spec, target)

    @staticmethod
    def _box_null(spec: ActionSpec) -> np.ndarray:
        return np.asarray(spec.null_action(), np.float32).copy()

    @staticmethod
    def _clip(spec: ActionSpec, v: Any) -> np.ndarray:
        return np.clip(np.asarray(v, np.float32), spec.low, spec.high).astype(np.float32)
