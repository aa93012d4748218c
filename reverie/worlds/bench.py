"""`bench_world`: frames per second of a world (step plus render) on one core."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from reverie.sizes import Size


def bench_world(env_id: str, size: Size, steps: int, *, warmup: int = 100, seed: int = 0) -> dict[str, Any]:
    """Time `steps` env steps under a scripted action sequence; one JSON-able result."""
    from reverie.worlds.explore import make_policy
    from reverie.worlds.make import make_world

    env = make_world(env_id, size, seed=seed)
    # Actions come from the explore policy, drawn before timing so only the world is measured.
    policy = make_policy("explore", env, seed)
    obs, info = env.reset(seed=seed)
    actions = []
    for _ in range(warmup + steps):
        a = policy(obs, info)
        actions.append(a)
        obs, _, term, trunc, info = env.step(a)
        if term or trunc:
            obs, info = env.reset()
    env.reset(seed=seed)
    times = np.empty(steps)
    for i, a in enumerate(actions):
        t0 = time.perf_counter()
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
        if i >= warmup:
            times[i - warmup] = time.perf_counter() - t0
    env.close()
    return {
        "bench": "world",
        "world": env_id,
        "width": size.width,
        "height": size.height,
        "steps": steps,
        "fps": round(float(steps / times.sum()), 1),
        "frame_ms_p50": round(float(np.percentile(times, 50) * 1e3), 3),
        "frame_ms_p99": round(float(np.percentile(times, 99) * 1e3), 3),
    }
