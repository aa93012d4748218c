"""A latent critic: the adversarial term that keeps a 1-step sample sharp.

A few-step flow model trained by regression predicts the mean of the frames that could come next;
from one Euler step that mean is a blur, and a rollout of blurs dissolves into flat colour. A critic
that sees (previous frame, candidate next frame, action) and learns to tell real next frames from
the model's 1-step samples gives the dynamics model a gradient toward *one* sharp, plausible frame
that follows the action, instead of the average of all of them (the adversarial post-training idea
of few-step video generators, applied to the latent grid).

The critic is small (two strided convolutions over the 8x8 latent grid, spectral norm, a projection
of the action onto its features) and costs a few percent of a DiT step. `Adversary` owns it and its
own optimiser: `flow_loss` calls `update` with detached samples (one critic step, hinge loss) and
adds `generator_loss` (its gradient flows into the dynamics model only) to the flow loss. Its state
is saved with the run's training state, so a resumed run continues exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from reverie.models.dreams import DreamPool

CRITIC_PREFIX = "critic/"  # its tensors in a run's training state


class LatentCritic(nn.Module):
    """Per-cell realness logits of next latent frame z given the previous frame and the action."""

    def __init__(self, channels: int, action_type: str, num_actions: int, action_dim: int, width: int = 64):
        super().__init__()
        self.action_type = action_type
        self.inp = spectral_norm(nn.Conv2d(2 * channels, width, 3, padding=1))
        self.down = spectral_norm(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1))
        self.mid = spectral_norm(nn.Conv2d(2 * width, 2 * width, 3, padding=1))
        self.out = spectral_norm(nn.Conv2d(2 * width, 1, 1))
        # projection conditioning: the action's embedding dotted with the features at every cell
        self.embed: nn.Module | None = None
        if action_type == "discrete":
            self.embed = spectral_norm(nn.Embedding(num_actions, 2 * width))
        elif action_type == "box":
            self.embed = spectral_norm(nn.Linear(action_dim, 2 * width))

    def forward(self, prev: torch.Tensor, z: torch.Tensor, act: torch.Tensor | None) -> torch.Tensor:
        """prev, z: (N, C, h, w); act: (N,) int or (N, D) float; -> logits (N, h', w')."""
        act_ = nn.functional.leaky_relu
        h = act_(self.inp(torch.cat([prev, z], 1)), 0.2)  # (N, W, h, w)
        h = act_(self.down(h), 0.2)  # (N, 2W, h/2, w/2)
        h = act_(self.mid(h), 0.2)
        logits = self.out(h)[:, 0]  # (N, h/2, w/2)
        if self.embed is not None and act is not None:
            a = act.long() if self.action_type == "discrete" else act.float().flatten(1)
            e = self.embed(a)  # (N, 2W)
            logits = logits + torch.einsum("nc,nchw->nhw", e, h) / h.shape[1] ** 0.5
        return logits


class Adversary:
    """A `LatentCritic` with its own AdamW (constant lr, betas 0.5/0.9 as GANs like), and optionally
    the free-running dreams (reverie/models/dreams.py) whose frames it judges beside the batch's."""

    def __init__(self, critic: LatentCritic, lr: float, dreams: DreamPool | None = None) -> None:
        self.critic = critic
        self.opt = torch.optim.AdamW(critic.parameters(), lr=lr, betas=(0.5, 0.9), weight_decay=0.0)
        self.dreams = dreams

    @classmethod
    def for_model(cls, model_cfg: Any, lr: float, dreams: DreamPool | None = None) -> Adversary:
        """An adversary for a dynamics config (latent channels and action space)."""
        critic = LatentCritic(
            model_cfg.latent_channels,
            model_cfg.action_type,
            getattr(model_cfg, "num_actions", 1),
            getattr(model_cfg, "action_dim", 0),
        )
        return cls(critic, lr, dreams)

    def _logits(self, prev: torch.Tensor, z: torch.Tensor, act: torch.Tensor | None) -> torch.Tensor:
        with torch.autocast(z.device.type, enabled=False):  # tiny: fp32 keeps spectral norm exact
            return self.critic(prev.float(), z.float(), act)

    def update(
        self,
        prev: torch.Tensor,
        real: torch.Tensor,
        fake: torch.Tensor,
        act: torch.Tensor | None,
        dream: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None,
    ) -> dict[str, float]:
        """One critic step (hinge loss) on real and detached fake next frames; its metrics.

        dream: more fakes with their own (previous frame, next frame, action), judged beside `fake`."""
        self.critic.train()
        self.critic.requires_grad_(True)
        with torch.enable_grad():
            d_real = self._logits(prev, real, act)
            d_fake = self._logits(prev, fake.detach(), act)
            d_all = d_fake
            if dream is not None:
                d_dream = self._logits(dream[0], dream[1].detach(), dream[2])
                d_all = torch.cat([d_fake, d_dream])
            loss = nn.functional.relu(1 - d_real).mean() + nn.functional.relu(1 + d_all).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
        self.opt.step()
        metrics = {
            "critic_loss": float(loss.detach()),
            "critic_real": float(d_real.detach().mean()),
            "critic_fake": float(d_fake.detach().mean()),
        }
        if dream is not None:
            metrics["critic_dream"] = float(d_dream.detach().mean())
        return metrics

    def generator_loss(
        self, prev: torch.Tensor, fake: torch.Tensor, act: torch.Tensor | None
    ) -> torch.Tensor:
        """-critic(fake): its gradient reaches the samples (and the dynamics model), not the critic."""
        self.critic.requires_grad_(False)
        try:
            return -self._logits(prev, fake, act).mean()
        finally:
            self.critic.requires_grad_(True)

    # -- exact resume: the critic's weights and optimiser travel with the run's training state ----
    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        from reverie.checkpoint import flatten_optimizer

        opt_tensors, opt_json = flatten_optimizer(self.opt)
        tensors = {f"{CRITIC_PREFIX}model/{k}": v for k, v in self.critic.state_dict().items()}
        tensors |= {f"{CRITIC_PREFIX}{k}": v for k, v in opt_tensors.items()}
        if self.dreams is not None:
            tensors |= self.dreams.state_tensors(f"{CRITIC_PREFIX}dreams/")
        return tensors, opt_json

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
        from reverie.checkpoint import restore_optimizer

        pre = f"{CRITIC_PREFIX}model/"
        self.critic.load_state_dict({k[len(pre) :]: v for k, v in tensors.items() if k.startswith(pre)})
        opt = {k[len(CRITIC_PREFIX) :]: v for k, v in tensors.items() if k.startswith(CRITIC_PREFIX + "opt/")}
        restore_optimizer(self.opt, opt, info)
        if self.dreams is not None:
            self.dreams.load_state_tensors(tensors, f"{CRITIC_PREFIX}dreams/")
