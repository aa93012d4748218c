"""The normalised action representation that models and policies understand.

Every world is seen through one of three JSON-able specs (recorded with the data):
    {"type": "discrete", "n": 9, "names": [...]}
    {"type": "box", "shape": [3], "low": [...], "high": [...], "names": [...]}
    {"type": "none"}                                   (plain video)

Exotic Gymnasium spaces are mapped onto these by `ActionMapper` (and the `NormalizedActions`
wrapper): MultiBinary / MultiDiscrete become a Discrete set of useful button combinations, Dict /
Tuple are flattened, and unbounded Boxes (ViZDoom's delta buttons) become [-1, 1] with a scale.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from reverie.errors import ReverieError
from reverie.worlds.action_spec import ActionSpec

SpecLike = ActionSpec | dict[str, Any]  # the typed spec, or its JSON form
NONE_SPEC: dict[str, Any] = {"type": "none"}

# Button sets larger than this are not expanded into every combination (2^19 for ViZDoom's full
# game); we keep noop, single buttons and the pairs a player actually presses together.
MAX_COMBOS = 32
# An unbounded Box axis is exposed as [-1, 1] times this (ViZDoom turn deltas are in degrees).
UNBOUNDED_SCALE = 10.0
_BIG = 1e6

_ACT_WORDS = ("attack", "fire", "use", "jump", "speed", "crouch")


def _clean(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_") or "noop"


class _Leaf:
    """One Gymnasium space seen as (a) a list of discrete options and (b) a vector of [low, high] axes."""

    def __init__(self, space: spaces.Space, names: list[str] | None, prefix: str = "") -> None:
        self.space = space
        self.options: list[Any]  # native actions, index 0 is the null action
        self.option_names: list[str]
        self.axis_names: list[str]
        self.low: np.ndarray
        self.high: np.ndarray
        self.scale: np.ndarray  # native = axis * scale for unbounded boxes
        if isinstance(space, spaces.Discrete):
            n = int(space.n)
            self.option_names = [_clean(x) for x in names] if names and len(names) == n else []
            if not self.option_names:
                self.option_names = [f"{prefix}a{i}" for i in range(n)]
            self.options = [int(space.start) + i for i in range(n)]
            self.axis_names = self.option_names[1:]
            self.low, self.high = -np.ones(n - 1, np.float32), np.ones(n - 1, np.float32)
        elif isinstance(space, spaces.MultiBinary) or (
            isinstance(space, spaces.MultiDiscrete) and np.all(np.asarray(space.nvec) == 2)
        ):
            k = int(np.prod(space.shape))
            buttons = [_clean(x) for x in names] if names and len(names) == k else []
            buttons = buttons or [f"{prefix}b{i}" for i in range(k)]
            combos = _button_combos(buttons)
            self.options = [np.asarray(c, dtype=space.dtype).reshape(space.shape) for c in combos]
            self.option_names = ["+".join(b for b, on in zip(buttons, c) if on) or "noop" for c in combos]
            self.axis_names = buttons  # one axis per button, pressed when > 0
            self.low, self.high = -np.ones(k, np.float32), np.ones(k, np.float32)
        elif isinstance(space, spaces.MultiDiscrete):
            nvec = np.asarray(space.nvec).reshape(-1)
            dims = [f"{prefix}d{i}" for i in range(len(nvec))]
            if int(np.prod(nvec)) <= MAX_COMBOS:
                combos = list(itertools.product(*[range(int(v)) for v in nvec]))
            else:  # one component away from zero at a time
                combos = [tuple([0] * len(nvec))]
                for i, v in enumerate(nvec):
                    combos += [tuple(j if d == i else 0 for d in range(len(nvec))) for j in range(1, int(v))]
            self.options = [np.asarray(c, dtype=space.dtype).reshape(space.shape) for c in combos]
            self.option_names = ["+".join(f"{d}={x}" for d, x in zip(dims, c) if x) or "noop" for c in combos]
            self.axis_names = dims  # each axis quantised into nvec bins
            self.low, self.high = -np.ones(len(nvec), np.float32), np.ones(len(nvec), np.float32)
        elif isinstance(space, spaces.Box):
            low, high = space.low.reshape(-1).astype(np.float64), space.high.reshape(-1).astype(np.float64)
            unbounded = ~np.isfinite(low) | ~np.isfinite(high) | (np.abs(low) > _BIG) | (np.abs(high) > _BIG)
            self.scale = np.where(unbounded, UNBOUNDED_SCALE, 1.0).astype(np.float32)
            self.low = np.where(unbounded, -1.0, low).astype(np.float32)
            self.high = np.where(unbounded, 1.0, high).astype(np.float32)
            self.axis_names = [_clean(x) for x in names] if names and len(names) == low.size else []
            self.axis_names = self.axis_names or [f"{prefix}x{i}" for i in range(low.size)]
            self.options, self.option_names = [], []  # a Box always makes the whole action a box
        else:
            raise ReverieError(
                f"unsupported action space {space}: accepted Discrete, Box, MultiBinary, MultiDiscrete, "
                "and Dict/Tuple of these"
            )
        if not hasattr(self, "scale"):
            self.scale = np.ones(len(self.axis_names), np.float32)

    @property
    def is_box(self) -> bool:
        return isinstance(self.space, spaces.Box)

    def from_option(self, i: int) -> Any:
        return self.options[i]

    def from_axes(self, v: np.ndarray) -> Any:
        """Native action from this leaf's slice of a normalised box action."""
        v = np.clip(np.asarray(v, np.float32), self.low, self.high)
        s = self.space
        if isinstance(s, spaces.Box):
            return (v * self.scale).reshape(s.shape).astype(s.dtype)
        if isinstance(s, spaces.Discrete):
            return int(s.start) + (0 if v.size == 0 or v.max() <= 0 else 1 + int(np.argmax(v)))
        if isinstance(s, spaces.MultiBinary) or (isinstance(s, spaces.MultiDiscrete) and np.all(s.nvec == 2)):
            return (v > 0).astype(s.dtype).reshape(s.shape)
        assert isinstance(s, spaces.MultiDiscrete)
        nvec = np.asarray(s.nvec).reshape(-1)
        idx = np.floor((v + 1) / 2 * nvec).clip(0, nvec - 1)
        return idx.astype(s.dtype).reshape(s.shape)


