"""The player's own start as a Predictor: the engine's `ModelBackend`, reset with no image and no prompt.

The start-from-nothing measure (docs/measures.md) must show what `reverie play` shows, whatever the
engine does to start a dream (a real frame of a fresh seed today), so it drives the engine itself
rather than re-implementing its start. Each episode is one engine session; all sessions step in the
engine's one batched pass, as several players would.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reverie.models.world_model import START_CAPTION

__all__ = ["EnginePredictor"]


class EnginePredictor:
    """`reset` ignores the context frames: the engine picks its own start for each seed (`start_frames`)."""

    def __init__(
        self,
        run: str,
        *,
        precision: str = "auto",
        steps: int | None = None,
        context_noise: float | None = None,
        context_blur: float | None = None,
        threads: int | None = None,
        start_caption: bool = START_CAPTION,
    ) -> None:
        from reverie.engine.model_backend import ModelBackend, ModelConfig

        cfg = ModelConfig(
            steps=steps, context_noise=context_noise, context_blur=context_blur, precision=precision,
            threads=threads,
            start_caption=start_caption,
        )  # fmt: skip
        self.backend = ModelBackend(run, cfg)
        self.wm = self.backend.wm
        self.sids: list[int] = []
        self.start_frames: np.ndarray | None = None  # (B, H, W, 3): what the player sees first

    def encode(self, frames: np.ndarray) -> Any:
        return self.wm.encode(frames)

    def reset(
        self, context_frames: np.ndarray, context_act: np.ndarray, seeds: list[int], captions: Any = None
    ) -> None:
        """The engine's own start per seed (its start walk and that walk's caption); the context is unused."""
        self.backend.close_all()
        self.sids = list(range(len(seeds)))
        starts = [
            self.backend.reset(sid, int(seed)).frame for sid, seed in zip(self.sids, seeds, strict=True)
        ]
        self.start_frames = np.stack(starts)

    def step(self, act: np.ndarray) -> np.ndarray:
        outs = self.backend.step(self.sids, [_native(a) for a in act])
        return np.stack([o.frame for o in outs])

    def fork(self) -> EnginePredictor:
        raise NotImplementedError("engine sessions cannot be forked; fork a ModelPredictor instead")

    def close(self) -> None:
        self.backend.close_all()


def _native(a: np.ndarray) -> Any:
    a = np.asarray(a)
    return int(a) if a.ndim == 0 else a
