"""Batched few-step sampling of the frame-stack model, with the same interface as `sampler.Rollout`.

Each session keeps its last K frames (re-noised to the context noise level when they enter, as the
DiT's cache does) and the actions that led to them; a step stacks them under the new frame's noise
and runs `steps` Euler steps on the flow (t: 1 -> 0). Noise is drawn row by row from each row's own
generator, in the same order as `Rollout`, so a session's frames do not depend on its batch.
"""

from __future__ import annotations

import itertools

import torch

from reverie.errors import ReverieError
from reverie.models.framestack import FrameStack
from reverie.models.sampler import (
    BatchRows,
    Generators,
    SamplerConfig,
    SessionContext,
    _randn,
    pad_sessions,
)


class FrameStackRollout(BatchRows):
    def __init__(self, model: FrameStack, cfg: SamplerConfig | None = None) -> None:
        self.model = model
        self.cfg = cfg or SamplerConfig()
        self.max_context = min(self.cfg.max_context or model.cfg.max_context, model.cfg.max_context)
        self.B = 0
        self.latent_shape: tuple[int, int, int] = (0, 0, 0)
        self.text: torch.Tensor | None = None
        self.text_null: torch.Tensor | None = None
        self.count = 0
        self._history = []  # the last max_context frames: (clean z, noised z, action or None)

    @property
    def frames(self) -> int:
        return self.count

    @torch.no_grad()
    def reset(
        self,
        z_context: torch.Tensor | None = None,
        act_context: torch.Tensor | None = None,
        text: torch.Tensor | None = None,
        *,
        text_null: torch.Tensor | None = None,
        batch_size: int | None = None,
        latent_shape: tuple[int, int, int] | None = None,
        generator: Generators = None,
    ) -> None:
        """Start B sessions from clean context latents z_context (B, Tc, C, h, w); see `Rollout.reset`."""
        Tc = self._start(z_context, text, text_null, batch_size, latent_shape)
        dev = self._device()
        self.count = 0
        for i in range(max(0, Tc - self.max_context), Tc):
            assert z_context is not None
            self.append(
                z_context[:, i].to(dev), act_context[:, i] if act_context is not None else None, generator
            )

    @torch.no_grad()
    def append(self, z: torch.Tensor, act: torch.Tensor | None, generator: Generators = None) -> None:
        """Add a clean frame z (B, C, h, w) and the action that led to it, at the context noise level."""
        s = self.cfg.context_noise
        noised = (1 - s) * z + s * _randn(tuple(z.shape), generator, z.device) if s > 0 else z
        self._history = [*self._history, (z, noised, act)][-self.max_context :]
        self.count += 1

    @torch.no_grad()
    def keep_rows(self, rows: list[int]) -> None:
        """Keep only batch rows `rows`, in that order."""
        if not rows:
            self.B, self._history = 0, []
            return
        self._keep(torch.tensor(rows, device=self._device()))

    def prepare_rows(self, sessions: list[SessionContext], generator: Generators = None) -> None:
        """Nothing to build ahead: a frame-stack row is its frames, added at the join without a pass."""
        return None

    @torch.no_grad()
    def add_rows(
        self, sessions: list[SessionContext], generator: Generators = None, prepared: None = None
    ) -> None:
        """Append rows for new sessions, padded to the batch's window; the running rows are untouched."""
        if self.B == 0 or not self._history:
            self.rebuild(sessions, generator)
            return
        W = len(self._history)
        z, act, text, null = pad_sessions(sessions, W, self._text_dim(), length=W)
        new = FrameStackRollout(self.model, self.cfg)
        new.reset(z, act, text, text_null=null, generator=generator)
        self._join(new)

    def fork(self) -> FrameStackRollout:
        """An independent copy (same model) that continues from here."""
        import copy

        other = copy.copy(self)
        other._history = list(self._history)  # entries are never modified, only replaced
        return other

    def _context(self, act: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """Stacked context (B, K, C, h, w), validity (B, K), actions (B, K+1[, D]) and their null mask."""
        K, B, dev = self.model.cfg.max_context, self.B, self._device()
        n = len(self._history)
        ctx = torch.zeros(B, K, *self.latent_shape, device=dev)
        valid = torch.zeros(B, K, dtype=torch.bool, device=dev)
        if n:
            ctx[:, K - n :] = torch.stack([h[1] for h in self._history], 1)
            valid[:, K - n :] = True
        acts = [None] * (K - n) + [h[2] for h in self._history] + [act]
        ref = next((a for a in acts if a is not None), None)
        null = torch.tensor([a is None for a in acts], device=dev)[None].expand(B, K + 1)
        if ref is None:
            return ctx, valid, None, null  # type: ignore[return-value]
        a = torch.stack([ref if x is None else x for x in acts], 1)  # (B, K+1) or (B, K+1, D)
        return ctx, valid, a, null

    @torch.no_grad()
    def step(self, act: torch.Tensor | None, generator: Generators = None) -> torch.Tensor:
        """Sample each session's next frame given its action (B,) / (B, D); returns z (B, C, h, w)."""
        if self.B == 0:
            raise ReverieError("call reset() before step()")
        dev = self._device()
        act = act.to(dev) if act is not None else None
        x = _randn((self.B, *self.latent_shape), generator, dev)
        ctx, valid, a, a_null = self._context(act)
        level = torch.full((self.B,), self.cfg.context_noise, device=dev)
        text, text_null = self.text, self.text_null
        if self.guided:  # a second copy of every row with the null text
            ctx, valid, level = torch.cat([ctx, ctx]), torch.cat([valid, valid]), torch.cat([level, level])
            a = torch.cat([a, a]) if a is not None else None
            a_null = torch.cat([a_null, a_null])
            base = text_null if text_null is not None else torch.zeros(self.B, dtype=torch.bool, device=dev)
            text_null = torch.cat([base, torch.ones_like(base)])
            text = torch.cat([text, text]) if text is not None else None
        ts = torch.linspace(1.0, 0.0, self.cfg.steps + 1).tolist()
        for t, t_next in itertools.pairwise(ts):
            xin = torch.cat([x, x]) if self.guided else x
            tt = torch.full((xin.shape[0],), t, device=dev)
            v = self.model(xin, tt, ctx, level, valid, a, text, act_null=a_null, text_null=text_null)
            if self.guided:
                v = v[self.B :] + self.cfg.guidance * (v[: self.B] - v[self.B :])
            x = x + (t_next - t) * v.to(x.dtype)
        self.append(x, act, generator)
        return x
