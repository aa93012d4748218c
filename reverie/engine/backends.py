"""Backends produce frames for a BATCH of sessions at once; the clock and `WorldSession` drive them.

A backend owns one slot per session id (`sid`). `SimulatorBackend` is the real world: one Gymnasium
env per slot, stepped in a loop. A `ModelBackend` (the learned world model) implements the same
three methods: it keeps a table sid -> batch row of its `Rollout`, `step(sids, actions)` gathers
those rows' actions into one (B, ...) tensor, runs one sampling pass and one autoencoder decode, and
returns the frames in `sids` order. The clock and the server never change.

Threading contract: the clock calls `step` from its thread and `reset` from its reset worker, so a
`reset(sid)` may run while `step` runs for OTHER sids. Per-slot state (an env each) needs nothing;
a backend with shared batch state (a model's KV cache) guards it with a lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from reverie.sizes import Size, parse_size
from reverie.worlds import DEFAULT_WORLD

# A session starts this many frames into a seeded explore walk of the real world, so a world model
# starts from a short real history (a full context window of the shipped model), not one still
# frame, and the "real world" pane beside it shows the same frame.
START_WALK = 8


@dataclass
class StepOut:
    """One session's result of a reset or step."""

    frame: np.ndarray  # (H, W, 3) uint8
    caption: str | None = None
    restarted: bool = False  # the episode ended and the world started a new one


class Backend(Protocol):
    name: str  # "simulator" | "model": shown to the player and in /health
    world: str
    size: Size
    spec: dict[str, Any]  # action spec (reverie.worlds.actions)
    accepts_prompt: bool  # False: a prompt is noted but cannot change the world
    accepts_image: bool

    def reset(
        self, sid: int, seed: int, prompt: str | None = None, image: np.ndarray | None = None
    ) -> StepOut:
        """Start (or restart) session `sid`; creates its slot when new."""
        ...

    def step(self, sids: Sequence[int], actions: Sequence[Any]) -> list[StepOut]:
        """Advance every listed session by one frame with its action, in one batch."""
        ...

    def close(self, sid: int) -> None:
        """Free the slot (unknown sids are ignored)."""
        ...


def splits(b: object) -> bool:
    """Whether backend `b` also offers `step` in two halves, `advance(sids, actions) -> handle` (the
    batched model pass, under its lock) and `render(handle) -> list[StepOut]` (decoding, touching no
    session state), so the clock may render one tick's frames beside the next tick's `advance`."""
    return callable(getattr(b, "advance", None)) and callable(getattr(b, "render", None))


def make_env(world: str, size: Size, continuous: bool = False) -> Any:
    """A world's env whose observation is the (H, W, 3) uint8 frame."""
    from reverie.worlds.make import make_world

    return make_world(world, size, continuous=continuous)


def env_action_spec(env: Any) -> dict[str, Any]:
    from reverie.worlds.actions import action_spec

    return dict(action_spec(env))


def start_walk(
    env: Any, seed: int, size: Size, frames: int = START_WALK
) -> tuple[list[np.ndarray], list[Any], str | None]:
    """(frames, actions that led to them, the world's caption of the last frame or None) of a seeded
    explore walk: the start of a session.

    The first action is the null action (nothing led to the reset frame); the walk restarts from
    scratch if the episode ends inside it (never in the built-in worlds).
    """
    from reverie.worlds.actions import null_action
    from reverie.worlds.explore import make_policy

    obs, info = env.reset(seed=int(seed))
    spec = env_action_spec(env)
    policy = make_policy("explore", spec, seed=int(seed))
    policy.reset(seed=int(seed))
    out, acts = [_as_frame(env, obs, size)], [null_action(spec)]
    while len(out) < frames:
        act = policy(obs, info)
        obs, _, terminated, truncated, info = env.step(act)
        if terminated or truncated:
            return out[-1:], acts[-1:], _caption(info)
        out.append(_as_frame(env, obs, size))
        acts.append(act)
    return out, acts, _caption(info)


def _caption(info: dict) -> str | None:
    """The world's caption in a step's info, or None where the world gives none (or not a string)."""
    caption = info.get("caption")
    return caption if isinstance(caption, str) else None


def _as_frame(env: Any, obs: Any, size: Size) -> np.ndarray:
    """The env's frame as (H, W, 3) uint8, whatever its observation is."""
    frame = obs if isinstance(obs, np.ndarray) and obs.ndim == 3 and obs.shape[2] == 3 else env.render()
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.shape != (size.height, size.width, 3):
        from PIL import Image

        img = Image.fromarray(np.asarray(frame, np.uint8)[..., :3]).resize(size, Image.Resampling.BILINEAR)
        frame = np.asarray(img)
    return np.ascontiguousarray(frame)


class SimulatorBackend:
    """The real world: one env per session, stepped one after the other."""

    name = "simulator"
    accepts_prompt = False
    accepts_image = False

    def __init__(self, world: str = DEFAULT_WORLD, size: Size | str = "64x64", continuous: bool = False):
        self.world = world
        self.size = parse_size(size)
        self.continuous = continuous
        self._envs: dict[int, Any] = {}
        # One env is built now so a bad world id fails at start-up, not on the first player.
        self._spare: Any = make_env(world, self.size, continuous)
        self.spec = env_action_spec(self._spare)

    def _env(self, sid: int) -> Any:
        env = self._envs.get(sid)
        if env is None:
            env = self._spare if self._spare is not None else make_env(self.world, self.size, self.continuous)
            self._spare = None
            self._envs[sid] = env
        return env

    def reset(
        self, sid: int, seed: int, prompt: str | None = None, image: np.ndarray | None = None
    ) -> StepOut:
        env = self._env(sid)
        frames, _, caption = start_walk(env, seed, self.size)
        return StepOut(frames[-1], caption)

    def step(self, sids: Sequence[int], actions: Sequence[Any]) -> list[StepOut]:
        outs = []
        for sid, action in zip(sids, actions, strict=True):
            env = self._envs[sid]
            obs, _, terminated, truncated, info = env.step(action)
            restarted = bool(terminated or truncated)
            if restarted:  # no seed: the env's own RNG continues, so a session stays reproducible
                obs, info = env.reset()
            outs.append(StepOut(_as_frame(env, obs, self.size), info.get("caption"), restarted))
        return outs

    def close(self, sid: int) -> None:
        env = self._envs.pop(sid, None)
        if env is not None:
            env.close()

    def close_all(self) -> None:
        for sid in list(self._envs):
            self.close(sid)
        if self._spare is not None:
            self._spare.close()
            self._spare = None
