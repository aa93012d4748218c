"""The critic: the adversarial term that keeps a 1-step sample sharp.

A few-step flow model trained by regression predicts the mean of the frames that could come next;
from one Euler step that mean is a blur, and a rollout of blurs dissolves into flat colour. A critic
that sees (previous frame, candidate next frame, action) and learns to tell real next frames from
the model's 1-step samples gives the dynamics model a gradient toward *one* sharp, plausible frame
that follows the action, instead of the average of all of them (the adversarial post-training idea
of few-step video generators, applied to the latent grid).

The latent critic is small (two strided convolutions over the 8x8 latent grid, spectral norm, a
projection of the action onto its features) and costs a few percent of a DiT step. It judges latents
it cannot see as pictures: the detail it asks for decodes to round blotches that real frames never
have. `PixelCritic` judges the frames themselves, decoded by the frozen autoencoder decoder (a patch
critic over 64x64 pixels, the same conditioning), so the detail it asks for is the picture's; its
gradient reaches the latents through the decoder. Unpaired (a frame alone), the pixel critic is the
decoder's: `reverie train autoencoder --set loss.adv_weight=...` asks the decoder to draw every
latent, the dynamics model's blurred predictions included, as patches that look like the world's.

`Adversary` owns either critic and its own optimiser: `flow_loss` calls `update` with detached
samples (one critic step, hinge loss) and adds `generator_loss` (its gradient flows into the dynamics
model only) to the flow loss. Its state is saved with the run's training state, so a resumed run
continues exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from reverie.models.dreams import DreamPool

CRITIC_PREFIX = "critic/"  # its tensors in a run's training state
# Decoded frames are scaled by this before the pixel critic: a real and a generated frame differ by
# ~0.08 RMS in [-1, 1], and a spectral-normalised critic (each layer at most 1-Lipschitz) is slow to
# reach the hinge margin on differences that small. Measured on 96 fixed pairs of the 1-step model,
# 150 critic steps: held-out accuracy 0.67 at gain 1, 0.75 at gain 4.
PIXEL_GAIN = 4.0


def _action_embedding(action_type: str, num_actions: int, action_dim: int, width: int) -> nn.Module | None:
    """Projection conditioning: the action's embedding is dotted with the critic's features."""
    if action_type == "discrete":
        return spectral_norm(nn.Embedding(num_actions, width))
    if action_type == "box":
        return spectral_norm(nn.Linear(action_dim, width))
    return None


def _project(
    logits: torch.Tensor, h: torch.Tensor, embed: nn.Module | None, action_type: str, act: torch.Tensor | None
) -> torch.Tensor:
    """logits (N, h, w) plus the action's embedding dotted with the features h (N, W, h, w) at every cell."""
    if embed is None or act is None:
        return logits
    a = act.long() if action_type == "discrete" else act.float().flatten(1)
    e = embed(a)  # (N, W)
    return logits + torch.einsum("nc,nchw->nhw", e, h) / h.shape[1] ** 0.5


class LatentCritic(nn.Module):
    """Per-cell realness logits of next latent frame z given the previous frame and the action."""

    def __init__(self, channels: int, action_type: str, num_actions: int, action_dim: int, width: int = 64):
        super().__init__()
        self.action_type = action_type
        self.inp = spectral_norm(nn.Conv2d(2 * channels, width, 3, padding=1))
        self.down = spectral_norm(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1))
        self.mid = spectral_norm(nn.Conv2d(2 * width, 2 * width, 3, padding=1))
        self.out = spectral_norm(nn.Conv2d(2 * width, 1, 1))
        self.embed = _action_embedding(action_type, num_actions, action_dim, 2 * width)

    def forward(self, prev: torch.Tensor, z: torch.Tensor, act: torch.Tensor | None) -> torch.Tensor:
        """prev, z: (N, C, h, w); act: (N,) int or (N, D) float; -> logits (N, h', w')."""
        act_ = nn.functional.leaky_relu
        h = act_(self.inp(torch.cat([prev, z], 1)), 0.2)  # (N, W, h, w)
        h = act_(self.down(h), 0.2)  # (N, 2W, h/2, w/2)
        h = act_(self.mid(h), 0.2)
        logits = self.out(h)[:, 0]  # (N, h/2, w/2)
        return _project(logits, h, self.embed, self.action_type, act)


