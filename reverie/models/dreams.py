"""Dreams that run on across training steps: the critic's view of minutes of play.

Self-forcing shows the model its own frames for a few steps after a real prefix, and the critic
judges samples whose context is real. Neither sees what a player sees after a minute: a context made
entirely of the model's own frames, hundreds of frames deep, where small biases (a darker floor, a
colour cast) have compounded. There is no real frame to regress to that far out, but the critic
needs none: it asks whether (previous frame, next frame, action) looks like the world.

`DreamPool` keeps `rows` dreams alive across training steps. Every step each dream runs `advance`
frames further with the sampler as it is played (no gradient, the current weights, the batch's real
action sequences) and then proposes one more frame with gradient: the 1-step sample against its own
last window - 1 frames, the forcing layout with context at the play noise level, which is exactly a
cached play step. The critic judges those beside the batch's samples and the dynamics model gets its
generator loss, so a drifting context learns to produce a world-like frame instead of compounding.
A dream lives a random number of frames (uniform in [window, max_frames]) and restarts from the real
frames of a batch window, so the pool holds every age from a fresh start to `max_frames`; one whose
frames blow up (`LOST_SCALE`) restarts at once.

Measured (docs/bakeoff.md): the pool shows the drift plainly (a run's dreams share one colour cast
hundreds of frames deep), but judged by the latent critic it has not helped yet: a weak critic says
nothing, a strong one is answered with latent texture. Off by default (`flow.dream_rows` 0).

Its state (each dream's newest frames, actions, age and lifetime) travels with the critic's in the
run's training state, and every draw comes from torch's global RNG, which the loop re-seeds each
step: a resumed run continues exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

STATE_KEYS = ("z", "act", "age", "life")
# A dream with a frame whose mean |z| passes this many times the largest of the batch's real frames
# is lost (a rollout blowing up): it restarts at once. Measured: without it, once the critic told
# dreams apart, a few dreams grew without bound and their gradients (norm 20-95, every step clipped)
# wrecked the model within 100 steps.
LOST_SCALE = 1.5


class DreamPool:
    """`rows` free-running dreams; `propose` advances them and returns (prev, fake, act) with gradient."""

    def __init__(self, rows: int, max_frames: int, advance: int, lost_scale: float = LOST_SCALE) -> None:
        self.rows, self.max_frames, self.advance, self.lost_scale = rows, max_frames, advance, lost_scale
        self.z: torch.Tensor | None = None  # (R, W - 1, C, h, w) each dream's newest frames
        self.act: torch.Tensor | None = None  # (R, W - 1[, D]) the actions that led to them
        self.age = torch.zeros(rows, dtype=torch.long)  # frames dreamt since its real start
        self.life = torch.zeros(rows, dtype=torch.long)  # frames it lives before restarting

    def _restart(self, z: torch.Tensor, act: torch.Tensor, which: torch.Tensor) -> None:
        """Dreams `which` (R,) bool start again from the real frames of batch windows (all of them when
        there are none yet, or the window changed)."""
        W1 = z.shape[1] - 1
        src = torch.arange(self.rows) % z.shape[0]
        fresh_z, fresh_a = z[src, :W1].detach().float().cpu(), act[src, :W1].cpu()
        if self.z is None or self.act is None or self.z.shape[1:] != fresh_z.shape[1:]:
            self.z, self.act = fresh_z.clone(), fresh_a.clone()
            which = torch.ones(self.rows, dtype=torch.bool)
        self.z[which], self.act[which] = fresh_z[which], fresh_a[which]
        life = torch.randint(W1 + 1, max(self.max_frames, W1 + 1) + 1, (self.rows,))
        self.age = torch.where(which, torch.zeros_like(self.age), self.age)
        self.life = torch.where(which, life, self.life)

    def propose(
        self,
        model: nn.Module,
        z: torch.Tensor,
        act: torch.Tensor | None,
        steps: int,
        context_noise: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, dict[str, float]]:
        """Advance every dream, then sample one more frame of each with gradient.

        z (B, T, C, h, w), act (B, T[, D]) or None: the batch, whose windows restart dreams and whose
        real action sequences drive them. Returns (previous frame, 1-step sample, its action, metrics).
        """
        from reverie.models.sampler import Rollout, SamplerConfig

        T, dev = z.shape[1], z.device
        has_act = act is not None
        if act is None:  # an action-less model: a placeholder sequence that is never given to it
            act = torch.zeros(z.shape[:2], dtype=torch.long)
        self._restart(z, act, self.age >= self.life)  # (every dream, on the first step)
        assert self.z is not None and self.act is not None
        src = torch.arange(self.rows) % z.shape[0]
        k = min(self.advance, T - 1)
        net: Any = getattr(model, "module", model)
        with torch.no_grad():
            r = Rollout(net, SamplerConfig(steps=steps, context_noise=context_noise))
            r.reset(self.z.to(dev), self.act.to(dev) if has_act else None)
            new = [r.step(act[src, j].to(dev) if has_act else None) for j in range(k)]
        self.z = torch.cat([self.z, torch.stack(new, 1).float().cpu()], 1)[:, -(T - 1) :]
        self.act = torch.cat([self.act, act[src, :k].cpu()], 1)[:, -(T - 1) :]
        self.age += k
        limit = self.lost_scale * float(z.detach().float().abs().mean(dim=(2, 3, 4)).max())
        scale = self.z.abs().mean(dim=(2, 3, 4)).amax(1)  # (R,) the largest frame of each window
        lost = ~torch.isfinite(scale) | (scale > limit)
        self._restart(z, act, lost)
        # the next frame with gradient: a cached play step (context at the play level, target t = 1)
        a_next = act[src, k].to(dev)
        ctx = self.z.to(dev)
        eps = torch.randn(ctx[:, :1].shape).to(dev)
        x = torch.cat([(1 - context_noise) * ctx + context_noise * torch.randn(ctx.shape).to(dev), eps], 1)
        levels = torch.tensor([context_noise] * (T - 1) + [1.0], device=dev).expand(self.rows, T)
        a_win = torch.cat([self.act.to(dev), a_next[:, None]], 1) if has_act else None
        v = model(x, levels, a_win, None)[:, -1]
        fake = eps[:, 0] - v.float()  # x0 at t = 1: the 1-step sample
        metrics = {"dream_age": float(self.age.float().mean()), "dreams_lost": float(lost.sum())}
        return ctx[:, -1], fake, a_next if has_act else None, metrics

    # -- exact resume ------------------------------------------------------------------------------
    def state_tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        if self.z is None or self.act is None:
            return {}
        state = {"z": self.z, "act": self.act, "age": self.age, "life": self.life}
        return {f"{prefix}{k}": v.contiguous() for k, v in state.items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], prefix: str) -> None:
        """Restore the dreams (a run saved without them starts fresh ones)."""
        if all(f"{prefix}{k}" in tensors for k in STATE_KEYS):
            self.z, self.act = tensors[f"{prefix}z"].clone(), tensors[f"{prefix}act"].clone()
            self.age, self.life = tensors[f"{prefix}age"].clone(), tensors[f"{prefix}life"].clone()
            if len(self.age) != self.rows:
                raise ValueError(
                    f"the run holds {len(self.age)} dreams, flow.dream_rows asks for {self.rows}"
                )