def _button_combos(buttons: list[str]) -> list[tuple[int, ...]]:
    """noop, singles and useful pairs (all combinations when there are few buttons)."""
    k = len(buttons)
    if 2**k <= MAX_COMBOS:
        combos = list(itertools.product((0, 1), repeat=k))
        return sorted(combos, key=lambda c: (sum(c), [-x for x in c]))

    def onehot(*idx: int) -> tuple[int, ...]:
        return tuple(int(i in idx) for i in range(k))

    combos = [onehot()] + [onehot(i) for i in range(k)]
    kind = [
        "move"
        if any(w in b for w in ("move", "forward", "backward")) and "left" not in b and "right" not in b
        else "turn"
        if any(w in b for w in ("turn", "look"))
        else "act"
        if any(w in b for w in _ACT_WORDS)
        else ""
        for b in buttons
    ]
    for i, j in itertools.combinations(range(k), 2):
        pair = {kind[i], kind[j]}
        if pair in ({"move", "turn"}, {"move", "act"}, {"turn", "act"}) and len(combos) < MAX_COMBOS:
            combos.append(onehot(i, j))
    return combos


class ActionMapper:
    """Maps the normalised action (Discrete or Box) onto any supported native Gymnasium space."""

    def __init__(self, space: spaces.Space, names: list[str] | dict[Any, list[str]] | None = None) -> None:
        self.native = space
        self.leaves: list[tuple[Any, _Leaf]] = []
        if isinstance(space, spaces.Dict | spaces.Tuple):
            items = space.spaces.items() if isinstance(space, spaces.Dict) else enumerate(space.spaces)
            for key, sub in items:
                if isinstance(sub, spaces.Dict | spaces.Tuple):
                    raise ReverieError(f"nested action space {space} is not supported: flatten it first")
                sub_names = names.get(key) if isinstance(names, dict) else None
                self.leaves.append((key, _Leaf(sub, sub_names, prefix=f"{key}_")))
            self.discrete = not any(leaf.is_box for _, leaf in self.leaves)
        else:
            leaf = _Leaf(space, names if isinstance(names, list) else None)
            self.leaves.append((None, leaf))
            self.discrete = not leaf.is_box
        if self.discrete:
            self._options = self._discrete_options()
            self.space: spaces.Space = spaces.Discrete(len(self._options))
        else:
            low = np.concatenate([leaf.low for _, leaf in self.leaves])
            high = np.concatenate([leaf.high for _, leaf in self.leaves])
            self.space = spaces.Box(low, high, dtype=np.float32)

    def _discrete_options(self) -> list[tuple[list[int], str]]:
        """(option index per leaf, name): the full product when small, else one leaf at a time."""
        sizes = [len(leaf.options) for _, leaf in self.leaves]
        if len(self.leaves) == 1:
            return [([i], self.leaves[0][1].option_names[i]) for i in range(sizes[0])]
        if int(np.prod(sizes)) <= MAX_COMBOS:
            combos = sorted(
                itertools.product(*[range(s) for s in sizes]), key=lambda c: sum(x > 0 for x in c)
            )
        else:
            combos = [tuple([0] * len(sizes))]
            for li, s in enumerate(sizes):
                combos += [tuple(j if d == li else 0 for d in range(len(sizes))) for j in range(1, s)]
        out = []
        for c in combos:
            parts = [leaf.option_names[i] for (_, leaf), i in zip(self.leaves, c) if i > 0]
            out.append((list(c), "+".join(parts) or "noop"))
        return out

    @property
    def spec(self) -> dict[str, Any]:
        if self.discrete:
            return {"type": "discrete", "n": len(self._options), "names": [n for _, n in self._options]}
        assert isinstance(self.space, spaces.Box)
        names = [n for _, leaf in self.leaves for n in leaf.axis_names]
        return {
            "type": "box",
            "shape": list(self.space.shape),
            "low": [float(x) for x in self.space.low],
            "high": [float(x) for x in self.space.high],
            "names": names,
        }

    def to_native(self, action: Any) -> Any:
        if self.discrete:
            idx, _ = self._options[int(np.asarray(action).reshape(-1)[0])]
            parts = [leaf.from_option(i) for (_, leaf), i in zip(self.leaves, idx)]
        else:
            v = np.asarray(action, np.float32).reshape(-1)
            parts, start = [], 0
            for _, leaf in self.leaves:
                n = len(leaf.axis_names)
                parts.append(leaf.from_axes(v[start : start + n]))
                start += n
        if isinstance(self.native, spaces.Dict):
            return {key: p for (key, _), p in zip(self.leaves, parts)}
        if isinstance(self.native, spaces.Tuple):
            return tuple(parts)
        return parts[0]


