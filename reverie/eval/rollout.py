"""The rollout harness: real trajectories from a simulator, and predictors that try to reproduce them.

A `Predictor` is anything that, given the real frames of an episode so far, predicts the next frames
from actions. Three implementations share one protocol, so the same scoring code runs them all:

- `ModelPredictor`: the world model (autoencoder + DiT + Rollout sampler) at play settings;
- `SimulatorPredictor`: the real world replayed from the same seed and actions (a perfect model,
  a check of the harness itself: it must score the PSNR cap everywhere);
- `CopyLastPredictor`: repeats the last context frame (the baseline of docs/measures.md).

Each also has `fork()`: an independent copy of its current state, so a rollout can branch (the
drift measure probes the action response of the model's own drifted state that way).

Context convention: `reset` receives the episode from its first frame (obs[0] after reset(seed))
up to the current frame, with act[0] the null action, and, where the world writes captions, the
caption of the context's last frame for each episode; a predictor uses as much of it as it can (the
model takes the caption as its text only with `start_caption`, as the engine does: `START_CAPTION`).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from reverie.errors import ReverieError
from reverie.models.world_model import START_CAPTION
from reverie.worlds.action_spec import ActionSpec

__all__ = [
    "CopyLastPredictor",
    "ModelPredictor",
    "Predictor",
    "RealEpisodes",
    "SimulatorPredictor",
    "collect_real",
]


Captions = list[str | None] | None  # per episode, the caption of its context's last frame


class Predictor(Protocol):
    def reset(
        self, context_frames: np.ndarray, context_act: np.ndarray, seeds: list[int], captions: Captions = None
    ) -> None:
        """Start B episodes: context_frames uint8 (B, Tc, H, W, 3), context_act (B, Tc[, D]), their seeds,
        and the captions of their last context frames (None: the world writes none)."""
        ...

    def step(self, act: np.ndarray) -> np.ndarray:
        """Feed each episode's next action (B,[ D]); returns the predicted next frames uint8 (B, H, W, 3)."""
        ...

    def fork(self) -> Predictor:
        """An independent copy of the current state: stepping one never changes the other's outputs."""
        ...


@dataclass
class RealEpisodes:
    """Real trajectories of equal length: obs (B, T, H, W, 3) uint8, act (B, T[, D]), their seeds, and
    per episode the caption the world wrote with each frame (None: a world without captions)."""

    obs: np.ndarray
    act: np.ndarray
    seeds: list[int]
    action_spec: dict[str, Any]
    captions: list[list[str | None]] | None = None  # (B, T)

    def caption_at(self, t: int) -> Captions:
        """Each episode's caption of frame t (what a predictor started at frame t is told)."""
        return [c[t] for c in self.captions] if self.captions is not None else None

    def rows(self, index: list[int]) -> list[list[str | None]] | None:
        """The captions of episodes `index` (in that order, repeats allowed), for a derived batch."""
        return [self.captions[i] for i in index] if self.captions is not None else None


def collect_real(
    world: str,
    size: str,
    seeds: list[int],
    length: int,
    *,
    policy: str = "explore",
    policy_seed: int = 0,
    continuous: bool = False,
    spare_seeds: list[int] | None = None,
    progress: bool = False,
) -> RealEpisodes:
    """Run the real world for `length` frames per seed under a policy.

    An episode that ends early is replaced by the next of `spare_seeds` (held-out seeds too), so
    every trajectory has the full length and positions line up across the batch.
    """
    from tqdm import tqdm

    from reverie.worlds.explore import make_policy
    from reverie.worlds.make import BUILTIN_WORLDS, action_spec, make_world

    pool = list(seeds) + list(spare_seeds or [])
    # the built-in worlds end an episode at 1,000 steps by default; the drift measure needs 9,000
    limit: dict[str, Any] = {"max_steps": max(length, 1000)} if world in BUILTIN_WORLDS else {}
    obs_all: list[np.ndarray] = []
    act_all: list[np.ndarray] = []
    cap_all: list[list[str | None]] = []
    used: list[int] = []
    bar = tqdm(total=len(seeds), desc="real episodes", unit="ep", disable=not progress)
    env = make_world(world, size, continuous=continuous, **limit)
    spec = action_spec(env)
    try:
        for seed in pool:
            if len(used) == len(seeds):
                break
            pol = make_policy(policy, env, seed=policy_seed + int(seed))
            obs, info = env.reset(seed=int(seed))
            pol.reset(policy_seed + int(seed))  # as the recorder does: the policy restarts with the world
            frames, acts, caps = [obs], [_null_action(spec)], [info.get("caption")]
            while len(frames) < length:
                a = pol(obs, info)
                obs, _, term, trunc, info = env.step(a)
                frames.append(obs)
                acts.append(np.asarray(a))
                caps.append(info.get("caption"))
                if (term or trunc) and len(frames) < length:
                    break
            if len(frames) == length:
                obs_all.append(np.stack(frames))
                act_all.append(np.stack(acts))
                cap_all.append(caps)
                used.append(int(seed))
                bar.update(1)
    finally:
        env.close()
        bar.close()
    if len(used) < len(seeds):
        raise ReverieError(
            f"only {len(used)} of {len(seeds)} episodes of {world} lasted {length} frames; "
            "use a shorter horizon or more held-out seeds"
        )
    captions = cap_all if any(c is not None for caps in cap_all for c in caps) else None
    return RealEpisodes(np.stack(obs_all), np.stack(act_all), used, spec, captions)