class PixelCritic(nn.Module):
    """Per-patch realness logits of a decoded next frame given the decoded previous frame and the
    action: three strided 4x4 convolutions (a patch critic; each logit sees 38x38 pixels).

    `paired=False` judges a frame alone (no previous frame, no action): the critic of a decoder,
    which asks only that each patch look like the world's."""

    def __init__(
        self, action_type: str, num_actions: int, action_dim: int, width: int = 32, paired: bool = True
    ):
        super().__init__()
        self.action_type, self.paired = action_type, paired
        self.inp = spectral_norm(nn.Conv2d(6 if paired else 3, width, 4, stride=2, padding=1))
        self.down1 = spectral_norm(nn.Conv2d(width, 2 * width, 4, stride=2, padding=1))
        self.down2 = spectral_norm(nn.Conv2d(2 * width, 4 * width, 4, stride=2, padding=1))
        self.mid = spectral_norm(nn.Conv2d(4 * width, 4 * width, 3, padding=1))
        self.out = spectral_norm(nn.Conv2d(4 * width, 1, 1))
        self.embed = _action_embedding(action_type, num_actions, action_dim, 4 * width)

    def forward(self, prev: torch.Tensor | None, x: torch.Tensor, act: torch.Tensor | None) -> torch.Tensor:
        """prev, x: (N, 3, H, W) frames about [-1, 1] (prev None when not paired); act: (N,) int or
        (N, D) float; -> (N, H/8, W/8)."""
        act_ = nn.functional.leaky_relu
        if (prev is not None) != self.paired:
            raise ValueError(f"this critic is {'' if self.paired else 'not '}paired: prev must "
                             f"{'be given' if self.paired else 'be None'}")  # fmt: skip
        inp = torch.cat([prev, x], 1) if prev is not None else x
        h = act_(self.inp(inp * PIXEL_GAIN), 0.2)  # (N, W, H/2, W/2)
        h = act_(self.down1(h), 0.2)  # (N, 2W, H/4, W/4)
        h = act_(self.down2(h), 0.2)  # (N, 4W, H/8, W/8)
        h = act_(self.mid(h), 0.2)
        return _project(self.out(h)[:, 0], h, self.embed, self.action_type, act)


class Adversary:
    """A critic with its own AdamW (constant lr, betas 0.5/0.9 as GANs like), and optionally the
    free-running dreams (reverie/models/dreams.py) whose frames it judges beside the batch's.

    With a `decoder` (normalised latents (N, C, h, w) -> frames (N, 3, H, W), frozen) the critic is a
    `PixelCritic` and every latent it is handed is decoded first; the same latent tensor is decoded
    once per training step (the critic's update and the generator loss share it)."""

    def __init__(
        self,
        critic: nn.Module,
        lr: float,
        dreams: DreamPool | None = None,
        decoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.critic = critic
        self.opt = torch.optim.AdamW(critic.parameters(), lr=lr, betas=(0.5, 0.9), weight_decay=0.0)
        self.dreams = dreams
        self.decoder = decoder
        self._decoded: list[tuple[torch.Tensor, torch.Tensor]] = []  # (latents, their frames) this step

    @classmethod
    def for_model(
        cls,
        model_cfg: Any,
        lr: float,
        dreams: DreamPool | None = None,
        decoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> Adversary:
        """An adversary for a dynamics config (latent channels and action space); with a decoder,
        one that judges decoded frames."""
        space = (
            model_cfg.action_type,
            getattr(model_cfg, "num_actions", 1),
            getattr(model_cfg, "action_dim", 0),
        )
        if decoder is not None:
            return cls(PixelCritic(*space), lr, dreams, decoder)
        return cls(LatentCritic(model_cfg.latent_channels, *space), lr, dreams)

    def _frames(self, z: torch.Tensor) -> torch.Tensor:
        """z decoded, remembered by identity until `generator_loss` ends the step (a latent that needs
        no gradient is decoded without one; the critic's own steps detach the frames)."""
        assert self.decoder is not None
        for src, px in self._decoded:
            if src is z:
                return px
        with torch.set_grad_enabled(z.requires_grad):
            px = self.decoder(z)
        self._decoded = [*self._decoded[-7:], (z, px)]
        return px

    def _logits(
        self, prev: torch.Tensor | None, z: torch.Tensor, act: torch.Tensor | None, detach: bool = False
    ) -> torch.Tensor:
        if self.decoder is not None:
            prev, z = (self._frames(prev) if prev is not None else None), self._frames(z)
        if detach:
            z = z.detach()
        with torch.autocast(z.device.type, enabled=False):  # tiny: fp32 keeps spectral norm exact
            return self.critic(prev.detach().float() if prev is not None else None, z.float(), act)

    def update(
        self,
        prev: torch.Tensor | None,
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
            d_real = self._logits(prev, real, act, detach=True)
            d_fake = self._logits(prev, fake, act, detach=True)
            d_all = d_fake
            if dream is not None:
                d_dream = self._logits(dream[0], dream[1], dream[2], detach=True)
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
        self, prev: torch.Tensor | None, fake: torch.Tensor, act: torch.Tensor | None
    ) -> torch.Tensor:
        """-critic(fake): its gradient reaches the samples (and the dynamics model), not the critic."""
        self.critic.requires_grad_(False)
        try:
            return -self._logits(prev, fake, act).mean()
        finally:
            self.critic.requires_grad_(True)
            self._decoded = []  # the step is over: its frames are not needed again

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
