"""`bench_world`: steady-state frame rate of a world's `env.step` (physics and rendering together)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from reverie.sizes import Size

# Scripted walk by action name: mostly forward with turns, so frames change like in real play.
_SCRIPT = (
    ["forward"] * 12 + ["turn_right"] * 5 + ["forward_left"] * 6 + ["strafe_right"] * 3 + ["turn_left"] * 4
)


def bench_world(env_id: str, size: Size, steps: int) -> dict[str, Any]:
    """Time `steps` env.step calls at `size` after a short warm-up; one JSON-able result dict."""
    import gymnasium

    import reverie  # noqa: F401  (registers the built-in worlds)

    env = gymnasium.make(env_id, render_mode="rgb_array", width=size.width, height=size.height)
    names = list(getattr(env.unwrapped, "action_names", []))
    if all(n in names for n in set(_SCRIPT)):
        actions = [names.index(n) for n in _SCRIPT]
    else:  # a world with other actions: a seeded random sequence
        env.action_space.seed(0)
        actions = [env.action_space.sample() for _ in range(64)]
    env.reset(seed=0)
    times = np.empty(steps)
    for i in range(-50, steps):  # negative indices are warm-up
        a = actions[i % len(actions)]
        t0 = time.perf_counter()
        _, _, term, trunc, _ = env.step(a)
        dt = time.perf_counter() - t0
        if i >= 0:
            times[i] = dt
        if term or trunc:
            env.reset()
    env.close()
    return {
        "bench": "world",
        "world": env_id,
        "width": size.width,
        "height": size.height,
        "steps": steps,
        "fps": round(float(steps / times.sum()), 1),
        "frame_ms_p50": round(float(np.median(times) * 1e3), 4),
        "frame_ms_p99": round(float(np.percentile(times, 99) * 1e3), 4),
    }
