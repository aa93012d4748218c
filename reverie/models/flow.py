"""Rectified-flow objective with diffusion forcing (one noise level per frame).

x_t = (1 - t) x0 + t eps, the network predicts v = eps - x0; t = 0 is clean, t = 1 pure noise.
Per-frame levels are drawn two ways, mixed per window:
  * independent (diffusion forcing): every frame its own logit-normal t, so any mix of clean, noisy
    and missing frames is in-distribution (in-fill, extension, several futures);
  * next-frame: a random prefix is "context", clean up to a small augmentation level in
    [0, context_noise_max] (the anti-drift trick: at play time context frames are kept slightly noisy,
    so the model never learns to trust them exactly), the rest logit-normal.
Context frames carry almost no signal about eps, so they are left out of the loss.
Text and action are dropped (replaced by their learned null embeddings) for classifier-free guidance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class FlowConfig:
    t_mean: float = 0.0  # logit-normal t: sigmoid(N(mean, std))
    t_std: float = 1.0
    p_uniform_t: float = 0.2  # mixed-in uniform t: few-step sampling queries t = 1 and 1/2 exactly
    p_next_frame: float = 0.5  # fraction of windows drawn in the next-frame (prefix context) layout
    context_noise_max: float = 0.1
    p_drop_text: float = 0.1
    p_drop_act: float = 0.1


def sample_t(
    shape: tuple[int, ...], cfg: FlowConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    return torch.sigmoid(cfg.t_mean + cfg.t_std * torch.randn(shape, generator=generator))


def noise_levels(
    B: int, T: int, cfg: FlowConfig, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame t (B, T) and the loss mask (B, T): False on augmented context frames."""
    t = sample_t((B, T), cfg, generator)
    next_frame = torch.rand(B, generator=generator) < cfg.p_next_frame
    # Prefix length k in [1, T-1]: frames < k are context (a window of one frame has none).
    k = (torch.rand(B, generator=generator) * max(T - 1, 0)).long() + 1
    is_ctx = next_frame[:, None] & (torch.arange(T)[None, :] < k[:, None])
    ctx_t = torch.rand(B, T, generator=generator) * cfg.context_noise_max
    return torch.where(is_ctx, ctx_t, t), ~is_ctx


def flow_loss(
    model: nn.Module,
    z: torch.Tensor,
    act: torch.Tensor | None,
    text: torch.Tensor | None,
    cfg: FlowConfig,
    *,
    text_null: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean squared velocity error over the non-context frames of clean latent windows z (B, T, C, h, w)."""
    B, T = z.shape[:2]
    t, weight = noise_levels(B, T, cfg, generator)
    t, weight = t.to(z.device), weight.to(z.device)
    eps = torch.randn(z.shape, generator=generator).to(z.device)
    tt = t[:, :, None, None, None]
    x_t = (1 - tt) * z + tt * eps  # (B, T, C, h, w)
    drop_text = (torch.rand(B, generator=generator) < cfg.p_drop_text).to(z.device)[:, None].expand(B, T)
    if text_null is not None:  # frames without a caption always use the null text
        drop_text = drop_text | (text_null if text_null.dim() == 2 else text_null[:, None])
    act_null = (torch.rand(B, generator=generator) < cfg.p_drop_act).to(z.device)[:, None].expand(B, T)
    v = model(x_t, t, act, text, act_null=act_null, text_null=drop_text)
    per_frame = (v.float() - (eps - z)).pow(2).mean(dim=(2, 3, 4))  # (B, T)
    w = weight.float()
    loss = (per_frame * w).sum() / w.sum().clamp_min(1.0)
    # x0 error of the predicted clean frame, comparable across t (what sampling quality depends on).
    x0_err = ((x_t - tt * v.float() - z).pow(2).mean(dim=(2, 3, 4)) * w).sum() / w.sum().clamp_min(1.0)
    return loss, {"loss": float(loss.detach()), "x0_mse": float(x0_err.detach())}
