"""`WorldSession`: one player's world, reset(prompt|image|seed) / step(action) -> frame.

This is the single-session API (tests, bench, scripts). The live server does not loop over
sessions: the clock batches every active session into one backend call per tick.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from reverie.engine.backends import Backend, StepOut
from reverie.engine.controls import InputMapper, InputState

_SIDS = itertools.count(1)


def new_sid() -> int:
    """A process-wide unique slot id for backends."""
    return next(_SIDS)


def random_seed() -> int:
    return random.SystemRandom().randrange(2**31)


@dataclass
class Timed:
    """A frame and how long the backend took to make it."""

    frame: np.ndarray  # (H, W, 3) uint8
    ms: float
    caption: str | None = None
    restarted: bool = False


class WorldSession:
    """One playable world. Same seed and same actions give the same frames."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.sid = new_sid()
        self.mapper = InputMapper(backend.spec)
        self.seed: int | None = None
        self.index = 0  # frames produced since the last reset (the reset frame is 0)
        self.prompt: str | None = None

    @property
    def spec(self) -> dict[str, Any]:
        return self.backend.spec

    def reset(
        self, prompt: str | None = None, image: np.ndarray | None = None, seed: int | None = None
    ) -> Timed:
        self.seed = random_seed() if seed is None else int(seed)
        self.prompt = prompt
        t0 = time.perf_counter()
        out = self.backend.reset(self.sid, self.seed, prompt=prompt, image=image)
        self.index = 0
        return self._timed(out, t0)

    def step(self, action: Any) -> Timed:
        """One frame. `action` is an action of `spec`, or an `InputState` mapped through the controls."""
        if self.seed is None:
            self.reset()
        if isinstance(action, InputState):
            action = self.mapper(action)
        t0 = time.perf_counter()
        (out,) = self.backend.step([self.sid], [action])
        self.index += 1
        return self._timed(out, t0)

    @staticmethod
    def _timed(out: StepOut, t0: float) -> Timed:
        return Timed(out.frame, (time.perf_counter() - t0) * 1e3, out.caption, out.restarted)

    def close(self) -> None:
        self.backend.close(self.sid)

    def __enter__(self) -> WorldSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
