"""The dynamics model: a diffusion transformer over spacetime patches of autoencoder latents.

Tokens are p x p patches of each frame's latent grid, laid out frame-major. Attention is causal across
frames and full within a frame (block-causal), positions are 3D RoPE over (t, y, x). Every frame has
its own noise level t (diffusion forcing), so one network does next-frame prediction, image-to-video,
extension and several futures: a frame's input may be clean, slightly noisy or pure noise. The noise
level, the action that led to the frame and the text enter per frame through adaLN-Zero.

Text enters as an adaLN vector (pooled sentence embedding -> MLP), not cross-attention: captions are
one sentence per frame, so attention over a pooled vector would be a single key (a softmax over one
item is a constant: just a projection, which adaLN already is); token-level cross-attention would
add q/out projections on every token, ~17% more block FLOPs (2 x 64 x d^2 on 12 x 64 x d^2) plus
~4 more ops per block, which at these sizes cost more than their FLOPs on a 2-core CPU.

With a `KVCache` the forward takes one or two new frames and attends to the cached keys/values of
earlier frames (a sliding window of max_context frames); within the window outputs equal the
uncached forward over the whole sequence (tests/test_dit.py checks it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from reverie.errors import ReverieError
from reverie.models.rope import Rope3D, apply_rope
from reverie.typed_config import config_from_dict

ACTION_TYPES = ("discrete", "box", "none")


@dataclass
class DiTConfig:
    latent_channels: int = 16  # channels of z; set from the autoencoder by the training task
    patch: int = 1  # p x p latent cells per token; 8x8 latents with p=1 give 64 tokens per frame
    dim: int = 256  # token width
    depth: int = 6  # transformer blocks
    heads: int = 4  # attention heads (dim must be a multiple)
    mlp_ratio: float = 4.0  # MLP hidden width / dim
    action_type: str = "discrete"  # "discrete" | "box" | "none" (video)
    num_actions: int = 9  # discrete: n (index n is the learned null action used for guidance)
    action_dim: int = 0  # box: flattened action size
    text_dim: int = 384  # sentence-embedding size; set from the text encoder
    text_encoder: str = "hash"  # which reverie.models.text encoder produced the embeddings
    max_context: int = 16  # frames kept in the KV cache (and the training window)
    rope_theta: float = 10000.0  # base of the rotary position frequencies (time, row, column)
    # Through the adaLN vector like the noise level: trained with flow.context_blur_max, played at
    # sampler.context_blur (the model's own frames; given ones 0), so a real sharp frame and the model's
    # own blurred one need not look alike.
    blur_input: bool = False  # the network is told each frame's context blur level in [0, 1]

    def __post_init__(self) -> None:
        if self.action_type not in ACTION_TYPES:
            raise ReverieError(f"bad action_type {self.action_type!r}: accepted: {', '.join(ACTION_TYPES)}")
        if self.dim % self.heads:
            raise ReverieError(f"dim {self.dim} is not a multiple of heads {self.heads}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DiTConfig:
        return config_from_dict(cls, d, "dynamics config")


class KVCache:
    """Keys/values of the last `max_frames` committed frames for every block, in time order.

    A cached forward takes up to MAX_NEW frames after the committed ones (the sampler commits the
    last generated frame in the same pass as the first denoising step of the next: one pass per frame
    instead of two), or more where they fit in the buffer as it is (a prefill of a fresh cache). Frames sit in time order in a buffer of 2 * max_frames + MAX_NEW slots, so the
    keys each new frame may see (its last max_frames frames and itself) are one contiguous view:
    no attention mask, no copy. When the buffer fills, the live frames move back to the start (one
    copy every ~max_frames frames). Keys are stored rotated at their absolute frame index.
    """

    MAX_NEW = 2

    def __init__(self, depth: int, max_frames: int) -> None:
        self.depth = depth
        self.max_frames = max_frames
        self.slots = 2 * max_frames + self.MAX_NEW
        self.k: list[torch.Tensor | None] = [None] * depth
        self.v: list[torch.Tensor | None] = [None] * depth
        self.count = 0  # committed frames since reset (also the next frame's absolute index)
        self.base = 0  # absolute index of the frame in slot 0
        # Per cache row, how far its own frame clock runs ahead of `count` (None: every row on the
        # batch's clock). A row built on its own, away from the batch (a joining player's, prefilled
        # on another thread), keeps its keys rotated at its own positions: RoPE only sees offsets.
        self.offset: torch.Tensor | None = None

    @property
    def context_frames(self) -> int:
        return min(self.count, self.max_frames)

    def update(
        self, layer: int, k: torch.Tensor, v: torch.Tensor, T: int
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Write T new frames' k, v (B, H, T*N, hd); return the (k, v) views each new frame attends to."""
        B, H, L, hd = k.shape
        N = L // T
        buf_k, buf_v = self.k[layer], self.v[layer]
        if (
            buf_k is None
            or buf_v is None
            or buf_k.shape != (B, H, self.slots * N, hd)
            or buf_k.dtype != k.dtype
        ):
            if self.count > 0:
                raise RuntimeError("KV cache batch, frame size or dtype changed mid-rollout; call reset()")
            buf_k = k.new_zeros(B, H, self.slots * N, hd)
            buf_v = v.new_zeros(B, H, self.slots * N, hd)
            self.k[layer], self.v[layer] = buf_k, buf_v
        base = self.base
        if self.count + T - base > self.slots:  # full: keep the live frames, move them to the front
            keep = self.count - self.max_frames
            lo, n = (keep - base) * N, self.max_frames * N
            buf_k[:, :, :n] = buf_k[:, :, lo : lo + n].clone()
            buf_v[:, :, :n] = buf_v[:, :, lo : lo + n].clone()
            base = keep
            if layer == self.depth - 1:  # every block moves its own buffer in this same pass
                self.base = base
        s = (self.count - base) * N
        buf_k[:, :, s : s + L] = k
        buf_v[:, :, s : s + L] = v
        views = []
        for j in range(T):
            frame = self.count + j
            lo = (max(base, frame - self.max_frames) - base) * N  # a cache may start mid-clock
            hi = (frame + 1 - base) * N
            views.append((buf_k[:, :, lo:hi], buf_v[:, :, lo:hi]))
        return views

    def commit(self, frames: int = 1) -> None:
        """The last forward wrote `frames` context frames: keep them."""
        self.count += frames


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of t in [0, 1] (any shape) -> (..., dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[..., None] * 1000.0 * freqs
    return torch.cat([args.cos(), args.sin()], dim=-1)


def mlp(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out), nn.SiLU(), nn.Linear(d_out, d_out))