class NormalizedActions(gymnasium.ActionWrapper):
    """Presents any supported action space as the normalised Discrete / Box of `ActionMapper`."""

    def __init__(self, env: gymnasium.Env, names: list[str] | dict[Any, list[str]] | None = None) -> None:
        super().__init__(env)
        self.mapper = ActionMapper(env.action_space, native_names(env) or names)
        self.action_space = self.mapper.space
        self.reverie_action_spec = self.mapper.spec

    def action(self, action: Any) -> Any:
        return self.mapper.to_native(action)


# Popular envs that do not name their actions; keys are id prefixes, then the space's class name.
_KNOWN_NAMES: dict[str, dict[str, list[str]]] = {
    "CarRacing": {"Discrete": ["noop", "right", "left", "gas", "brake"], "Box": ["steer", "gas", "brake"]},
    "CartPole": {"Discrete": ["push_left", "push_right"]},
    "LunarLander": {
        "Discrete": ["noop", "fire_left", "fire_main", "fire_right"],
        "Box": ["main_engine", "lateral_engine"],
    },
    "MountainCarContinuous": {"Box": ["force"]},
    "MountainCar": {"Discrete": ["push_left", "noop", "push_right"]},
    "Acrobot": {"Discrete": ["torque_minus", "noop", "torque_plus"]},
    "Pendulum": {"Box": ["torque"]},
}