def _null_action(spec: dict[str, Any]) -> np.ndarray:
    actions = ActionSpec.of(spec)
    if actions.is_box:
        return np.zeros(actions.shape, dtype=np.float32)
    return np.asarray(0, dtype=np.int64)


class CopyLastPredictor:
    """The baseline: every predicted frame is the last real context frame."""

    def __init__(self) -> None:
        self.last: np.ndarray | None = None

    def reset(
        self, context_frames: np.ndarray, context_act: np.ndarray, seeds: list[int], captions: Captions = None
    ) -> None:
        self.last = np.ascontiguousarray(context_frames[:, -1])  # (B, H, W, 3)

    def step(self, act: np.ndarray) -> np.ndarray:
        if self.last is None:
            raise RuntimeError("call reset() before step()")
        return self.last.copy()

    def fork(self) -> CopyLastPredictor:
        other = CopyLastPredictor()
        other.last = None if self.last is None else self.last.copy()
        return other


class SimulatorPredictor:
    """The real world replayed from the episode's seed and actions: what a perfect model would do."""

    def __init__(self, world: str, size: str, continuous: bool = False) -> None:
        self.world, self.size, self.continuous = world, size, continuous
        self.envs: list[Any] = []
        # Per episode: its seed and every action since reset, so fork() can replay a world that
        # deepcopy cannot copy (emulators holding native handles).
        self.logs: list[tuple[int, list[Any]]] = []

    def _replay(self, seed: int, actions: list[Any]) -> tuple[Any, np.ndarray]:
        from reverie.worlds.make import make_world

        env = make_world(self.world, self.size, continuous=self.continuous)
        obs, _ = env.reset(seed=int(seed))
        for a in actions:
            obs = env.step(a)[0]
        return env, obs

    def reset(
        self, context_frames: np.ndarray, context_act: np.ndarray, seeds: list[int], captions: Captions = None
    ) -> None:
        self.close()
        for b, seed in enumerate(seeds):
            acts = [_native(a) for a in context_act[b, 1:]]  # act[0] is the null action that "led to" obs[0]
            env, obs = self._replay(int(seed), acts)
            if not np.array_equal(obs, context_frames[b, -1]):
                env.close()
                raise ReverieError(
                    f"replaying seed {seed} of {self.world} did not reproduce the context: "
                    "the world is not deterministic for a seed, or the context starts mid-episode"
                )
            self.envs.append(env)
            self.logs.append((int(seed), acts))

    def step(self, act: np.ndarray) -> np.ndarray:
        frames = []
        for env, (_, log), a in zip(self.envs, self.logs, act, strict=True):
            frames.append(env.step(_native(a))[0])
            log.append(_native(a))
        return np.stack(frames)

    def fork(self) -> SimulatorPredictor:
        other = SimulatorPredictor(self.world, self.size, self.continuous)
        for env, (seed, log) in zip(self.envs, self.logs, strict=True):
            try:
                twin = copy.deepcopy(env)  # the built-in worlds are plain Python state: cheap and exact
            except Exception:
                twin = self._replay(seed, log)[0]  # deterministic for a seed, so replay gets there too
            other.envs.append(twin)
            other.logs.append((seed, list(log)))
        return other

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs, self.logs = [], []