LAYOUTS = ("causal", "play")

# For each frame of a sequence, in order, the frame ranges [lo, hi) its tokens attend to.
KeyPlan = tuple[tuple[tuple[int, int], ...], ...]


@lru_cache(maxsize=64)
def key_plan(layout: str, T: int) -> KeyPlan:
    """The attention pattern of `layout` over T frames, as frame ranges per query frame.

    causal: frame i sees frames <= i (full attention within a frame). play: [context | target] halves of
    T/2 frames each; context frame i sees context frames <= i, target frame i sees context frames < i
    and itself, which is what the sampler gives a new frame at play time.
    """
    if layout == "causal":
        return tuple(((0, i + 1),) for i in range(T))
    half = T // 2  # play: [context frames | target frames]
    ctx = tuple(((0, i + 1),) for i in range(half))
    tgt = tuple(((0, i), (half + i, half + i + 1)) if i else ((half, half + 1),) for i in range(half))
    return ctx + tgt


@lru_cache(maxsize=32)
def plan_mask(plan: KeyPlan, N: int, device: torch.device) -> torch.Tensor:
    """(T*N, T*N) bool, True where a query token may attend: the key plan as a dense mask."""
    T = len(plan)
    frames = torch.zeros(T, T, dtype=torch.bool)
    for q, ranges in enumerate(plan):
        for lo, hi in ranges:
            frames[q, lo:hi] = True
    return frames.repeat_interleave(N, 0).repeat_interleave(N, 1).to(device)


