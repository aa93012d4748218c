"""`reverie bench data`: how fast the window sampler feeds training, on a synthetic or real store."""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import numpy as np

from reverie.data.episode import Episode
from reverie.data.sampler import WindowSampler
from reverie.data.store import EpisodeStore
from reverie.sizes import Size

SYNTH_SPEC: dict[str, Any] = {
    "type": "discrete",
    "n": 9,
    "names": ["noop", "w", "a", "s", "d", "q", "e", "space", "shift"],
}


def synthetic_episode(seed: int, steps: int, size: Size) -> Episode:
    """Moving gradients with a little noise: compresses about like rendered worlds, not like pure noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size.height, 0 : size.width]
    t = np.arange(steps)[:, None, None]
    base = (xx[None] * 3 + yy[None] * 2 + t * 4 + seed * 17) % 256  # (T, H, W)
    obs = np.stack([base, (base * 2) % 256, 255 - base], axis=-1).astype(np.uint8)  # (T, H, W, 3)
    obs |= rng.integers(0, 4, obs.shape, dtype=np.uint8)
    act = rng.integers(0, int(SYNTH_SPEC["n"]), steps).astype(np.int64)
    act[0] = 0
    captions = [f"scene {k // 50}" for k in range(steps)]
    return Episode.from_frames(obs, act=act, captions=captions, seed=seed, policy="synthetic")


def make_synthetic_store(
    path: str, *, episodes: int = 8, steps: int = 500, size: Size = Size(64, 64)
) -> EpisodeStore:
    store = EpisodeStore.create(path, world="synthetic", action_spec=SYNTH_SPEC, size=size, fps=30.0)
    for i in range(episodes):
        store.append(synthetic_episode(i, steps, size))
    return store


def bench_data(
    data: str | None = None, *, window: int = 16, batch: int = 32, seconds: float = 2.0, seed: int = 0
) -> dict[str, Any]:
    """Load a store into a WindowSampler and time random batches; one result dict."""
    with tempfile.TemporaryDirectory(prefix="reverie-bench-") as tmp:
        store = EpisodeStore.open(data) if data else make_synthetic_store(os.path.join(tmp, "store"))
        t0 = time.perf_counter()
        sampler = WindowSampler(store, window)
        load_s = time.perf_counter() - t0
        rng = np.random.default_rng(seed)
        sampler.sample(batch, rng)  # warm-up: first touch of the pages
        n, t0 = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds or n < 5:
            sampler.sample(batch, rng)
            n += 1
        frames = int(store.lengths.sum())
    return {
        "bench": "data",
        "window": window,
        "batch": batch,
        "frames_per_s": round(n * batch * window / elapsed, 1),
        "windows_per_s": round(n * batch / elapsed, 1),
        "load_frames_per_s": round(frames / load_s, 1),
        "store_frames": frames,
        "size": str(store.size),
    }
