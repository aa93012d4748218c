"""What the training loop needs from a model family: the contract between loop.py and each task.

The loop (reverie/train/loop.py) owns everything generic: threads, seeds, autocast, AdamW with warm-up
and cosine decay, clipping, EMA, DDP, the wall-clock budget, progress, TensorBoard and checkpoints.
A task owns what is specific to one model: building it, its batches, its loss and its samples.

Notes for task authors:
- `loss(model, ...)` may receive the model wrapped in DistributedDataParallel: compute the loss by
  *calling* it (its forward), since gradients are only synchronised through DDP's forward; use
  `unwrap(model)` for attributes and other methods (e.g. in `log_samples`).
- The loop re-seeds torch's global RNG from (seed, step, rank) before `batch` and `loss` of every
  step, so noise drawn with torch.randn / torch.rand is reproducible across a resume.
- Optional extra: `evaluate(model) -> dict[str, float]` (held-out metrics on the EMA model); when a
  task has it the loop calls it at every checkpoint and puts the numbers in TensorBoard and the card.
- Optional extra: `adversary` (a reverie.models.critic.Adversary or None, set by `build_model`): a
  critic with its own optimiser that the task's loss steps; the loop saves and restores its state
  with the run's training state (exact resume) and refuses it under DDP.
- Optional extra: `data_config() -> dict` (JSON-able: data path, world, size, held-out episodes);
  the loop stores it as "data" in config.json.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch
from torch import nn

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the model itself)."""
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


@runtime_checkable
class Task(Protocol):
    name: str  # "autoencoder" | "dynamics"

    def build_model(self) -> nn.Module:
        """The trained network (the loop wraps it in DDP and keeps an EMA copy)."""
        ...

    def batch(self, step: int, rank: int, world_size: int) -> dict[str, torch.Tensor]:
        """Deterministic in (seed, step, rank): exact resume needs no saved data position."""
        ...

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss and metrics; called inside the loop's autocast context."""
        ...

    def log_samples(self, model: nn.Module, writer: SummaryWriter, step: int) -> None:
        """TensorBoard images/videos (real | generated side by side); model is the EMA copy."""
        ...

    def model_config(self) -> dict:
        """JSON-able config to rebuild build_model() at load time."""
        ...

    def card(self) -> str:
        """Markdown: data, size, what it is (the loop adds steps/time/metrics)."""
        ...

    def frames_per_batch(self) -> int:
        """Frames consumed per step per rank (for frames/s)."""
        ...