def _native(a: np.ndarray) -> Any:
    a = np.asarray(a)
    return int(a) if a.ndim == 0 else a


class ModelPredictor:
    """The world model as the player gets it: encode the real context, roll the DiT forward, decode.

    Loaded and sampled exactly as `reverie play` does (docs/measures.md, "Play settings"): the
    precision `load_world_model` picks ("auto"), the model's own sampler settings (`wm.sampler`) unless
    `sampler` overrides them, and one noise generator per row seeded from the row's episode seed, fed
    through `Rollout.rebuild` as the engine's `ModelBackend` does. So a row's frames do not depend on
    which other rows share its batch, and eval and the engine give the same frames for the same seed,
    context and actions. With `start_caption` (the engine's default) a row given a caption plays with
    it as its text, as a player's real start does.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        steps: int | None = None,
        seed: int = 0,
        *,
        precision: str = "auto",
        context_noise: float | None = None,
        context_blur: float | None = None,
        wm: Any = None,
        act_map: list[int] | None = None,
        start_caption: bool = START_CAPTION,
    ) -> None:
        from dataclasses import replace

        from reverie.models.dynamics import make_rollout
        from reverie.models.sampler import SamplerConfig
        from reverie.models.world_model import load_world_model

        self.wm = wm if wm is not None else load_world_model(str(run_dir), precision=precision)
        self.model = self.wm.dit
        own = getattr(self.wm, "sampler", None) or SamplerConfig()
        settings = (("steps", steps), ("context_noise", context_noise), ("context_blur", context_blur))
        self.sampler: SamplerConfig = replace(own, **{k: v for k, v in settings if v is not None})
        self.rollout = make_rollout(self.model, self.sampler)
        self.has_act = self.wm.actions.has_actions
        self.seed = seed  # added to every episode seed: 0 draws the engine's noise
        self.generators: list[Any] = []
        # world action -> the model's action (a model trained on named latent actions; eval/config.py)
        self.act_map = np.asarray(act_map, dtype=np.int64) if act_map is not None else None
        self.start_caption = start_caption

    def _act(self, act: np.ndarray) -> Any:
        """World actions (N, ...) -> the model's action tensor (None for an action-less model)."""
        if not self.has_act:
            return None
        return self.wm.act_tensor(list(self.act_map[act] if self.act_map is not None else act))

    def encode(self, frames: np.ndarray) -> Any:
        """frames uint8 (N, H, W, 3) -> normalised latents z (N, C, h, w)."""
        return self.wm.encode(frames)

    def reset(
        self, context_frames: np.ndarray, context_act: np.ndarray, seeds: list[int], captions: Captions = None
    ) -> None:
        import torch

        from reverie.models.sampler import SessionContext

        ctx = min(context_frames.shape[1], self.rollout.max_context)  # older frames leave the cache anyway
        frames, act = context_frames[:, -ctx:], context_act[:, -ctx:]
        B = frames.shape[0]
        # One encoder call per row, as the engine encodes a player's start walk: a convolution batched
        # differently can differ in the last bit, which the rollout amplifies into different frames.
        z = torch.stack([self.wm.encode(frames[b]) for b in range(B)])  # (B, Tc, C, h, w)
        self.generators = [torch.Generator().manual_seed(self.seed + int(s)) for s in seeds]
        a = self._act(act.reshape(B * ctx, *act.shape[2:]))
        a = a.reshape(B, ctx, *a.shape[1:]) if a is not None else None  # (B, Tc) or (B, Tc, D)
        said = captions if self.start_caption and captions is not None else [None] * B
        text = [self.wm.text(c) for c in said]  # (1, E) each, or None
        sessions = [
            SessionContext(z[b], a[b] if a is not None else None, t[0] if t is not None else None)
            for b, t in enumerate(text)
        ]
        with torch.inference_mode():
            self.rollout.rebuild(sessions, self.generators)

    def step(self, act: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            z = self.rollout.step(self._act(np.asarray(act)), self.generators)
            return self.wm.decode(z)

    def fork(self) -> ModelPredictor:
        """Shares the (read-only) weights; copies the KV cache, the pending frame and the generators."""
        import torch

        other = copy.copy(self)
        other.rollout = self.rollout.fork()
        other.generators = [torch.Generator().set_state(g.get_state()) for g in self.generators]
        return other
