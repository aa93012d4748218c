"""Rectified-flow objective with per-frame noise levels, weighted toward what play does.

x_t = (1 - t) x0 + t eps, the network predicts v = eps - x0; t = 0 is clean, t = 1 pure noise.
Each window is laid out one of two ways:

  * play (teacher-forced, `p_play` of windows): the window's T frames appear twice, as context and as
    targets. Context frame i carries a light noise level s (one per window, uniform in
    [0, context_noise_max]) and attends to context frames <= i; target frame i carries its own level
    t and attends to context frames < i and to itself. That is exactly what the sampler does at play
    time (new frame against the KV cache of slightly noisy earlier frames), and every frame of the
    window is a target: T play-layout targets for the cost of 2T frames of tokens.
  * forcing (diffusion forcing, the rest): every frame its own level t, causal attention, so any mix
    of clean, noisy and missing frames is in-distribution (in-fill, extension, several futures,
    text-to-video from nothing).

Measured reasons (the first shipped model dissolved into flat colour within seconds of play):
  * the Euler sampler starts every frame at t = 1 exactly and at 2 steps also queries t = 1/2; a pure
    logit-normal draw almost never reaches t = 1 (P(t > 0.98) ~ 5e-5), and the first step sets the
    brightness and colour of the frame. Hence a uniform share and a share at t = 1 itself;
  * the model's own one-step error looks like noise level ~0.4, so context noise up to 0.1 left its
    rollouts off the training distribution; context noise now reaches `context_noise_max` (0.5) and
    the level is given to the network, so at play time a chosen level tells it how far to trust the
    cache;
  * only ~7% of the old loss was in the play layout; now `p_play` (90%) is.
Text and action are dropped (replaced by their learned null embeddings) for classifier-free guidance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from reverie.errors import ReverieError
from reverie.typed_config import config_from_dict

if TYPE_CHECKING:
    from reverie.models.critic import Adversary

# The critic judges x0 estimates from targets this noisy or noisier: the 1-step sample (t = 1) and
# the first of 2 steps (t = 1/2) are what play decodes; below, the estimate is mostly the input.
ADV_MIN_T = 0.5
ADV_SPACES = ("latent", "pixel")  # what the critic judges: latents, or the frames they decode to


@dataclass
class FlowConfig:
    t_mean: float = 0.0  # logit-normal t: sigmoid(N(mean, std))
    t_std: float = 1.0  # std of the logit-normal t
    p_uniform_t: float = 0.3  # share of t drawn uniform in [0, 1]
    p_one_t: float = 0.1  # share of t = 1 exactly: the sampler's first query on every frame
    p_play: float = 0.9  # share of windows in the play layout (the rest: diffusion forcing)
    context_noise_max: float = 0.5  # context frames are noised to a level in [0, this]
    # A dream's error is mostly blur (its frames are the mean of the futures it cannot tell apart),
    # and blurred frames fed back as context compound; noise alone does not teach the model to
    # sharpen them. Each play window's context is mixed with its 3x3 spatial average on the latent
    # grid by a weight uniform in [0, this], while the targets stay the real frames.
    context_blur_max: float = 0.0  # 0 = off; up to 1 (the context replaced by its 3x3 average)
    # The share of play windows blurred at all (the rest keep their real context): a rollout's first
    # frames are sharp and its later ones blurred, and the model may need to have seen both.
    context_blur_p: float = 1.0  # share of play windows blurred at all (1 = every one)
    p_drop_text: float = 0.1  # share of windows trained on the null text (for guidance)
    p_drop_act: float = 0.1  # share of windows trained on the null action
    # Self-forcing: this share of the play-layout windows keeps a real prefix of random length and
    # replaces the rest of its context by the model's own rollout (no gradient, the sampler at
    # self_steps / self_context_noise); the targets stay the real frames, so the model learns to
    # pull its own drifting frames back to the world instead of compounding them.
    p_self: float = 0.0  # share of play-layout windows whose context is the model's own rollout
    self_steps: int = 2  # sampler steps of that rollout
    self_context_noise: float = 0.1  # context noise of that rollout
    # Measured (docs/bakeoff.md): a rollout up to 7 frames deep, regressed to the recorded frames,
    # taught the model that the answer to a drifted context is the average room. Capped, the real
    # next frame stays predictable from the context and the model learns to correct small errors.
    self_frames: int = 0  # most own frames a target sees (0 = up to window - 2, the prefix uniform)
    # Self-forcing windows were never blurred, so p_self = 0.5 halved the blurred context that keeps
    # the dream's colour (measured: the capped line's dream greyed, saturation 30-50% below the world).
    self_blur_prefix: bool = False  # blur self-forcing windows' real prefix like other play windows
    # For a network told each frame's blur (model.blur_input): the level the model's own frames are
    # told, in that rollout and in the window it feeds, as play tells them sampler.context_blur; its
    # targets and real prefix are told 0 (with self_blur_prefix the prefix its blur weight), and its
    # own frames are never blurred on top.
    self_context_blur: float = 0.0  # told level of the model's own frames (set it to the play level)
    # Measured (docs/bakeoff.md): self-forcing greyed the dream (saturation 35-46% below the world's)
    # while the line trained on blurred real context, which keeps each region's colour, did not. With a
    # block size the model's own frames keep their detail but take the real frames' means over blocks
    # of that many latent cells, so the context's colour is one the model can trust, as with blur.
    # Measured (docs/bakeoff.md, sixteenth session): at 4 the dream greyed just as much; kept as that probe.
    self_colour_block: int = 0  # 0 = off; 2, 4 or 8: own frames get the real frames' block means
    # Adversarial term (reverie/models/critic.py): a critic judges the model's x0 estimates of
    # play-layout targets at t >= ADV_MIN_T (the 1-step sample at t = 1) against the real next
    # frames, given the real previous frame and the action; 0 turns it off.
    adv_weight: float = 0.0  # weight of the critic's generator loss beside the flow loss
    adv_lr: float = 2e-4  # the critic's learning rate (constant)
    adv_critic_steps: int = 1  # critic updates per training step, on the same pairs
    # What the critic sees. The latent critic's detail decodes to round blotches in a dream; the pixel
    # critic judges frames decoded by the frozen autoencoder decoder (reverie/models/critic.py).
    adv_space: str = "latent"  # latent (the latent grid) | pixel (decoded frames; ~2x the step time)
    # The critic alone darkened the 1-step frames (mean pixel 17 against the real 24): with a block
    # size, its gradient reaches only what is left of the sample after subtracting its means over
    # blocks of that many latent cells, so colour and brightness are the flow loss's alone.
    # Not 1: a cell minus its own mean is zero, so the critic would get no gradient at all.
    adv_detail_block: int = 0  # 0 = off; 2, 4 or 8: the critic shapes only detail within such blocks
    # Self-forcing alone regresses the model's own rollouts to the mean (a flat, blurred dream): with
    # this the critic also judges the samples of the self-forcing windows, each paired with the real
    # frame before its target (the pair a real transition would make), so those windows keep detail.
    # Measured (docs/bakeoff.md): sharper frames 16 ahead, while the dream stays the mean room.
    adv_self: bool = False  # the critic judges the self-forcing windows' samples too (needs adv_weight)
    # Dreams (reverie/models/dreams.py): free-running rollouts kept across steps, hundreds of frames
    # of the model's own context deep, whose next 1-step frame the critic also judges (needs adv_weight).
    dream_rows: int = 0  # dreams kept alive (0 = off)
    dream_frames: int = 1800  # a dream lives a random number of frames up to this, then restarts
    dream_advance: int = 4  # frames each dream runs on per training step (at most window - 1)

    def __post_init__(self) -> None:
        if not 1 <= self.self_steps <= 8:
            raise ReverieError(f"flow.self_steps must be in 1..8, got {self.self_steps}")
        if self.self_frames < 0:
            raise ReverieError(f"flow.self_frames must be >= 0 (0 = no cap), got {self.self_frames}")
        shares = ("p_uniform_t", "p_one_t", "p_play", "p_drop_text", "p_drop_act", "p_self", "context_blur_p")
        for name in shares:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ReverieError(f"flow.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.p_uniform_t + self.p_one_t > 1.0:
            raise ReverieError("flow.p_uniform_t + flow.p_one_t must be at most 1")
        if not 0.0 <= self.self_context_blur <= 1.0:
            raise ReverieError(f"flow.self_context_blur must be in [0, 1], got {self.self_context_blur}")
        if not 0.0 <= self.context_blur_max <= 1.0:
            raise ReverieError(f"flow.context_blur_max must be in [0, 1], got {self.context_blur_max}")
        if not 0.0 <= self.context_noise_max < 1.0:
            raise ReverieError(f"flow.context_noise_max must be in [0, 1), got {self.context_noise_max}")
        if not 0.0 <= self.adv_weight <= 10.0:
            raise ReverieError(f"flow.adv_weight must be in [0, 10], got {self.adv_weight}")
        if self.adv_detail_block not in (0, 2, 4, 8):
            raise ReverieError(
                f"flow.adv_detail_block must be 0 (off), 2, 4 or 8, got {self.adv_detail_block}"
                + (" (1 would leave the critic no gradient)" if self.adv_detail_block == 1 else "")
            )
        if self.self_colour_block not in (0, 2, 4, 8):
            raise ReverieError(
                f"flow.self_colour_block must be 0 (off), 2, 4 or 8, got {self.self_colour_block}"
            )
        if self.self_colour_block and self.p_self <= 0:
            raise ReverieError(
                "flow.self_colour_block colours the self-forcing windows' own frames: set flow.p_self > 0 too"
            )
        if self.adv_space not in ADV_SPACES:
            raise ReverieError(
                f"flow.adv_space must be one of {', '.join(ADV_SPACES)}, got {self.adv_space!r}"
            )
        if not 1 <= self.adv_critic_steps <= 16:
            raise ReverieError(f"flow.adv_critic_steps must be in 1..16, got {self.adv_critic_steps}")
        if not 0 <= self.dream_rows <= 256:
            raise ReverieError(f"flow.dream_rows must be in 0..256, got {self.dream_rows}")
        if self.dream_rows and self.adv_weight <= 0:
            raise ReverieError(
                "flow.dream_rows: dreams are judged by the critic; set flow.adv_weight > 0 too"
            )
        if self.adv_self and (self.adv_weight <= 0 or self.p_self <= 0):
            raise ReverieError(
                "flow.adv_self: the critic judges self-forcing windows; set flow.adv_weight > 0 and flow.p_self > 0 too"
            )
        if self.self_blur_prefix and (self.p_self <= 0 or self.context_blur_max <= 0):
            raise ReverieError(
                "flow.self_blur_prefix blurs self-forcing windows' prefix: set flow.p_self > 0 and flow.context_blur_max > 0 too"
            )
        if self.dream_frames < 1 or self.dream_advance < 1:
            raise ReverieError(
                f"flow.dream_frames and flow.dream_advance must be >= 1, got {self.dream_frames}, {self.dream_advance}"
            )
        if not 0.0 < self.adv_lr <= 1.0:
            raise ReverieError(f"flow.adv_lr must be in (0, 1], got {self.adv_lr}")
        if self.t_std <= 0:
            raise ReverieError(f"flow.t_std must be > 0, got {self.t_std}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FlowConfig:
        return config_from_dict(cls, d, "flow")


def sample_t(
    shape: tuple[int, ...], cfg: FlowConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Noise levels: logit-normal, with a uniform share and a share at exactly t = 1."""
    t = torch.sigmoid(cfg.t_mean + cfg.t_std * torch.randn(shape, generator=generator))
    u = torch.rand(shape, generator=generator)
    t = torch.where(u < cfg.p_uniform_t, torch.rand(shape, generator=generator), t)
    return torch.where(u >= 1.0 - cfg.p_one_t, torch.ones_like(t), t)


