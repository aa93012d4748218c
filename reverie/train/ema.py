"""Exponential moving average of a model's weights, the copy that gets saved, sampled and shipped."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def decay_at(self, step: int) -> float:
        # short runs would otherwise ship mostly the random initialisation
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = self.decay_at(step)
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1.0 - d)
        # buffers (e.g. the autoencoder's latent statistics) follow the trained model exactly
        for eb, b in zip(self.model.buffers(), model.buffers()):
            eb.copy_(b)
