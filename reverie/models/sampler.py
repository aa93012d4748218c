"""Few-step sampling of the dynamics model: a batched rollout with a KV cache, and offline video.

`Rollout` is what the real-time engine drives: B sessions share one batched KV cache; `step(act)`
samples every session's next frame in `steps` Euler steps on the flow (t: 1 -> 0), each step
processing only the new frame's tokens against the cached context, then appends the frame to the
cache re-noised to `context_noise` (the anti-drift trick: the model was trained to see slightly noisy
context, so its own small errors look like noise it knows how to ignore). The cache is a sliding
window of `max_context` frames, so a rollout never has to end.

Guidance (scale s != 1) runs a second copy of every session with the null text embedding, the null
action, or both (`guide`), and mixes v = v_null + s (v_cond - v_null); the copies have their own
cache rows because text and actions shape the cached keys too.

Speed on a CPU: give the Rollout a bf16 copy of the model (`copy.deepcopy(model).to(torch.bfloat16)`)
rather than entering autocast per frame, which re-casts every weight each time (measured per frame,
small preset, 1 step, 1 thread: 15.0 ms bf16 weights vs 18.2 ms autocast). On a busy 2-core machine
one thread is steadier than two. `python -m reverie.models.bench_dynamics` prints ms per frame.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from reverie.errors import ReverieError
from reverie.models.dit import DiT, KVCache

GUIDES = ("text", "action", "both")  # what classifier-free guidance pushes towards


@dataclass
class SamplerConfig:
    steps: int = 2  # Euler steps per frame (1..8)
    context_noise: float = 0.02  # noise level of frames in the cache
    guidance: float = 1.0  # classifier-free guidance scale; 1 = conditional only (no second copy)
    guide: str = "text"  # what guidance pushes towards: text | action | both (what the second copy drops)
    max_context: int | None = None  # frames kept in the cache; None = the model's max_context
    # Models trained with a blur input (DiTConfig.blur_input) only. Given frames (real context, a start
    # image, known frames) are told 0, as sharp real frames were in training; so is the frame being made.
    context_blur: float = 0.0  # blur level the network is told the frames it generated carry (0 = sharp)

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 8:
            raise ReverieError(f"bad sampling steps {self.steps}: accepted 1..8")
        if not 0.0 <= self.context_noise < 1.0:
            raise ReverieError(f"bad context noise {self.context_noise}: accepted 0 <= level < 1")
        if not 0.0 <= self.context_blur <= 1.0:
            raise ReverieError(f"bad context blur {self.context_blur}: accepted 0 <= level <= 1")
        if self.guide not in GUIDES:
            raise ReverieError(f"bad guide {self.guide!r}: accepted {', '.join(GUIDES)}")


def check_blur_input(context_blur: float, blur_input: bool, model: str = "this model") -> None:
    """Refuse a told context blur for a model trained without the input (DiTConfig.blur_input)."""
    if context_blur and not blur_input:
        raise ReverieError(
            f"context blur {context_blur}: {model} was not trained with a blur input (model.blur_input); accepted: 0"
        )


# One generator for the batch, or one per row: then row b is drawn from generators[b] alone, so a
# session's noise (and its frames) do not depend on which other sessions share its batch.
Generators = torch.Generator | Sequence[torch.Generator] | None


def _randn(shape: tuple[int, ...], generator: Generators, device: torch.device) -> torch.Tensor:
    """Standard normal noise of `shape` (B, ...)."""
    if isinstance(generator, Sequence):
        if len(generator) != shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {shape[0]} rows")
        return torch.stack([_randn(shape[1:], g, device) for g in generator])
    gen_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=gen_device).to(device)


@dataclass
class SessionContext:
    """One session's recent clean frames, the actions that led to them, and its text."""

    z: torch.Tensor  # (T, C, h, w), T >= 1
    act: torch.Tensor | None = None  # (T,) int or (T, D) float
    text: torch.Tensor | None = None  # (E,) sentence embedding; None = no text
    made: torch.Tensor | None = None  # (T,) bool: frames the model generated; None = all given


def _clone(generator: Generators) -> Generators:
    """Copies of the generators at their current states (None stays None)."""
    if generator is None:
        return None
    if isinstance(generator, torch.Generator):
        return torch.Generator(generator.device).set_state(generator.get_state())
    return [torch.Generator(g.device).set_state(g.get_state()) for g in generator]