@torch.no_grad()
def own_rollout(
    model: nn.Module,
    z: torch.Tensor,
    act: torch.Tensor | None,
    text: torch.Tensor | None,
    text_null: torch.Tensor | None,
    prefix: int,
    cfg: FlowConfig,
) -> torch.Tensor:
    """z (B, T, ...) with frames prefix.. replaced by the model's own samples from the real prefix."""
    from reverie.models.sampler import Rollout, SamplerConfig

    net: Any = getattr(model, "module", model)  # under DDP, sample with the wrapped network itself
    T = z.shape[1]
    sampler = SamplerConfig(
        steps=cfg.self_steps, context_noise=cfg.self_context_noise, context_blur=cfg.self_context_blur
    )
    r = Rollout(net, sampler)
    tx = (text[:, prefix - 1] if text.dim() == 3 else text) if text is not None else None
    null = None
    if text_null is not None:
        null = text_null[:, prefix - 1] if text_null.dim() == 2 else text_null
    r.reset(z[:, :prefix], act[:, :prefix] if act is not None else None, tx, text_null=null)
    own = [r.step(act[:, i] if act is not None else None) for i in range(prefix, T)]
    return torch.cat([z[:, :prefix], torch.stack(own, 1).to(z.dtype)], 1)


def flow_loss(
    model: nn.Module,
    z: torch.Tensor,
    act: torch.Tensor | None,
    text: torch.Tensor | None,
    cfg: FlowConfig,
    *,
    text_null: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    adversary: Adversary | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean squared velocity error over the target frames of clean latent windows z (B, T, C, h, w).

    The batch is split: the first round(p_play * B) windows in the play layout, the rest forcing.
    With an `adversary` and `cfg.adv_weight` > 0 the critic takes one step on this batch's samples
    and `adv_weight` times its generator loss joins the flow loss.
    """
    B, T = z.shape[:2]
    dev = z.device
    n_play = round(cfg.p_play * B) if T > 1 else 0
    drop_text = torch.rand(B, generator=generator) < cfg.p_drop_text
    drop_act = torch.rand(B, generator=generator) < cfg.p_drop_act
    t = sample_t((B, T), cfg, generator)
    s = torch.rand(B, generator=generator) * cfg.context_noise_max  # play: one context level per window
    eps = torch.randn(z.shape, generator=generator)
    ctx_eps = torch.randn(z.shape, generator=generator)
    null_text = drop_text.to(dev)[:, None].expand(B, T)
    if text_null is not None:  # frames without a caption always use the null text
        null_text = null_text | (text_null if text_null.dim() == 2 else text_null[:, None].expand(B, T))
    null_act = drop_act.to(dev)[:, None].expand(B, T)

    def noised(x0: torch.Tensor, level: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        lv = level.to(dev)[:, :, None, None, None]
        return (1 - lv) * x0 + lv * noise.to(dev)

    def per_frame_err(
        v: torch.Tensor, x_t: torch.Tensor, lv: torch.Tensor, x0: torch.Tensor, e: torch.Tensor
    ):
        v = v.float()
        mse = (v - (e.to(dev) - x0)).pow(2).mean(dim=(2, 3, 4))  # (b, T)
        x0_err = (x_t - lv.to(dev)[:, :, None, None, None] * v - x0).pow(2).mean(dim=(2, 3, 4))
        return mse, x0_err

    losses, x0_errs, counts = [], [], []
    adv: tuple[torch.Tensor, dict[str, float]] | None = None
    if n_play:
        p = slice(0, n_play)
        zp, tp = z[p], t[p]
        ctx_level = s[p, None].expand(n_play, T)
        ctx_src = zp
        n_self = round(cfg.p_self * n_play)
        told = bool(getattr(getattr(getattr(model, "module", model), "cfg", None), "blur_input", False))
        prefix = T
        if n_self:  # the first n_self windows see the model's own frames after a real prefix
            # Target i sees context frames < i: own frames prefix.. reach targets prefix + 1.., at most
            # T - 1 - prefix of them, and the last context frame reaches none (so it stays real). Capped,
            # prefix is drawn in [T - 1 - self_frames, T - 2]: every draw reaches a target.
            low, high = 1, T
            if cfg.self_frames and T > 2:
                low, high = max(1, T - 1 - cfg.self_frames), T - 1
            prefix = int(torch.randint(low, high, (1,), generator=generator))
            sl = slice(0, n_self)
            if prefix < T - 1:
                own = own_rollout(
                    model,
                    zp[sl, : T - 1],
                    act[sl, : T - 1] if act is not None else None,
                    text[sl] if text is not None else None,  # own_rollout reads its frame prefix - 1
                    text_null[sl] if text_null is not None else None,
                    prefix,
                    cfg,
                )
                if cfg.self_colour_block:  # own detail on the real frames' block means
                    made = own[:, prefix:]
                    real = zp[sl, prefix : T - 1]
                    own = torch.cat(
                        [
                            own[:, :prefix],
                            made
                            - block_means(made, cfg.self_colour_block)
                            + block_means(real, cfg.self_colour_block),
                        ],
                        1,
                    )
                ctx_src = torch.cat([torch.cat([own, zp[sl, T - 1 :]], 1), zp[n_self:]])
        w = torch.zeros(n_play)  # each play window's context blur weight
        if cfg.context_blur_max > 0:  # drawn only when on, so runs without it keep their random stream
            w = torch.rand(n_play, generator=generator) * cfg.context_blur_max
            if cfg.context_blur_p < 1.0:  # drawn only then, for the same reason
                w = w * (torch.rand(n_play, generator=generator) < cfg.context_blur_p)
            if not cfg.self_blur_prefix:
                w[:n_self] = 0.0  # the model's own frames carry its own blur
            blurred = blur_context(ctx_src, w.to(dev))
            if n_self:  # never blur the model's own frames on top of their own blur
                blurred[:n_self, prefix:] = ctx_src[:n_self, prefix:]
            ctx_src = blurred
        blur = None  # (b, 2T) per-frame levels for a network told them (DiTConfig.blur_input)
        if told:
            ctx_told = w[:, None].repeat(1, T)  # (b, T)
            ctx_told[:n_self, prefix:] = cfg.self_context_blur
            blur = torch.cat([ctx_told, torch.zeros(n_play, T)], 1).to(dev)
        x = torch.cat([noised(ctx_src, ctx_level, ctx_eps[p]), noised(zp, tp, eps[p])], 1)  # (b, 2T, C, h, w)
        a = torch.cat([act[p], act[p]], 1) if act is not None else None
        tx = None
        if text is not None:
            tx = torch.cat([text[p], text[p]], 1) if text.dim() == 3 else text[p]
        v = model(
            x,
            torch.cat([ctx_level, tp], 1).to(dev),
            a,
            tx,
            act_null=null_act[p].repeat(1, 2),
            text_null=null_text[p].repeat(1, 2),
            layout="play",
            blur=blur,
        )[:, T:]  # the targets' velocities (b, T, C, h, w)
        mse, x0e = per_frame_err(v, noised(zp, tp, eps[p]), tp, zp, eps[p])
        losses.append(mse.sum())
        x0_errs.append(x0e.sum())
        counts.append(mse.numel())
        if adversary is not None and cfg.adv_weight > 0:
            x0_hat = noised(zp, tp, eps[p]) - tp.to(dev)[:, :, None, None, None] * v.float()
            if cfg.adv_detail_block:
                x0_hat = detail_gradient_only(x0_hat, cfg.adv_detail_block)
            judged = torch.arange(n_play) >= (0 if cfg.adv_self else n_self)  # (b,)
            judged &= ~drop_act[p]  # the critic conditions on the action
            adv = _adversarial(
                model, adversary, zp, x0_hat, tp, act[p] if act is not None else None, judged, cfg
            )
    if n_play < B:
        f = slice(n_play, B)
        zf, tf = z[f], t[f]
        x_t = noised(zf, tf, eps[f])
        v = model(
            x_t,
            tf.to(dev),
            act[f] if act is not None else None,
            text[f] if text is not None else None,
            act_null=null_act[f],
            text_null=null_text[f],
        )
        mse, x0e = per_frame_err(v, x_t, tf, zf, eps[f])
        losses.append(mse.sum())
        x0_errs.append(x0e.sum())
        counts.append(mse.numel())
    n = float(sum(counts))
    loss = torch.stack(losses).sum() / n
    x0_err = float(torch.stack(x0_errs).sum().detach()) / n
    metrics = {"loss": float(loss.detach()), "x0_mse": x0_err}
    if adv is not None:
        metrics |= {"flow_loss": metrics["loss"]} | adv[1]
        loss = loss + cfg.adv_weight * adv[0]
        metrics["loss"] = float(loss.detach())
    return loss, metrics


def blur_context(z: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """z (B, T, C, h, w) mixed with its 3x3 spatial average (edges averaged over the cells inside)
    by weight (B,) in [0, 1]: 0 leaves a window as it is, 1 replaces it by the average."""
    B, T, C, h, w = z.shape
    avg = F.avg_pool2d(z.reshape(B * T, C, h, w), 3, stride=1, padding=1, count_include_pad=False)
    return torch.lerp(z, avg.reshape(z.shape), weight.to(z.dtype)[:, None, None, None, None])


def block_means(x: torch.Tensor, block: int) -> torch.Tensor:
    """x (..., C, h, w) with each cell replaced by its mean over the block x block cells it lies in."""
    lead, (C, h, w) = x.shape[:-3], x.shape[-3:]
    if h % block or w % block:
        raise ReverieError(f"a {h}x{w} latent grid does not split into {block}x{block}-cell blocks")
    mean = F.avg_pool2d(x.reshape(-1, C, h, w), block)  # (N, C, h / block, w / block)
    return F.interpolate(mean, scale_factor=block, mode="nearest").reshape(*lead, C, h, w)


def detail_gradient_only(x: torch.Tensor, block: int) -> torch.Tensor:
    """x (..., C, h, w) unchanged in value, but its gradient reaches only x minus its block means."""
    mean = block_means(x, block)
    return x - mean + mean.detach()


def _adversarial(
    model: nn.Module,
    adversary: Adversary,
    z: torch.Tensor,
    x0_hat: torch.Tensor,
    t: torch.Tensor,
    act: torch.Tensor | None,
    judged: torch.Tensor,
    cfg: FlowConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    """One critic step and the generator loss over play-layout targets 1.. at t >= ADV_MIN_T of the
    windows picked by `judged` ((b,): those whose context is real, and with `cfg.adv_self` the
    self-forcing ones too): (previous real frame, sample | real frame, action);
    with dreams, their next 1-step frames join the fakes and their generator loss is added."""
    dev = z.device
    pick = (t >= ADV_MIN_T) & judged[:, None]  # (b, T)
    pick[:, 0] = False  # the first target has no previous frame
    pick = pick.to(dev)
    if not bool(pick.any()):
        return x0_hat.sum() * 0.0, {"critic_pairs": 0.0}
    prev, real, fake = z[:, :-1][pick[:, 1:]], z[pick], x0_hat[pick]  # (N, C, h, w)
    a = act[pick] if act is not None else None
    dream: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None
    dream_metrics: dict[str, float] = {}
    if adversary.dreams is not None:
        d_prev, d_fake, d_act, dream_metrics = adversary.dreams.propose(
            model, z, act, cfg.self_steps, cfg.self_context_noise
        )
        dream = (d_prev, d_fake, d_act)
    metrics = adversary.update(prev, real, fake, a, dream) | dream_metrics  # the critic as it came
    for _ in range(cfg.adv_critic_steps - 1):
        adversary.update(prev, real, fake, a, dream)
    g = adversary.generator_loss(prev, fake, a)
    if dream is not None:
        g_dream = adversary.generator_loss(*dream)
        metrics["adv_dream_loss"] = float(g_dream.detach())
        g = g + g_dream
    return g, metrics | {"adv_loss": float(g.detach()), "critic_pairs": float(len(fake))}
