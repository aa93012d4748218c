"""`WorldModelEnv`: a trained world model as a Gymnasium env (train agents inside the dream).

The action space is the one of the world the model learned (its run's recorded action spec); the
observation is the generated (H, W, 3) uint8 frame. There is no reward model: reward is always 0.
The dream never ends on its own (terminated is always False); an episode is truncated after
`max_steps` frames. The same seed (and the same actions) gives the same frames.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from reverie.engine.model_backend import ModelBackend, ModelConfig
from reverie.worlds.action_spec import ActionSpec

_SID = 1  # the env's one session in its own backend


class WorldModelEnv(gymnasium.Env):  # type: ignore[type-arg]
    """reset(seed, options={"prompt": str, "image": uint8 (H, W, 3)}) / step(action) on the model."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}  # noqa: RUF012 (gymnasium declares it so)

    def __init__(
        self,
        run: str,
        *,
        steps: int = 2,
        max_steps: int = 1000,
        render_mode: str | None = "rgb_array",
        threads: int | None = None,
        backend: ModelBackend | None = None,
    ) -> None:
        self.backend = backend or ModelBackend(run, ModelConfig(steps=steps, threads=threads))
        b = self.backend
        self.actions = ActionSpec.of(b.spec)
        self.action_space = self.actions.space()
        self.observation_space = spaces.Box(0, 255, (b.size.height, b.size.width, 3), np.uint8)
        self.max_steps = max_steps
        self.render_mode = render_mode
        self._t = 0
        self._frame: np.ndarray | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        # without a seed the env's own RNG (seeded by the last seed) picks one, so runs stay reproducible
        session_seed = int(self.np_random.integers(2**31))
        opts = options or {}
        out = self.backend.reset(_SID, session_seed, prompt=opts.get("prompt"), image=opts.get("image"))
        self._t = 0
        self._frame = out.frame
        return out.frame.copy(), {"caption": out.caption, "step": 0}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._frame is None:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        act = action if self.actions.has_actions else None
        (out,) = self.backend.step([_SID], [act])
        self._t += 1
        self._frame = out.frame
        # no reward model: the dream has no reward, and no end (only the step limit truncates)
        return out.frame.copy(), 0.0, False, self._t >= self.max_steps, {"step": self._t}

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        return None if self._frame is None else self._frame.copy()

    def close(self) -> None:
        self.backend.close_all()
