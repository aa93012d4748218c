"""The frame-stack dynamics model: a convolutional denoiser over the latent grid, past frames as channels.

The bake-off candidate beside the DiT (docs/bakeoff.md). One network evaluation denoises one new
frame: its noisy latent x_t (C, h, w) is stacked with the K context latents before it (K*C channels,
each lightly noised as at play time, plus one validity plane per context slot so a session that has
seen fewer than K frames, or none, is in-distribution) and passed through a small U-Net. Everything
that is not a picture enters through one conditioning vector per sample, applied by adaptive group
norm in every residual block: the new frame's noise level, the context noise level, the actions
of the context frames and of the new frame (one embedding table per position), and the text.

Why this shape on a CPU: turning is a horizontal shift and walking a zoom, which convolutions learn
cheaply; there is no KV cache to keep, and a training sample is exactly a play step (K context frames
and one target), so no loss is spent on layouts play never uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reverie.errors import ReverieError
from reverie.models.dit import ACTION_TYPES, mlp, timestep_embedding
from reverie.typed_config import config_from_dict


@dataclass
class FrameStackConfig:
    family: str = "framestack"  # tells a saved frame-stack config from a DiT one
    latent_channels: int = 12  # channels of z; set from the autoencoder by the training task
    width: int = 128  # channels at the full latent grid
    mults: tuple[int, ...] = (1, 2, 2)  # channel multiplier per level; each level below halves the grid
    blocks: int = 2  # residual blocks per level
    cond_dim: int = 256  # width of the noise-level + action + text embedding that modulates each block
    action_type: str = "discrete"  # "discrete" | "box" | "none" (video)
    num_actions: int = 9  # discrete: n (index n is the learned null action used for guidance)
    action_dim: int = 0  # box: flattened action size
    text_dim: int = 384  # sentence-embedding size; set from the text encoder
    text_encoder: str = "hash"  # which reverie.models.text encoder produced the embeddings
    max_context: int = 8  # K: context frames stacked as channels

    def __post_init__(self) -> None:
        self.mults = tuple(int(m) for m in self.mults)
        if self.family != "framestack":
            raise ReverieError(f"a frame-stack config has family 'framestack', got {self.family!r}")
        if self.action_type not in ACTION_TYPES:
            raise ReverieError(f"bad action_type {self.action_type!r}: accepted: {', '.join(ACTION_TYPES)}")
        if self.max_context < 1 or not self.mults or self.width % 8:
            raise ReverieError(
                "a frame-stack model needs max_context >= 1, some levels and a width divisible by 8"
            )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrameStackConfig:
        return config_from_dict(cls, d, "frame-stack config")


class AdaGroupNorm(nn.Module):
    """Group norm whose scale and shift come from the conditioning vector (zero-initialised: plain GN)."""

    def __init__(self, ch: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(8, ch, affine=False)
        self.ada = nn.Linear(cond_dim, 2 * ch)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        scale, shift = self.ada(c)[:, :, None, None].chunk(2, dim=1)  # (B, ch, 1, 1) each
        return self.norm(x) * (1 + scale) + shift


class ResBlock(nn.Module):
    def __init__(self, ch_in: int, ch_out: int, cond_dim: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = AdaGroupNorm(ch_in, cond_dim), AdaGroupNorm(ch_out, cond_dim)
        self.conv1 = nn.Conv2d(ch_in, ch_out, 3, padding=1)
        self.conv2 = nn.Conv2d(ch_out, ch_out, 3, padding=1)
        self.skip = nn.Conv2d(ch_in, ch_out, 1) if ch_in != ch_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)  # every block starts as the identity
        nn.init.zeros_(self.conv2.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x, c)))
        h = self.conv2(F.silu(self.norm2(h, c)))
        return self.skip(x) + h


class GridAttention(nn.Module):
    """Self-attention over the cells of the coarsest grid (a few dozen tokens): global mixing, cheaply."""

    def __init__(self, ch: int, cond_dim: int, heads: int = 4) -> None:
        super().__init__()
        self.norm = AdaGroupNorm(ch, cond_dim)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.out = nn.Conv2d(ch, ch, 1)
        self.heads = heads
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        B, C, h, w = x.shape
        q, k, v = self.qkv(self.norm(x, c)).view(B, 3, self.heads, C // self.heads, h * w).unbind(1)
        att = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.out(att.transpose(-1, -2).reshape(B, C, h, w))


class FrameStack(nn.Module):
    def __init__(self, cfg: FrameStackConfig) -> None:
        super().__init__()
        self.cfg = cfg
        C, K, D, W = cfg.latent_channels, cfg.max_context, cfg.cond_dim, cfg.width
        self.t_embed = mlp(256, D)
        self.ctx_t_embed = mlp(256, D)
        if cfg.action_type == "discrete":  # one table per position (K context frames + the new one)
            self.act_embed: nn.Module = nn.Embedding((K + 1) * (cfg.num_actions + 1), D)
        elif cfg.action_type == "box":
            self.act_embed = mlp((K + 1) * (cfg.action_dim + 1), D)
        self.null_text = nn.Parameter(torch.zeros(cfg.text_dim))
        self.text_embed = mlp(cfg.text_dim, D)
        self.conv_in = nn.Conv2d(C + K * C + K, W, 3, padding=1)
        chans = [W * m for m in cfg.mults]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        ch = W
        skips = []
        for i, co in enumerate(chans):
            for _ in range(cfg.blocks):
                self.down.append(ResBlock(ch, co, D))
                ch = co
                skips.append(ch)
            if i < len(chans) - 1:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
        self.mid = nn.ModuleList([ResBlock(ch, ch, D), GridAttention(ch, D), ResBlock(ch, ch, D)])
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, co in reversed(list(enumerate(chans))):
            for _ in range(cfg.blocks):
                self.up.append(ResBlock(ch + skips.pop(), co, D))
                ch = co
            if i > 0:
                self.upsample.append(nn.Conv2d(ch, ch, 3, padding=1))
        self.norm_out = AdaGroupNorm(ch, D)
        self.conv_out = nn.Conv2d(ch, C, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)  # type: ignore[arg-type]

    def condition(
        self,
        t: torch.Tensor,
        ctx_t: torch.Tensor,
        act: torch.Tensor | None,
        act_null: torch.Tensor | None,
        text: torch.Tensor | None,
        text_null: torch.Tensor | None,
    ) -> torch.Tensor:
        """(B, cond_dim) from the new frame's level t (B,), the context level (B,), actions (B, K+1[, D]), text."""
        cfg = self.cfg
        B = t.shape[0]
        wd = self.conv_in.weight.dtype
        c = self.t_embed(timestep_embedding(t, 256).to(wd)) + self.ctx_t_embed(
            timestep_embedding(ctx_t, 256).to(wd)
        )
        K1 = cfg.max_context + 1
        if cfg.action_type == "discrete":
            n1 = cfg.num_actions + 1
            idx = act.long() if act is not None else torch.full((B, K1), cfg.num_actions, device=t.device)
            if act_null is not None:  # (B, K+1) or (B,): dropped actions are the null index
                null = act_null if act_null.dim() == 2 else act_null[:, None].expand(B, K1)
                idx = torch.where(null, torch.full_like(idx, cfg.num_actions), idx)
            c = c + self.act_embed(idx + n1 * torch.arange(K1, device=t.device)).sum(1)
        elif cfg.action_type == "box":
            a = (
                torch.zeros(B, K1, cfg.action_dim, device=t.device)
                if act is None
                else act.view(B, K1, -1).float()
            )
            keep = (
                torch.ones(B, K1, 1, device=t.device)
                if act is not None
                else torch.zeros(B, K1, 1, device=t.device)
            )
            if act_null is not None:
                null = act_null if act_null.dim() == 2 else act_null[:, None].expand(B, K1)
                keep = keep * (~null)[..., None].float()
            c = c + self.act_embed(torch.cat([a * keep, keep], -1).view(B, -1).to(wd))
        if text is None:
            emb = self.null_text.expand(B, -1)
        else:
            emb = text.to(wd)
            if text_null is not None:
                emb = torch.where(text_null[:, None], self.null_text.to(emb.dtype), emb)
        return c + self.text_embed(emb)

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        ctx: torch.Tensor,
        ctx_t: torch.Tensor,
        valid: torch.Tensor,
        act: torch.Tensor | None = None,
        text: torch.Tensor | None = None,
        *,
        act_null: torch.Tensor | None = None,
        text_null: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Velocity (B, C, h, w) of the new frame x_t (B, C, h, w) at level t (B,).

        ctx: (B, K, C, h, w) context latents, oldest first, already noised to level ctx_t (B,); valid
        (B, K) bool marks real context frames (the rest are ignored); act (B, K+1) or (B, K+1, D):
        the actions that led to each context frame and to the new frame; text (B, E).
        """
        B, _, h, w = x_t.shape
        wd = self.conv_in.weight.dtype
        v = valid.to(wd)[:, :, None, None, None]
        planes = valid.to(wd)[:, :, None, None].expand(B, -1, h, w)
        x = torch.cat([x_t.to(wd), (ctx.to(wd) * v).flatten(1, 2), planes], 1)  # (B, C + K*C + K, h, w)
        c = self.condition(t, ctx_t, act, act_null, text, text_null)
        x = self.conv_in(x)
        nb, levels = self.cfg.blocks, len(self.cfg.mults)
        skips: list[torch.Tensor] = []
        sizes: list[tuple[int, int]] = []
        for lv in range(levels):
            for block in self.down[lv * nb : (lv + 1) * nb]:
                x = block(x, c)
                skips.append(x)
            if lv < levels - 1:
                sizes.append((x.shape[-2], x.shape[-1]))
                x = self.downsample[lv](x)  # (B, ch, ceil(h/2), ceil(w/2)): odd grids round up
        for m in self.mid:
            x = m(x, c)
        for n in range(levels):  # coarsest level first
            if n:  # back up to the finer grid this level's skips came from
                x = self.upsample[n - 1](F.interpolate(x, size=sizes.pop(), mode="nearest"))
            for block in self.up[n * nb : (n + 1) * nb]:
                x = block(torch.cat([x, skips.pop()], 1), c)
        return self.conv_out(F.silu(self.norm_out(x, c))).float()

    def num_params(self) -> int:
        return sum(q.numel() for q in self.parameters())


PRESETS: dict[str, FrameStackConfig] = {
    "conv-tiny": FrameStackConfig(width=32, mults=(1, 2), blocks=1, cond_dim=64, max_context=4),
    "conv-small": FrameStackConfig(width=64, mults=(1, 2, 2), blocks=2, cond_dim=256, max_context=8),
}


def preset(name: str, **overrides: Any) -> FrameStackConfig:
    if name not in PRESETS:
        raise ReverieError(f"unknown frame-stack preset {name!r}; accepted: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)


def config_dict(cfg: FrameStackConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["mults"] = list(cfg.mults)
    return d
