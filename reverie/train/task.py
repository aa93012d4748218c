"""What the training loop needs from a model family: the contract between loop.py and each task.

The loop (reverie/train/loop.py) owns everything generic: threads, seeds, autocast, AdamW with warm-up
and cosine decay, clipping, EMA, DDP, the wall-clock budget, progress, TensorBoard and checkpoints.
A task owns what is specific to one model: building it, its batches, its loss and its samples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch
from torch import nn

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


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
