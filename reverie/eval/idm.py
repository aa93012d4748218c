"""Action accuracy: an inverse-dynamics classifier (IDM) judges whether generated frames obey actions.

A small CNN reads a frame pair (obs_t, obs_t+1) and predicts the discrete action that led from one
to the other. It is trained on real pairs from the simulator under the exploration policy; its
accuracy on held-out real pairs is the ceiling to read the generated-pair accuracy against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

__all__ = ["IDMConfig", "InverseDynamics", "pairs_from_episodes", "train_idm"]


@dataclass
class IDMConfig:
    width: int = 32  # channels of the first conv; doubled per stage
    steps: int = 400  # Adam steps
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0


class InverseDynamics(nn.Module):
    def __init__(self, num_actions: int, width: int = 32) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(9, w, 4, 2, 1),
            nn.GroupNorm(8, w),
            nn.GELU(),
            nn.Conv2d(w, 2 * w, 4, 2, 1),
            nn.GroupNorm(8, 2 * w),
            nn.GELU(),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1),
            nn.GroupNorm(8, 4 * w),
            nn.GELU(),
            # any frame size: the pooled map keeps a coarse layout, which turning vs moving needs
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(16 * 4 * w, num_actions),
        )

    def forward(self, prev: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        """prev, nxt uint8 (B, H, W, 3) -> logits (B, num_actions)."""
        a = prev.permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (B, 3, H, W)
        b = nxt.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        # The change itself as input: without it the net must learn to subtract, and learnt ~2x slower.
        return self.net(torch.cat([a, b, b - a], 1))  # (B, 9, H, W) -> (B, num_actions)

    @torch.no_grad()
    def hits(self, prev: np.ndarray, nxt: np.ndarray, act: np.ndarray) -> np.ndarray:
        """Whether each pair's predicted action is the commanded one: (N,) bool."""
        self.eval()
        logits = self(
            torch.from_numpy(np.ascontiguousarray(prev)), torch.from_numpy(np.ascontiguousarray(nxt))
        )
        return np.asarray(logits.argmax(-1).numpy() == np.asarray(act).reshape(-1))

    @torch.no_grad()
    def accuracy(self, prev: np.ndarray, nxt: np.ndarray, act: np.ndarray, batch: int = 256) -> float:
        self.eval()
        hits = 0
        for i in range(0, len(act), batch):
            logits = self(torch.from_numpy(prev[i : i + batch]), torch.from_numpy(nxt[i : i + batch]))
            hits += int((logits.argmax(-1).numpy() == act[i : i + batch]).sum())
        return hits / max(1, len(act))


def pairs_from_episodes(obs: np.ndarray, act: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (obs_t, obs_t+1, act_t+1) of episodes obs (B, T, H, W, 3), act (B, T), flattened."""
    prev = obs[:, :-1].reshape(-1, *obs.shape[2:])  # (B * (T-1), H, W, 3)
    nxt = obs[:, 1:].reshape(-1, *obs.shape[2:])
    return prev, nxt, act[:, 1:].reshape(-1).astype(np.int64)


def train_idm(
    prev: np.ndarray, nxt: np.ndarray, act: np.ndarray, num_actions: int, cfg: IDMConfig | None = None,
    progress: bool = False,
) -> InverseDynamics:  # fmt: skip
    cfg = cfg or IDMConfig()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = InverseDynamics(num_actions, cfg.width)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    prev_t, nxt_t, act_t = torch.from_numpy(prev), torch.from_numpy(nxt), torch.from_numpy(act)
    model.train()
    for _ in tqdm(range(cfg.steps), desc="train IDM", unit="step", disable=not progress):
        idx = torch.from_numpy(rng.integers(0, len(act), cfg.batch_size))
        loss = nn.functional.cross_entropy(model(prev_t[idx], nxt_t[idx]), act_t[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()