def known_names(world_id: str, space: spaces.Space) -> list[str] | None:
    """Action names for popular envs that do not name their own actions (else None)."""
    for prefix, by_space in _KNOWN_NAMES.items():
        if world_id.startswith(prefix):
            return by_space.get(type(space).__name__)
    return None


def native_names(env: gymnasium.Env) -> list[str] | dict[Any, list[str]] | None:
    """Names of the native actions (or buttons / axes) when the env tells us."""
    u = env.unwrapped
    names = getattr(u, "action_names", None)
    if names is not None:
        return [str(n) for n in names]
    if hasattr(u, "get_action_meanings"):  # Atari
        try:
            return [str(n) for n in u.get_action_meanings()]
        except Exception:
            return None
    game = getattr(u, "game", None)
    if game is not None and hasattr(game, "get_available_buttons"):  # ViZDoom
        buttons = [str(b).split(".")[-1] for b in game.get_available_buttons()]
        n_delta = int(getattr(u, "num_delta_buttons", 0))
        delta, binary = buttons[:n_delta], buttons[n_delta:]
        button_map = getattr(u, "button_map", None)
        if button_map is not None:  # a Discrete over button combinations
            binary = ["+".join(b for b, on in zip(binary, combo) if on) or "noop" for combo in button_map]
        if isinstance(env.action_space, spaces.Dict):
            return {"binary": binary, "continuous": delta}
        return delta if isinstance(env.action_space, spaces.Box) else binary
    actions = getattr(u, "actions", None)  # MiniWorld's Actions enum
    if (
        isinstance(env.action_space, spaces.Discrete)
        and actions is not None
        and hasattr(actions, "__members__")
    ):
        members = sorted(actions.__members__.values(), key=lambda m: int(m.value))
        return [m.name for m in members][: int(env.action_space.n)]
    return None


def action_spec(space_or_env: spaces.Space | gymnasium.Env | None) -> dict[str, Any]:
    """The normalised spec of a space or env (an env gives names when it knows them)."""
    if space_or_env is None:
        return dict(NONE_SPEC)
    if isinstance(space_or_env, gymnasium.Env):
        env = space_or_env
        try:
            return dict(env.get_wrapper_attr("reverie_action_spec"))
        except AttributeError:
            return ActionMapper(env.action_space, native_names(env)).spec
    return ActionMapper(space_or_env).spec


def null_action(spec: SpecLike) -> Any:
    """Discrete 0 ("noop"), or zeros clipped into the box (the recorded act[0])."""
    return ActionSpec.of(spec).null_action()


def encode_action(spec: SpecLike, action: Any) -> np.ndarray:
    """Action -> array for storage: int64 scalar (discrete), float32 vector (box), empty (none)."""
    return ActionSpec.of(spec).encode(action)


def decode_action(spec: SpecLike, array: np.ndarray) -> Any:
    """Stored array -> the action an env wrapped with `NormalizedActions` accepts."""
    return ActionSpec.of(spec).decode(array)


def action_features(spec: SpecLike, action: Any) -> np.ndarray:
    """Float vector a model consumes: one-hot (discrete) or the box scaled to [-1, 1]."""
    return ActionSpec.of(spec).features(action)
