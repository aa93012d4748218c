"""Record episodes of a world into an episode store, in worker processes when that helps.

Episode i always has seed S + i and lands in the store in index order, whatever the number of
workers: each worker records whole episodes, and the parent appends them in order as they finish.
`steps` is the number of frames per episode (the reset frame included); an episode that terminates
or truncates earlier is stored shorter.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing as mp
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import numpy as np

from reverie.cpus import usable_cpus
from reverie.data.episode import Episode
from reverie.data.store import STORE_FILE, EpisodeStore, is_store
from reverie.errors import ReverieError
from reverie.sizes import Size
from reverie.worlds.action_spec import ActionSpec

# Below this many frames a pool costs more (process start, imports) than it saves.
_MIN_FRAMES_FOR_POOL = 2000
PARENT_POLL_S = 1.0  # how often a worker checks its parent is still alive (where the OS cannot tell it)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass
class RecordConfig:
    world: str
    size: Size
    episodes: int = 10
    steps: int = 1000
    seed: int = 0
    policy: str = "explore"
    continuous: bool = False
    workers: int = 0  # 0: one per core when the job is big enough, else in-process


def record_episode(
    env: Any,
    policy: Any,
    spec: ActionSpec | dict[str, Any],
    seed: int,
    steps: int,
    meta: dict[str, Any] | None = None,
) -> Episode:
    """Run one episode of `env` under `policy` for at most `steps` frames, following the episode
    convention (act[i] led to obs[i]; act[0] is the null action)."""
    spec = ActionSpec.of(spec)

    obs, info = env.reset(seed=seed)
    policy.reset(seed)
    # Copies: an env may hand back the same frame buffer every step.
    frames = [np.array(obs, np.uint8)]
    acts, rews, terms, truncs, caps = [spec.null_action()], [0.0], [False], [False], []
    caps.append(str(info.get("caption", "")))
    while len(frames) < steps:
        a = policy(obs, info)
        obs, rew, term, trunc, info = env.step(a)
        frames.append(np.array(obs, np.uint8))
        acts.append(a)
        rews.append(float(rew))
        terms.append(bool(term))
        truncs.append(bool(trunc))
        caps.append(str(info.get("caption", "")))
        if term or trunc:
            break
    act: np.ndarray | None = None
    if spec.has_actions:
        act = np.stack([spec.encode(a).reshape(-1) for a in acts])  # (T, 1) or (T, D)
        act = act[:, 0] if spec.is_discrete else act
    T = len(frames)
    describe = getattr(policy, "describe", None)
    if callable(describe):
        # What the player did (temperament, run lengths) is worth keeping; only if it is JSON-able.
        with suppress(TypeError, ValueError):
            meta = {**(meta or {}), "policy_info": json.loads(json.dumps(describe()))}
    return Episode(
        obs=np.stack(frames),  # (T, H, W, 3)
        act=act,
        rew=np.array(rews, np.float32),
        term=np.array(terms, bool),
        trunc=np.array(truncs, bool),
        captions=caps[:T],
        meta={"seed": seed, **(meta or {})},
    )


# One env per worker process, reused across its episodes (reset(seed) fully determines an episode).
_ENV: dict[tuple[Any, ...], Any] = {}


def _env_for(cfg: RecordConfig) -> Any:
    from reverie.worlds.make import make_world

    key = (cfg.world, tuple(cfg.size), cfg.continuous)
    if key not in _ENV:
        _ENV[key] = make_world(cfg.world, cfg.size, continuous=cfg.continuous, seed=cfg.seed)
    return _ENV[key]


def _close_envs() -> None:
    while _ENV:
        _ENV.popitem()[1].close()


def _record_one(args: tuple[RecordConfig, int]) -> Episode:
    from reverie.worlds.explore import make_policy
    from reverie.worlds.make import action_spec

    cfg, seed = args
    env = _env_for(cfg)
    policy = make_policy(cfg.policy, env, seed)
    meta = {"policy": cfg.policy, "world": cfg.world, "continuous": cfg.continuous}
    return record_episode(env, policy, action_spec(env), seed, cfg.steps, meta)


def _die_with_parent(parent: int) -> None:
    """Pool initializer: a worker whose parent is gone (kill -9 runs no cleanup) exits instead of
    recording on, or blocking forever on a result nobody reads.

    On Linux the kernel sends SIGKILL the moment the parent dies (PR_SET_PDEATHSIG); everywhere, a
    daemon thread also notices the worker was re-parented. The getppid() check after prctl covers a
    parent that died before the signal was armed."""
    if sys.platform == "linux":
        with suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="reverie-parent-watch", daemon=True).start()


def worker_pool(n_workers: int) -> ProcessPoolExecutor:
    """A pool of `n_workers` spawned processes that die with this one.

    spawn: workers start clean (no copied threads or locks from the parent). An executor, not
    multiprocessing.Pool: when a worker dies (killed, out of memory) Pool.imap waits forever, the
    executor raises BrokenProcessPool."""
    return ProcessPoolExecutor(
        n_workers, mp_context=mp.get_context("spawn"), initializer=_die_with_parent, initargs=(os.getpid(),)
    )


def _workers(cfg: RecordConfig) -> int:
    if cfg.workers > 0:
        return min(cfg.workers, cfg.episodes)
    if cfg.episodes * cfg.steps < _MIN_FRAMES_FOR_POOL:
        return 1
    return max(1, min(usable_cpus(), cfg.episodes))


def open_for_recording(out: str, cfg: RecordConfig) -> EpisodeStore:
    """Create the store, or open an existing one of the same world/size/action spec for appending;
    refuses before recording anything if any new seed is already recorded there."""
    from reverie.worlds.explore import make_policy
    from reverie.worlds.frame_rate import frame_rate
    from reverie.worlds.make import action_spec, make_world

    env = make_world(cfg.world, cfg.size, continuous=cfg.continuous, seed=cfg.seed)
    try:
        spec = action_spec(env)
        fps = frame_rate(env)  # game time per step, frame skips included: clips play at game speed
        make_policy(cfg.policy, spec, cfg.seed)  # an unknown name fails here, not in a worker
    finally:
        env.close()
    seeds = list(range(cfg.seed, cfg.seed + cfg.episodes))
    if is_store(out):
        store = EpisodeStore.open(out)
        store.check_compatible(world=cfg.world, action_spec=spec, size=cfg.size)
        store.check_new_seeds(seeds)
        return store
    return EpisodeStore.create(
        out, world=cfg.world, action_spec=spec, size=cfg.size, fps=fps, source="world", policy=cfg.policy
    )


def record(
    cfg: RecordConfig, out: str, *, progress: bool = True, on_episode: Callable[[int], None] | None = None
) -> EpisodeStore:
    """Record `cfg.episodes` episodes into the store at `out` (see open_for_recording)."""
    from tqdm import tqdm

    if cfg.episodes < 1 or cfg.steps < 1:
        raise ReverieError(
            f"need at least 1 episode and 1 step, got {cfg.episodes} episodes of {cfg.steps} steps"
        )
    existed, fresh = os.path.exists(out), not is_store(out)
    store = open_for_recording(out, cfg)
    jobs = [(cfg, cfg.seed + i) for i in range(cfg.episodes)]
    n_workers = _workers(cfg)
    bar = tqdm(total=cfg.episodes, unit="ep", desc="record", disable=not progress, dynamic_ncols=True)
    t0, frames = time.perf_counter(), 0
    pool = None
    episodes: Iterator[Episode]
    try:
        if n_workers > 1:
            pool = worker_pool(n_workers)
            episodes = pool.map(_record_one, jobs)  # ordered: episode i is appended i-th
        else:
            episodes = map(_record_one, jobs)
        for ep in episodes:
            store.append(ep)
            frames += len(ep)
            bar.update(1)
            bar.set_postfix_str(f"{frames / (time.perf_counter() - t0):.0f} frames/s")
            if on_episode is not None:
                on_episode(len(store) - 1)
    except BaseException as e:
        if fresh and len(store) == 0:
            _discard_empty_store(out, remove_dir=not existed)
        if isinstance(e, BrokenProcessPool):
            raise ReverieError(
                f"a recording worker process died ({e}); the {len(store)} episodes recorded so far are kept "
                "in the store. Record the rest with --seed after them, or use --workers 1"
            ) from e
        raise
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        _close_envs()
    return store


def _discard_empty_store(path: str, *, remove_dir: bool) -> None:
    """A recording that failed before its first episode leaves nothing behind."""
    for name in (STORE_FILE, ".lock"):
        with suppress(FileNotFoundError):
            os.unlink(os.path.join(path, name))
    for name in ("episodes", ".tmp"):
        shutil.rmtree(os.path.join(path, name), ignore_errors=True)
    if remove_dir:
        with suppress(OSError):
            os.rmdir(path)