def _hand_over(live: Generators, used: Generators) -> None:
    """Move generators `live` to the states of their copies `used` (the draws made on their behalf)."""
    if live is None or used is None:
        return
    pairs = [(live, used)] if isinstance(live, torch.Generator) else zip(live, used, strict=True)  # type: ignore[arg-type]
    for g, u in pairs:
        assert isinstance(g, torch.Generator) and isinstance(u, torch.Generator)
        g.set_state(u.get_state())


def _pick(x: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor | None:
    return x[idx] if x is not None else None


def _cat(x: torch.Tensor | None, y: torch.Tensor | None) -> torch.Tensor | None:
    return torch.cat([x, y]) if x is not None and y is not None else None


class Rollout:
    """Batched autoregressive generation with a KV cache; one object per engine (B sessions).

    Sessions share one cache and its slots; each row may run on its own frame clock (RoPE sees only
    offsets). A leaving session's rows are dropped (`keep_rows`); a joining one is built from its own
    recent frames in one prefill pass (`prepare_rows`, on any thread) and its keys copied in
    (`add_rows`); `rebuild` restarts every row from its recent frames.
    """

    def __init__(self, model: DiT, cfg: SamplerConfig | None = None) -> None:
        self.model = model
        self.cfg = cfg or SamplerConfig()
        check_blur_input(self.cfg.context_blur, getattr(model.cfg, "blur_input", False))
        self.max_context = self.cfg.max_context or model.cfg.max_context
        self.cache: KVCache = model.new_cache(self.max_context)
        self.text: torch.Tensor | None = None
        self.text_null: torch.Tensor | None = None
        self.B = 0
        self.latent_shape: tuple[int, int, int] = (0, 0, 0)
        # The newest frame, noised to the context level, waiting to enter the cache: (z, act, made).
        self.pending: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor] | None = None
        # The last max_context clean frames, oldest first, as (z (B, C, h, w), the action that led to it
        # (B, ...) or None, made (B,): generated by the model); row edits (a leave, a join) slice and
        # join all alike.
        self._history: list[tuple[Any, ...]] = []
        self.generators: Generators = None  # prepare_rows: the draws made for the joining sessions

    @property
    def frames(self) -> int:
        """Frames generated or given since reset (the next frame's index)."""
        return self.cache.count + (self.pending is not None)

    @property
    def guided(self) -> bool:
        return self.cfg.guidance != 1.0

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _text_dim(self) -> int:
        return int(self.model.cfg.text_dim)

    def _start(
        self,
        z_context: torch.Tensor | None,
        text: torch.Tensor | None,
        text_null: torch.Tensor | None,
        batch_size: int | None,
        latent_shape: tuple[int, int, int] | None,
    ) -> int:
        """Set the batch size, latent shape and text of a reset; returns the context length Tc."""
        if z_context is not None:
            self.B, Tc = z_context.shape[:2]
            self.latent_shape = tuple(z_context.shape[2:])  # type: ignore[assignment]
        elif batch_size is None or latent_shape is None:
            raise ReverieError(
                "reset needs context latents, or batch_size and latent_shape to start from nothing"
            )
        else:
            self.B, Tc, self.latent_shape = batch_size, 0, latent_shape
        dev = self._device()
        self.text = text.to(dev) if text is not None else None
        self.text_null = text_null.to(dev) if text_null is not None else None
        self._history = []
        return Tc

    def session_context(self, row: int) -> SessionContext:
        """Row `row`'s recent clean frames, actions and text, for `rebuild`."""
        if not self._history:
            raise ReverieError("this rollout holds no frames yet; call reset() first")
        z = torch.stack([h[0][row] for h in self._history])
        acts = [h[1] for h in self._history]
        act = torch.stack([a[row] for a in acts]) if all(a is not None for a in acts) else None  # type: ignore[index]
        null = self.text_null is not None and bool(self.text_null[row])
        text = self.text[row] if self.text is not None and not null else None
        made = torch.stack([h[2][row] for h in self._history])  # type: ignore[index]
        return SessionContext(z, act, text, made)

    @torch.no_grad()
    def rebuild(self, sessions: list[SessionContext], generator: Generators = None) -> None:
        """Restart the batch as `sessions` (new rows, dropped rows, restarted rows alike).

        Contexts of different lengths are left-padded by repeating their first frame with the null
        action (as if the player stood still before), so all rows share one frame clock.
        """
        z, act, text, null, made = pad_sessions(sessions, self.max_context, self._text_dim())
        self.reset(z, act, text, text_null=null, made=made, generator=generator)

    def _keep(self, idx: torch.Tensor) -> None:
        """Keep batch rows `idx` (in that order) of the history and the text."""
        self._history = [tuple(_pick(x, idx) for x in h) for h in self._history]
        self.text, self.text_null = _pick(self.text, idx), _pick(self.text_null, idx)
        self.B = len(idx)

    def _join(self, new: Rollout) -> None:
        """Append the rows of `new` (a rollout over the joining sessions, on this window) after ours."""
        dev = self._device()
        self._history = [tuple(_cat(a, c) for a, c in zip(h, g)) for h, g in zip(self._history, new._history)]
        assert new.text is not None and new.text_null is not None  # pad_sessions gives both
        mine_text = self.text if self.text is not None else torch.zeros(self.B, self._text_dim(), device=dev)
        mine_null = (
            self.text_null
            if self.text_null is not None
            else torch.full((self.B,), self.text is None, device=dev)
        )
        self.text = torch.cat([mine_text, new.text])
        self.text_null = torch.cat([mine_null, new.text_null])
        self.B += new.B

    def _double(self, x: torch.Tensor | None) -> torch.Tensor | None:
        return torch.cat([x, x]) if (x is not None and self.guided) else x

    def _null_copy(
        self, null: torch.Tensor | None, shape: tuple[int, ...], drop: bool, device: torch.device
    ) -> torch.Tensor | None:
        """A null mask (None: nothing null) for both copies; with `drop` the second copy all null."""
        if not (self.guided and drop):
            return self._double(null)
        base = null if null is not None else torch.zeros(shape, dtype=torch.bool, device=device)
        return torch.cat([base, torch.ones_like(base)])

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
        made: torch.Tensor | None = None,
        generator: Generators = None,
    ) -> None:
        """Start B sessions from clean context latents z_context (B, Tc, C, h, w) (Tc may be 0 or None).

        act_context: (B, Tc) or (B, Tc, D), the actions that led to the context frames. text: (B, E)
        sentence embeddings (None = no text); text_null (B,) marks sessions without text. made (B, Tc)
        bool marks context frames the model generated (None: all given).
        Without context, give batch_size and latent_shape (C, h, w).
        """
        Tc = self._start(z_context, text, text_null, batch_size, latent_shape)
        dev = self._device()
        self.cache = self.model.new_cache(self.max_context)
        self.pending = None
        first = max(0, Tc - self.max_context)  # older frames would fall out of the window anyway
        if made is None:
            made = torch.zeros(self.B, Tc, dtype=torch.bool)
        made = made.to(dev)
        if Tc - first > 1:
            assert z_context is not None
            self._prefill(z_context[:, first : Tc - 1].to(dev),
                          act_context[:, first : Tc - 1] if act_context is not None else None,
                          made[:, first : Tc - 1], generator)  # fmt: skip
        if Tc > first:
            assert z_context is not None
            act = act_context[:, Tc - 1] if act_context is not None else None
            self._append(z_context[:, Tc - 1].to(dev), act, made[:, Tc - 1], generator)

    def _prefill(
        self, z: torch.Tensor, act: torch.Tensor | None, made: torch.Tensor, generator: Generators
    ) -> None:
        """Commit clean context frames z (B, n, C, h, w) (made (B, n)) in one cached pass: the same
        frames, noise draws and cache as n `append`s, at a fraction of the cost (a joining player's ~8
        one-row passes were the hitch the others felt)."""
        acts = [act[:, i] if act is not None else None for i in range(z.shape[1])]
        noised = [
            self._remember(z[:, i], a, made[:, i], generator) for i, a in enumerate(acts)
        ]  # append's draws, in order
        n = z.shape[1]
        self._forward(torch.stack(noised, 1), [self.cfg.context_noise] * n, act, made=made)  # (B, n, C, h, w)
        self.cache.commit(n)

    def _remember(
        self, z: torch.Tensor, act: torch.Tensor | None, made: torch.Tensor, generator: Generators
    ) -> torch.Tensor:
        """Keep clean frame z (B, C, h, w) in the history; return it noised to the context level."""
        self._history = [*self._history, (z, act, made)][-self.max_context :]
        s = self.cfg.context_noise
        return (1 - s) * z + s * _randn(tuple(z.shape), generator, z.device) if s > 0 else z

    def _forward(
        self,
        x: torch.Tensor,
        t: list[float],
        act: torch.Tensor | None,
        act_null: torch.Tensor | None = None,
        *,
        made: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Velocity for frames x (B, T, C, h, w) at levels t (T,), with guidance when enabled. made
        (B, n) marks which of the first n frames (context entering the cache) the model generated."""
        B, T = x.shape[:2]
        x2 = self._double(x)
        assert x2 is not None
        tt = torch.tensor(t, device=x.device).expand(x2.shape[0], T)
        blur = None
        if self.cfg.context_blur and made is not None and bool(made.any()):
            blur = torch.zeros(B, T, device=x.device)
            blur[:, : made.shape[1]] = made.float() * self.cfg.context_blur  # (B, T); new frames sharp
            blur = self._double(blur)
        a = self._double(act)
        text = self._double(self.text)
        null = self._null_copy(self.text_null, (B,), self.cfg.guide != "action", x.device)
        an = self._null_copy(act_null, (B, T), self.cfg.guide != "text" and act is not None, x.device)
        v = self.model(
            x2, tt, a, text, act_null=an, text_null=null, cache=self.cache, blur=blur
        )  # (B or 2B, T, C, h, w)
        if self.guided:
            v_cond, v_null = v[:B], v[B:]
            v = v_null + self.cfg.guidance * (v_cond - v_null)
        return v

    def _flush(self) -> None:
        """Commit the pending frame on its own (when no new frame's pass can carry it)."""
        if self.pending is not None:
            z, act, made = self.pending
            self._forward(
                z[:, None],
                [self.cfg.context_noise],
                act[:, None] if act is not None else None,
                made=made[:, None],
            )
            self.cache.commit()
            self.pending = None

    @torch.no_grad()
    def append(self, z: torch.Tensor, act: torch.Tensor | None, generator: Generators = None) -> None:
        """Add a given clean frame z (B, C, h, w) to the context, at the context noise level.

        The frame is noised now but only enters the cache with the next frame's first denoising pass
        (one network pass per frame instead of two at 1 step); outputs are the same either way.
        """
        self._append(z, act, torch.zeros(z.shape[0], dtype=torch.bool, device=z.device), generator)

    def _append(
        self, z: torch.Tensor, act: torch.Tensor | None, made: torch.Tensor, generator: Generators
    ) -> None:
        """`append` of frames z (B, C, h, w), made (B,) marking the rows whose frame the model generated."""
        self._flush()
        self.pending = (self._remember(z, act, made, generator), act, made)

    def _rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Cache rows of batch rows `rows`: guided rollouts keep a second (null) copy of every row after them."""
        return torch.cat([rows, rows + self.B]) if self.guided else rows

    @torch.no_grad()
    def keep_rows(self, rows: list[int]) -> None:
        """Keep only batch rows `rows`, in that order: players leave without a pass of the network."""
        if not rows:
            self.B, self.pending, self._history = 0, None, []
            return
        idx = torch.tensor(rows, device=self._device())
        cache_idx = self._rows(idx)
        for i in range(self.cache.depth):
            for buf in (self.cache.k, self.cache.v):
                if buf[i] is not None:
                    buf[i] = buf[i][cache_idx]  # type: ignore[index]
        if self.cache.offset is not None:
            self.cache.offset = self.cache.offset[cache_idx]
        if self.pending is not None:
            self.pending = (self.pending[0][idx], _pick(self.pending[1], idx), self.pending[2][idx])
        self._keep(idx)

    @torch.no_grad()
    def prepare_rows(
        self, sessions: list[SessionContext], generator: Generators = None, length: int | None = None
    ) -> Rollout:
        """The rows of joining sessions, built on their own for `add_rows(..., prepared=)`.

        Each session's recent frames are padded to `length` (default: the whole window, as a join
        into a running batch pads them) and run through the network in one prefill, at the rows' own
        frame clock. Nothing of this rollout is touched, so it may run on another thread while this
        one plays: the engine prepares a joining player's rows on its reset worker, and the tick that
        takes them in only copies their keys. The generators are not advanced here; the noise drawn
        is carried by the result and handed to them when the rows join.
        """
        length = length or self.max_context
        z, act, text, null, made = pad_sessions(sessions, length, self._text_dim(), length=length)
        new = Rollout(self.model, self.cfg)
        new.generators = _clone(generator)
        new.reset(z, act, text, text_null=null, made=made, generator=new.generators)
        return new

    @torch.no_grad()
    def add_rows(
        self, sessions: list[SessionContext], generator: Generators = None, prepared: Rollout | None = None
    ) -> None:
        """Append rows for new sessions without touching the running ones (no rebuild, no hitch for them).

        The new rows come from `prepared` (`prepare_rows` of the same sessions and generators, done
        beforehand) or are built now, in one prefill pass of their own frames. Their keys and values
        then join the batch's cache on their own frame clock (`KVCache.offset`), cut to the batch's
        window. `generator`: one per new session.
        """
        if self.B == 0 or not self._history or self.pending is None:
            longest = min(self.max_context, max(len(s.z) for s in sessions))
            if prepared is not None and len(prepared._history) == longest:
                self._adopt(prepared, generator)  # what a rebuild would build, built already
            else:
                self.rebuild(sessions, generator)
            return
        W = len(self._history)  # the pending frame and the W - 1 committed frames the next one sees
        new = prepared if prepared is not None and len(prepared._history) >= W else None
        if new is None:
            new = self.prepare_rows(sessions, generator, length=W)
        _hand_over(generator, new.generators)
        assert new.pending is not None
        b, c = len(sessions), self.cache.count
        for i in range(self.cache.depth):
            for mine, theirs in ((self.cache.k, new.cache.k), (self.cache.v, new.cache.v)):
                buf, add = mine[i], theirs[i]
                if buf is None:
                    continue
                N = buf.shape[2] // self.cache.slots
                rows = buf.new_zeros(b * (2 if self.guided else 1), *buf.shape[1:])  # (b, H, slots * N, hd)
                if add is not None:  # its newest W - 1 committed frames, at the batch's slots for them
                    src = (new.cache.count - (W - 1) - new.cache.base) * N
                    dst = (c - (W - 1) - self.cache.base) * N
                    rows[:, :, dst : dst + (W - 1) * N] = add[:, :, src : src + (W - 1) * N]
                mine[i] = self._with_rows(buf, rows, b)
        # the new rows' clocks: their pending frame commits at the batch's `c`, at their own count
        theirs_off = torch.full((b,), new.cache.count - c, dtype=torch.long)
        if new.cache.offset is not None:
            theirs_off = theirs_off + new.cache.offset[:b].cpu()
        mine_off = self.cache.offset
        if mine_off is None:
            mine_off = torch.zeros(self.B * (2 if self.guided else 1), dtype=torch.long)
        self.cache.offset = self._with_rows(mine_off, theirs_off.repeat(2 if self.guided else 1), b)
        self.pending = (
            torch.cat([self.pending[0], new.pending[0]]),
            _cat(self.pending[1], new.pending[1]),
            torch.cat([self.pending[2], new.pending[2]]),
        )
        new._history = new._history[-W:]  # the batch's window
        self._join(new)

    def _with_rows(self, buf: torch.Tensor, rows: torch.Tensor, b: int) -> torch.Tensor:
        """Cache rows `buf` with `rows` of b new sessions added: guided caches keep [text rows | null rows]."""
        if self.guided:
            B = self.B
            return torch.cat([buf[:B], rows[:b], buf[B:], rows[b:]])
        return torch.cat([buf, rows])

    def _adopt(self, new: Rollout, generator: Generators) -> None:
        """Become the prepared rollout `new` (an empty batch taking in its first players)."""
        _hand_over(generator, new.generators)
        self.cache, self.pending, self._history = new.cache, new.pending, new._history
        self.B, self.latent_shape, self.text, self.text_null = (
            new.B,
            new.latent_shape,
            new.text,
            new.text_null,
        )

    def fork(self) -> Rollout:
        """An independent copy (same model) that continues from here: the KV cache buffers are cloned."""
        import copy

        other = copy.copy(self)
        cache = copy.copy(self.cache)
        # The cache buffers are written in place as frames arrive, so the copy needs its own.
        cache.k = [None if t is None else t.clone() for t in cache.k]
        cache.v = [None if t is None else t.clone() for t in cache.v]
        other.cache = cache
        other._history = list(self._history)  # entries are never modified, only replaced
        return other

    @torch.no_grad()
    def step(self, act: torch.Tensor | None, generator: Generators = None) -> torch.Tensor:
        """Sample each session's next frame given its action (B,) / (B, D); returns z (B, C, h, w)."""
        if self.B == 0:
            raise ReverieError("call reset() before step()")
        dev = self._device()
        act = act.to(dev) if act is not None else None
        x = _randn((self.B, *self.latent_shape), generator, dev)
        ts = torch.linspace(1.0, 0.0, self.cfg.steps + 1).tolist()
        for i, (t, t_next) in enumerate(itertools.pairwise(ts)):
            a = act[:, None] if act is not None else None
            if i == 0 and self.pending is not None:  # commit the previous frame in the same pass
                z_prev, a_prev, made = self.pending
                frames = torch.stack([z_prev, x], 1)  # (B, 2, C, h, w)
                a2, a2_null = None, None
                if act is not None or a_prev is not None:  # a missing action is the null action
                    ref = act if act is not None else a_prev
                    assert ref is not None
                    a2 = torch.stack([ref if a_prev is None else a_prev, ref if act is None else act], 1)
                    a2_null = torch.tensor([[a_prev is None, act is None]], device=dev).expand(self.B, 2)
                v = self._forward(frames, [self.cfg.context_noise, t], a2, a2_null, made=made[:, None])[:, 1]
                self.cache.commit()
                self.pending = None
            else:
                v = self._forward(x[:, None], [t], a)[:, 0]
            x = x + (t_next - t) * v
        self._append(x, act, torch.ones(self.B, dtype=torch.bool, device=dev), generator)
        return x


def pad_sessions(
    sessions: list[SessionContext], max_context: int, text_dim: int, length: int | None = None
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z (B, T, C, h, w), act (B, T[, D]) or None, text (B, E), text_null (B,), made (B, T)) for a
    batch rebuild.

    Contexts of different lengths are left-padded by repeating their first frame with the null action
    (as if the player stood still before), so all rows share one frame clock. T is the longest
    context up to max_context, or `length` when given.
    """
    if not sessions:
        raise ReverieError("rebuild needs at least one session")
    T = length or min(max_context, max(len(s.z) for s in sessions))
    zs, acts, texts, nulls, made = [], [], [], [], []
    with_act = all(s.act is not None for s in sessions)
    for s in sessions:
        z = s.z[-T:]
        pad = T - len(z)
        zs.append(torch.cat([z[:1].expand(pad, *z.shape[1:]), z]))
        m = s.made[-T:].cpu() if s.made is not None else torch.zeros(len(z), dtype=torch.bool)
        made.append(torch.cat([m[:1].expand(pad), m]))  # a padding frame is its first frame again
        if with_act:
            assert s.act is not None
            a = s.act[-T:]
            acts.append(torch.cat([torch.zeros_like(a[:1]).expand(pad, *a.shape[1:]), a]))
        texts.append(s.text if s.text is not None else torch.zeros(text_dim))
        nulls.append(s.text is None)
    act = torch.stack(acts) if with_act else None
    return torch.stack(zs), act, torch.stack(texts), torch.tensor(nulls), torch.stack(made)


@torch.inference_mode()
def sample_video(
    rollout: Rollout,
    z: torch.Tensor,
    known: Sequence[bool] | torch.Tensor,
    act: torch.Tensor | None = None,
    text: torch.Tensor | None = None,
    *,
    act_known: Sequence[bool] | None = None,
    text_null: torch.Tensor | None = None,
    generator: Generators = None,
    on_frame: Callable[[], object] | None = None,
) -> torch.Tensor:
    """Fill the unknown frames of z (B, T, C, h, w) in time order with `rollout` (reset here;
    from `reverie.models.dynamics.make_rollout`); known (T,) marks given frames.

    Covers next-frame rollout (a known prefix), image-to-video (only frame 0 known), text-to-video
    (nothing known) and extension through keyframes (known frames anywhere). The model is causal, so a
    known frame steers the frames after it, not the ones before. Known frames are returned unchanged.

    act: (B, T) / (B, T, D) actions that led to each frame (None: an action-less model); act_known (T,)
    False marks frames whose action is unknown (frames imported from video): they enter the context
    with the null action. Only the last `max_context` known frames before the first unknown one are
    read (older ones would fall out of the window). on_frame is called after each sampled frame.
    """
    B, T = z.shape[:2]
    known = [bool(k) for k in known]
    if len(known) != T:
        raise ReverieError(f"known must mark each of the {T} frames, got {len(known)}")
    rollout.reset(
        None, text=text, text_null=text_null, batch_size=B, latent_shape=(z.shape[2], z.shape[3], z.shape[4])
    )
    first = next((i for i, k in enumerate(known) if not k), T)
    out = z.clone()
    for i in range(max(0, first - rollout.max_context), T):
        a = act[:, i] if act is not None and (act_known is None or act_known[i]) else None
        if known[i]:
            rollout.append(z[:, i], a, generator)
        else:
            out[:, i] = rollout.step(a, generator).to(out.dtype)
            if on_frame is not None:
                on_frame()
    return out
