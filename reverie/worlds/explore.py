"""Exploration policies that play like a person, not like per-frame noise.

A world model learns the dynamics it sees. Uniform random actions flip every frame, so the data
never shows a long walk down a corridor, a full turn or a car holding its lane. These policies
hold actions for heavy-tailed runs, keep momentum, pause, turn away when blocked, sometimes turn
round and go back, and draw a temperament per episode (cautious / explorer / jittery).

    policy = make_policy("explore", env, seed=0)
    obs, info = env.reset(seed=0); policy.reset(seed=0)
    act = policy(obs, info)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import gymnasium
import numpy as np

from reverie.errors import ReverieError
from reverie.worlds.action_spec import ActionSpec
from reverie.worlds.actions import SpecLike, action_spec
from reverie.worlds.explore_roles import Roles, lateral_offset


@dataclass(frozen=True)
class Temperament:
    """How a simulated player behaves for one episode."""

    name: str
    run_min: float = 3.0  # shortest run of one action (steps); Pareto scale
    run_alpha: float = 1.8  # Pareto tail index: lower = more very long runs
    run_max: int = 80
    pause_rate: float = 0.06  # chance a new run is a pause (noop)
    revisit_rate: float = 0.04  # chance a new run turns round to go back
    momentum: float = 0.5  # chance a new run keeps the previous run's forward motion
    turn_bias: float = 0.0  # -1 prefers left, +1 prefers right (drawn per episode)
    avoid_steps: tuple[int, int] = (4, 12)  # turning away after being blocked
    # Turning round: ~180 degrees in the Dungeon (6 degrees a step); unknown worlds just look round.
    revisit_steps: tuple[int, int] = (18, 34)
    ou_theta: float = 0.2  # continuous: pull of the stick towards its target per step
    ou_sigma: float = 0.08  # continuous: hand tremor, in half-ranges


TEMPERAMENTS: dict[str, Temperament] = {
    "cautious": Temperament(
        "cautious", run_min=3, run_alpha=2.2, pause_rate=0.18, revisit_rate=0.08, momentum=0.35, ou_theta=0.15
    ),
    "explorer": Temperament(
        "explorer", run_min=5, run_alpha=1.5, pause_rate=0.03, revisit_rate=0.03, momentum=0.7, ou_sigma=0.06
    ),
    "jittery": Temperament(
        "jittery",
        run_min=2,
        run_alpha=1.8,
        pause_rate=0.08,
        revisit_rate=0.05,
        momentum=0.2,
        avoid_steps=(2, 8),
        ou_theta=0.35,
        ou_sigma=0.12,
    ),
}


class Policy(Protocol):
    def reset(self, seed: int | None = None) -> None: ...
    def __call__(self, obs: Any, info: dict[str, Any]) -> Any: ...
    def describe(self) -> dict[str, Any]: ...


def run_lengths(actions: list[Any]) -> list[int]:
    """Lengths of runs of identical consecutive actions."""
    out: list[int] = []
    prev: Any = object()
    for a in actions:
        key = a if np.isscalar(a) else tuple(np.round(np.asarray(a, np.float32), 6).reshape(-1))
        if out and key == prev:
            out[-1] += 1
        else:
            out.append(1)
        prev = key
    return out


class _Recorder:
    """Shared bookkeeping so every policy can describe what it did."""

    name = "policy"

    def _start_stats(self) -> None:
        self._history: list[Any] = []
        self._targets: list[Any] = []
        self._events: Counter[str] = Counter()

    def _emit(self, action: Any) -> Any:
        self._history.append(action)
        return action

    def describe(self) -> dict[str, Any]:
        # A stick moves every step; what a player holds is its target, so box runs count targets.
        runs = run_lengths(self._targets if self._targets else self._history)
        discrete = bool(self._history) and np.isscalar(self._history[0])
        out: dict[str, Any] = {
            "policy": self.name,
            "steps": len(self._history),
            "runs": len(runs),
            "mean_run": float(np.mean(runs)) if runs else 0.0,
            "max_run": max(runs, default=0),
            "events": dict(self._events),
        }
        if discrete:
            out["action_counts"] = dict(sorted(Counter(int(a) for a in self._history).items()))
        return out


class RandomPolicy(_Recorder):
    """Uniform per step: the baseline for dtPSNR and a contrast for the explorer."""

    name = "random"

    def __init__(self, spec: SpecLike, seed: int | None = None) -> None:
        self.spec = ActionSpec.of(spec)
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self._start_stats()

    def __call__(self, obs: Any = None, info: dict[str, Any] | None = None) -> Any:
        if self.spec.is_discrete:
            return self._emit(int(self.rng.integers(self.spec.n)))
        if self.spec.is_box:
            low, high = np.asarray(self.spec.low, np.float32), np.asarray(self.spec.high, np.float32)
            return self._emit(self.rng.uniform(low, high).astype(np.float32))
        return None


class ReplayPolicy(_Recorder):
    """Replays recorded actions in order (pass act[1:] of an episode: act[0] is the null action)."""

    name = "replay"

    def __init__(self, actions: Any) -> None:
        self.actions = list(actions)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self.index = 0
        self._start_stats()

    def __call__(self, obs: Any = None, info: dict[str, Any] | None = None) -> Any:
        if self.index >= len(self.actions):
            raise IndexError(f"replay has only {len(self.actions)} actions")
        a = self.actions[self.index]
        self.index += 1
        return self._emit(a)


class ExplorePolicy(_Recorder):
    """Human-like exploration for any discrete or box spec; smarter when actions are named."""

    name = "explore"

    def __init__(self, spec: SpecLike, seed: int | None = None, temperament: str | None = None) -> None:
        spec = ActionSpec.of(spec)
        if not spec.has_actions:
            raise ReverieError(
                f"cannot explore a world with action spec {spec.kind!r}: accepted discrete, box"
            )
        self.spec = spec
        self.roles = Roles.from_spec(spec)
        self.fixed_temperament = temperament
        self.reset(seed)

    # ---- episode setup -------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        rng = self.rng
        base = TEMPERAMENTS[self.fixed_temperament or str(rng.choice(list(TEMPERAMENTS)))]
        # Two players of the same temperament still differ a little.
        self.t = replace(
            base,
            run_min=base.run_min * float(rng.uniform(0.8, 1.25)),
            pause_rate=base.pause_rate * float(rng.uniform(0.7, 1.3)),
            turn_bias=float(rng.uniform(-0.5, 0.5)),
        )
        self._start_stats()
        self._queue: list[tuple[str, Any, int]] = []  # (mode, action or target, steps)
        self._mode, self._current, self._left = "run", self.spec.null_action(), 0
        self._prev_obs: Any = None
        self._lanes = False
        self._steer_dir = 0.0
        self._still = 0
        if self.spec.is_box:
            self._x = np.asarray(self.spec.null_action(), np.float32)
            self._low = np.asarray(self.spec.low, np.float32)
            self._high = np.asarray(self.spec.high, np.float32)
            self._pedal = self._x == self._low
            self._rest = self._x.copy()
            self._dead = np.where(self._pedal, 0.08, 0.03) * (self._high - self._low)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["temperament"] = self.t.name
        out["params"] = asdict(self.t)
        return out

    # ---- helpers -------------------------------------------------------------------------
    def _duration(self, scale: float | None = None) -> int:
        """Heavy-tailed run length: discrete Pareto with this temperament's scale and tail."""
        u = float(self.rng.uniform(1e-9, 1.0))
        d = (scale or self.t.run_min) * u ** (-1.0 / self.t.run_alpha)
        return int(min(self.t.run_max, max(1, round(d))))

    def _turn_dir(self) -> int:
        return -1 if self.rng.uniform() < 0.5 - self.t.turn_bias / 2 else 1

    def _blocked(self, obs: Any, info: dict[str, Any]) -> bool:
        if info.get("blocked"):
            return True
        if obs is None or not self.roles.known or not self.roles.moving(self._current, self.spec):
            self._prev_obs = None
            return False
        # Third-party worlds do not report walls: a frame that stops changing while we walk is one.
        same = self._prev_obs is not None and np.array_equal(obs, self._prev_obs)
        self._prev_obs = np.array(obs, copy=True)
        self._still = self._still + 1 if same else 0
        return self._still >= 3

    # ---- the policy ----------------------------------------------------------------------
    def __call__(self, obs: Any = None, info: dict[str, Any] | None = None) -> Any:
        info = info or {}
        if self._blocked(obs, info) and self._mode != "avoid":
            self._events["blocked"] += 1
            self._still = 0
            self._queue = self._avoid_plan()
            self._left = 0
            if self.spec.is_box and (m := self.roles.axes.get("move")) is not None:
                self._x[m] *= 0.2  # a player who walks into a wall lets go of the stick at once
        offset = lateral_offset(info)
        if offset is not None:
            self._lanes = True  # a road: no turning round, lane changes come from ordinary steering
            self._keep_lane(offset)
        if self._left <= 0:
            self._next_run()
        self._left -= 1
        if self.spec.is_discrete:
            return self._emit(int(self._current))
        self._targets.append(np.asarray(self._current, np.float32))
        t = self.t
        noise = self.rng.normal(0.0, t.ou_sigma, self._x.shape) * (self._high - self._low) / 2
        noise[self._pedal & (self._current <= self._low)] *= 0.25  # a resting foot barely moves
        self._x = np.clip(self._x + t.ou_theta * (self._current - self._x) + noise, self._low, self._high)
        out = self._x.copy()
        # Dead zones, as on a real gamepad: a stick near its centre reads exactly centre, and a pedal
        # (an axis resting at its lower bound) near the floor reads fully released.
        at_rest = np.abs(out - self._rest) < self._dead
        out[at_rest] = self._rest[at_rest]
        return self._emit(out.astype(np.float32))

    def _keep_lane(self, offset: float) -> None:
        """Short closed-loop corrections towards the lane centre, like a driver's small wheel movements."""
        if self._mode == "steer":
            if abs(offset) < 0.1 or np.sign(offset) == self._steer_dir:
                self._left = 0  # centred again (or overshot): hand back to the run
            return
        if self._mode == "run" and abs(offset) > 0.3 and self.rng.uniform() < 0.5:
            self._events["lane_keep"] += 1
            self._steer_dir = -float(np.sign(offset))
            steer = self.roles.steer_plan(self.spec, self._steer_dir, self.rng)
            resume = [(self._mode, self._current, self._left)] if self._left > 0 else []
            self._queue = [("steer", steer, 10), *resume, *self._queue]
            self._left = 0

    def _avoid_plan(self) -> list[tuple[str, Any, int]]:
        d = self._turn_dir()
        lo, hi = self.t.avoid_steps
        plan = []
        back = self.roles.back_plan(self.spec, self.rng)
        if back is not None and self.rng.uniform() < 0.3:
            plan.append(("avoid", back, int(self.rng.integers(1, 4))))
        steps = int(self.rng.integers(lo, hi + 1))
        if self.spec.is_box:
            steps += 4  # the smoothed stick needs a few steps to swing over
        plan.append(("avoid", self.roles.turn_plan(self.spec, d, self.rng, walk=False), steps))
        # then walk away from the wall rather than pick a fresh random run beside it
        plan.append(("run", self.roles.forward_plan(self.spec, self.rng), self._duration()))
        return plan

    def _next_run(self) -> None:
        if self._queue:
            self._mode, self._current, self._left = self._queue.pop(0)
            return
        rng, t, roles = self.rng, self.t, self.roles
        r = rng.uniform()
        if r < t.pause_rate and roles.has_pause:
            self._events["pause"] += 1
            self._mode, self._current = "pause", self.spec.null_action()
            self._left = self._duration(t.run_min * 0.8)
            return
        if r < t.pause_rate + t.revisit_rate and roles.can_turn and not self._lanes:
            # Turn round and walk back the way we came: worlds get seen from both directions.
            self._events["revisit"] += 1
            steps = int(rng.integers(t.revisit_steps[0], t.revisit_steps[1] + 1))
            self._queue = [("run", roles.forward_plan(self.spec, rng), self._duration())]
            self._mode, self._current, self._left = (
                "turn",
                roles.turn_plan(self.spec, self._turn_dir(), rng),
                steps,
            )
            return
        # Momentum: a player who was walking tends to keep walking (maybe veering), not stop dead.
        keep = self._mode == "run" and roles.moving(self._current, self.spec) and rng.uniform() < t.momentum
        self._mode = "run"
        self._current = roles.sample(self.spec, rng, t.turn_bias, like=self._current if keep else None)
        self._left = self._duration()
        if roles.turning_on_the_spot(self._current, self.spec):
            self._left = min(self._left // 2 + 1, 16)  # nobody spins in place for long


def make_policy(name: str, env_or_spec: gymnasium.Env | SpecLike, seed: int | None = None) -> Policy:
    """A policy by name for an env or an action spec.

    explore: human-like (temperament drawn per episode from the seed); random: uniform per step
    (the dtPSNR baseline); cautious / explorer / jittery: explore with that temperament fixed.
    """
    spec = env_or_spec if isinstance(env_or_spec, dict | ActionSpec) else action_spec(env_or_spec)
    if name == "explore":
        return ExplorePolicy(spec, seed)
    if name == "random":
        return RandomPolicy(spec, seed)
    if name in TEMPERAMENTS:
        return ExplorePolicy(spec, seed, temperament=name)
    raise ReverieError(
        f"unknown policy {name!r}: accepted explore, random, {', '.join(TEMPERAMENTS)} "
        "(or ReplayPolicy(actions) in code)"
    )