def planned_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: KeyPlan, N: int
) -> torch.Tensor:
    """Attention of each frame's queries (B, H, T*N, hd) over its planned keys only: no mask.

    Measured on one CPU core (small preset, bf16, 16 windows of 9 frames in the play layout, 1,152
    tokens): a boolean-masked SDPA spends most of a training step on a (2T*N)^2 score matrix that is
    mostly masked; slicing each frame's keys skips the masked part and the mask itself.
    """
    outs = []
    scale = q.shape[-1] ** -0.5
    for j, ranges in enumerate(plan):
        qj = q[:, :, j * N : (j + 1) * N]
        if len(ranges) == 1:
            lo, hi = ranges[0]
            kj, vj = k[:, :, lo * N : hi * N], v[:, :, lo * N : hi * N]
        else:
            kj = torch.cat([k[:, :, lo * N : hi * N] for lo, hi in ranges], 2)
            vj = torch.cat([v[:, :, lo * N : hi * N] for lo, hi in ranges], 2)
        att = (qj @ kj.transpose(-1, -2)) * scale  # (B, H, N, keys)
        outs.append(att.softmax(dim=-1) @ vj)
    return torch.cat(outs, dim=2)  # (B, H, T*N, hd)


# On a CPU the fused attention kernel wins over matmul + softmax only for short key windows: measured
# in bf16 on one core, 16 queries over 144 keys (patch 2, 9 frames) 188 vs 507 us; 64 over 576 keys
# (patch 1) 2.4 vs 2.1 ms.
SDPA_MAX_CPU_KEYS = 256


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        plan: KeyPlan | None,
        cache: KVCache | None,
        layer: int,
        frames: int,
    ) -> torch.Tensor:
        B, L, D = x.shape
        qkv = (
            self.qkv(x).view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        )  # (3, B, H, L, hd)
        q, k, v = qkv.unbind(0)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is None:
            if plan is None or frames == 1:
                out = F.scaled_dot_product_attention(q, k, v)  # (B, H, L, hd)
            elif x.device.type == "cpu":
                out = planned_attention(q, k, v, plan, L // frames)
            else:  # accelerators: one fused masked kernel beats a loop of small ones
                out = F.scaled_dot_product_attention(
                    q, k, v, attn_mask=plan_mask(plan, L // frames, x.device)
                )
        else:
            N = L // frames
            outs = []
            for j, (kj, vj) in enumerate(cache.update(layer, k, v, frames)):
                qj = q[:, :, j * N : (j + 1) * N]  # one new frame's queries against its own key window
                if x.device.type == "cpu" and kj.shape[2] > SDPA_MAX_CPU_KEYS:
                    # ~1k cached keys: plain matmul + softmax measured 2.2x faster than the CPU
                    # flash kernel in bf16 (214 vs 482 us per call, 2 threads).
                    att = (qj @ kj.transpose(-1, -2)) * (q.shape[-1] ** -0.5)  # (B, H, N, keys)
                    outs.append(att.softmax(dim=-1) @ vj)
                else:
                    outs.append(F.scaled_dot_product_attention(qj, kj, vj))
            out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)  # (B, H, L, hd)
        return self.proj(out.transpose(1, 2).reshape(B, L, D))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.ada = nn.Linear(dim, 6 * dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor, cos, sin, plan, cache, layer) -> torch.Tensor:
        B, T, _ = c.shape
        D = x.shape[-1]
        mods = (
            self.ada(F.silu(c)).view(B, T, 1, 6 * D).chunk(6, dim=-1)
        )  # 6 x (B, T, 1, D): per-frame modulation
        shift1, scale1, gate1, shift2, scale2, gate2 = mods

        def modulate(h: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
            return (h.view(B, T, -1, D) * (1 + scale) + shift).view(B, -1, D)

        def gated(h: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
            return (h.view(B, T, -1, D) * gate).view(B, -1, D)

        x = x + gated(
            self.attn(modulate(self.norm1(x), shift1, scale1), cos, sin, plan, cache, layer, T), gate1
        )
        x = x + gated(self.mlp(modulate(self.norm2(x), shift2, scale2)), gate2)
        return x


class DiT(nn.Module):
    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        D, p, C = cfg.dim, cfg.patch, cfg.latent_channels
        self.patch_in = nn.Linear(C * p * p, D)
        self.t_embed = mlp(256, D)
        if cfg.action_type == "discrete":
            self.act_embed: nn.Module = nn.Embedding(cfg.num_actions + 1, D)  # last row: null action
        elif cfg.action_type == "box":
            self.act_embed = mlp(cfg.action_dim, D)
        self.null_act = nn.Parameter(torch.zeros(D))  # box / none: the dropped-action vector
        self.null_text = nn.Parameter(torch.zeros(cfg.text_dim))  # the embedding of "no text" (guidance)
        self.text_embed = mlp(cfg.text_dim, D)
        if cfg.blur_input:
            self.blur_embed = mlp(256, D)
        self.blocks = nn.ModuleList([Block(D, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth)])
        self.norm_out = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Linear(D, 2 * D)
        self.patch_out = nn.Linear(D, C * p * p)
        self.rope = Rope3D(D // cfg.heads, cfg.rope_theta)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.null_text, std=0.02)
        # adaLN-Zero: every block starts as the identity, the output as zero.
        zero = [b.ada for b in self.blocks if isinstance(b, Block)] + [self.ada_out, self.patch_out]
        if self.cfg.blur_input:  # zero: a model given this input starts as the one it was grown from
            zero.append(cast(nn.Linear, self.blur_embed[-1]))
        for lin in zero:
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def new_cache(self, max_frames: int | None = None) -> KVCache:
        return KVCache(self.cfg.depth, max_frames or self.cfg.max_context)

    def condition(
        self,
        t: torch.Tensor,
        act: torch.Tensor | None,
        text: torch.Tensor | None,
        act_null: torch.Tensor | None,
        text_null: torch.Tensor | None,
        blur: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-frame conditioning vector (B, T, D) from noise level, action, text and context blur."""
        B, T = t.shape
        wd = self.patch_in.weight.dtype  # inputs follow the weights, so a bf16 copy runs without autocast
        c = self.t_embed(timestep_embedding(t, 256).to(wd))  # (B, T, D)
        cfg = self.cfg
        if blur is not None and not cfg.blur_input:
            raise ReverieError("this dynamics model was not trained with a blur input (model.blur_input)")
        if cfg.blur_input:
            level = blur if blur is not None else torch.zeros_like(t)  # None: every frame sharp
            c = c + self.blur_embed(timestep_embedding(level, 256).to(wd))
        if cfg.action_type == "discrete" and act is not None:
            idx = act.long()
            if act_null is not None:
                idx = torch.where(act_null, torch.full_like(idx, cfg.num_actions), idx)
            c = c + self.act_embed(idx)
        elif cfg.action_type == "box" and act is not None:
            a = self.act_embed(act.to(wd).view(B, T, cfg.action_dim))
            if act_null is not None:
                a = torch.where(act_null[..., None], self.null_act.to(a.dtype), a)
            c = c + a
        elif cfg.action_type == "discrete":
            assert isinstance(self.act_embed, nn.Embedding)
            c = c + self.act_embed.weight[cfg.num_actions]  # act=None means every action dropped
        else:
            c = c + self.null_act
        # Text is one embedding per sample (B, E) or per frame (B, T, E) (captions may change).
        if text is None:
            emb = self.null_text.expand(B, 1, -1)
        else:
            emb = text.to(wd) if text.dim() == 3 else text.to(wd)[:, None, :]  # (B, 1 or T, E)
            if text_null is not None:
                null = text_null if text_null.dim() == 2 else text_null[:, None]  # (B, 1 or T)
                emb = torch.where(null[..., None], self.null_text.to(emb.dtype), emb)
        return c + self.text_embed(emb)

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        act: torch.Tensor | None = None,
        text: torch.Tensor | None = None,
        *,
        act_null: torch.Tensor | None = None,
        text_null: torch.Tensor | None = None,
        cache: KVCache | None = None,
        layout: str = "causal",
        blur: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Velocity v (B, T, C, h, w) for latents x_t (B, T, C, h, w) at per-frame noise levels t (B, T).

        layout "play" (training only): the T frames are [context frames | target frames] of one clip of
        T/2 frames, attending as `key_plan("play", T)` says, both halves at time positions 0..T/2-1.

        act: (B, T) int for discrete, (B, T, D) float for box; text: (B, E) or (B, T, E) sentence
        embeddings; act_null (B, T) and text_null (B,) or (B, T) bool mark dropped conditions; blur
        (B, T) in [0, 1]: how blurred each frame is (models with `blur_input`; None: sharp). With `cache`, T must be 1 and the frame attends to cached context.
        """
        B, T, C, h, w = x_t.shape
        p = self.cfg.patch
        if self.cfg.latent_channels != C:
            raise ReverieError(
                f"latents have {C} channels but the dynamics model expects {self.cfg.latent_channels}"
            )
        ph, pw = -h % p, -w % p  # pad odd latent grids (e.g. 16x9) up to whole patches
        x = F.pad(x_t.reshape(B * T, C, h, w), (0, pw, 0, ph)) if ph or pw else x_t.reshape(B * T, C, h, w)
        gh, gw = (h + ph) // p, (w + pw) // p
        N = gh * gw
        x = x.view(B, T, C, gh, p, gw, p).permute(0, 1, 3, 5, 2, 4, 6).reshape(B, T * N, C * p * p)
        x = self.patch_in(x.to(self.patch_in.weight.dtype))  # (B, T*N, D)
        c = self.condition(t, act, text, act_null, text_null, blur)  # (B, T, D)

        if cache is not None:
            # More than MAX_NEW frames only where they fit without moving the buffer: a prefill of a
            # fresh cache (Rollout.reset), one pass instead of one per context frame.
            if T > cache.MAX_NEW and cache.count + T - cache.base > cache.slots:
                raise ValueError(f"a cached forward takes at most {cache.MAX_NEW} new frames, got {T}")
            frame_pos = torch.arange(cache.count, cache.count + T)
            if cache.offset is not None:  # rows on clocks of their own: (B, T)
                frame_pos = frame_pos[None, :] + cache.offset.cpu()[:, None]
            plan = None  # each new frame attends to its own contiguous key window (KVCache.update)
        elif layout == "play":
            if T % 2 or cache is not None:
                raise ValueError("the play layout takes an even number of frames and no cache")
            frame_pos = torch.arange(T // 2).repeat(2)
            plan = key_plan("play", T)
        elif layout == "causal":
            frame_pos = torch.arange(T)
            plan = key_plan("causal", T)
        else:
            raise ValueError(f"bad layout {layout!r}: accepted {', '.join(LAYOUTS)}")
        cos, sin = self.rope.cos_sin(frame_pos, gh, gw, x.dtype, x.device)  # x.dtype: bf16 under autocast
        for i, block in enumerate(self.blocks):
            x = block(x, c, cos, sin, plan, cache, i)

        shift, scale = self.ada_out(F.silu(c)).view(B, T, 1, 2 * x.shape[-1]).chunk(2, dim=-1)
        x = (self.norm_out(x).view(B, T, N, -1) * (1 + scale) + shift).view(B, T * N, -1)
        x = self.patch_out(x).float()  # (B, T*N, C*p*p)
        x = x.view(B, T, gh, gw, C, p, p).permute(0, 1, 4, 2, 5, 3, 6).reshape(B, T, C, gh * p, gw * p)
        return x[..., :h, :w]

    def num_params(self) -> int:
        return sum(q.numel() for q in self.parameters())


def deepen(state: dict[str, torch.Tensor], depth: int, new_depth: int) -> dict[str, torch.Tensor]:
    """The weights of a `depth`-block DiT laid into a `new_depth`-block one: block i moves to block
    i * new_depth // depth, and the blocks between, absent from the result, keep their fresh adaLN-Zero
    init (the identity), so the deeper network starts as the one it was grown from."""
    if new_depth < depth:
        raise ReverieError(f"a DiT grows deeper, not shallower: {depth} -> {new_depth} blocks")
    out = {}
    for k, v in state.items():
        if k.startswith("blocks."):
            _, i, rest = k.split(".", 2)
            k = f"blocks.{int(i) * new_depth // depth}.{rest}"
        out[k] = v
    return out


PRESETS: dict[str, DiTConfig] = {
    "tiny": DiTConfig(dim=64, depth=2, heads=2, max_context=8),
    "small": DiTConfig(dim=256, depth=6, heads=4, max_context=16),
    "base": DiTConfig(dim=512, depth=12, heads=8, max_context=32),
    "large": DiTConfig(dim=1024, depth=24, heads=16, max_context=64),
}


def preset(name: str, **overrides: Any) -> DiTConfig:
    if name not in PRESETS:
        raise ReverieError(f"unknown dynamics preset {name!r}; accepted: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)


def config_dict(cfg: DiTConfig) -> dict[str, Any]:
    return asdict(cfg)
