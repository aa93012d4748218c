"""One recorded episode in memory, and the checks every episode passes before it is stored or used.

Convention (shared by the whole tool): `obs[i]` is a frame, `act[i]` is the action that LED TO
`obs[i]` (so `act[0]` is the null action: discrete 0 = "noop", continuous zeros), `rew[i]`, `term[i]`
and `trunc[i]` come from the step that produced `obs[i]` (0 / False at i = 0), `captions[i]`
describes `obs[i]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reverie.errors import ReverieError
from reverie.worlds.action_spec import ActionSpec


@dataclass
class Episode:
    obs: np.ndarray  # (T, H, W, 3) uint8
    act: np.ndarray | None  # (T,) int64 for discrete, (T, D) float32 for box, None for video
    rew: np.ndarray  # (T,) float32
    term: np.ndarray  # (T,) bool
    trunc: np.ndarray  # (T,) bool
    captions: list[str]  # length T; "" where the world gives none
    meta: dict[str, Any] = field(default_factory=dict)  # JSON-able: seed, policy, source, ...

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    @classmethod
    def from_frames(
        cls, obs: np.ndarray, *, act: np.ndarray | None = None, captions: list[str] | None = None, **meta: Any
    ) -> Episode:
        """An episode of frames with zero rewards and no termination (video, synthetic data)."""
        T = int(obs.shape[0])
        return cls(
            obs=obs,
            act=act,
            rew=np.zeros(T, np.float32),
            term=np.zeros(T, bool),
            trunc=np.zeros(T, bool),
            captions=list(captions) if captions is not None else [""] * T,
            meta=dict(meta),
        )


def check_action_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Validate a normalised action spec (`ActionSpec.from_dict`); returns it unchanged."""
    ActionSpec.from_dict(spec)
    return spec


def action_dim(spec: ActionSpec | dict[str, Any]) -> int:
    """Number of float columns of a box action (its shape flattened); 0 for discrete and none."""
    return ActionSpec.of(spec).action_dim


def check_episode(
    ep: Episode, *, width: int, height: int, action_spec: ActionSpec | dict[str, Any], where: str
) -> None:
    """Raise ReverieError (naming `where`) unless shapes, dtypes and lengths agree with the store."""

    def bad(msg: str) -> ReverieError:
        return ReverieError(f"{where}: {msg}")

    obs = ep.obs
    if not isinstance(obs, np.ndarray) or obs.dtype != np.uint8 or obs.ndim != 4 or obs.shape[3] != 3:
        got = f"{getattr(obs, 'dtype', type(obs).__name__)} {getattr(obs, 'shape', '')}"
        raise bad(f"obs must be uint8 (T, H, W, 3), got {got}")
    T = obs.shape[0]
    if T < 1:
        raise bad("an episode needs at least one frame")
    if obs.shape[1:3] != (height, width):
        raise bad(f"frames are {obs.shape[2]}x{obs.shape[1]}, the store holds {width}x{height}")
    spec = ActionSpec.of(action_spec)
    kind = spec.kind
    if kind == "none":
        if ep.act is not None:
            raise bad("this store has no actions (video), but the episode carries some")
    elif ep.act is None:
        raise bad(f"act is missing; the store's action spec is {kind}")
    elif kind == "discrete":
        if ep.act.dtype != np.int64 or ep.act.shape != (T,):
            raise bad(f"discrete act must be int64 ({T},), got {ep.act.dtype} {ep.act.shape}")
        if T and (ep.act.min() < 0 or ep.act.max() >= spec.n):
            raise bad(f"discrete actions must lie in 0..{spec.n - 1}")
    elif ep.act.dtype != np.float32 or ep.act.shape != (T, spec.action_dim):
        raise bad(f"box act must be float32 ({T}, {spec.action_dim}), got {ep.act.dtype} {ep.act.shape}")
    for name, dtype in (("rew", np.float32), ("term", np.bool_), ("trunc", np.bool_)):
        a = getattr(ep, name)
        if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != (T,):
            raise bad(f"{name} must be {np.dtype(dtype).name} ({T},), got {getattr(a, 'dtype', type(a))}")
    if len(ep.captions) != T or not all(isinstance(c, str) for c in ep.captions):
        raise bad(f"captions must be {T} strings, got {len(ep.captions)}")
    if not isinstance(ep.meta, dict):
        raise bad("meta must be a dict")
