"""`ModelBackend`: the learned world model as an engine backend ("dream" view).

Every tick steps ALL active sessions in ONE batched sampling pass (`Rollout` over B rows, KV cache
with a sliding window of max_context frames, so play never ends) and one batched autoencoder decode.

Reproducibility: each session owns a `torch.Generator` seeded from its seed, and every noise draw
(the new frame's x_1 and the context re-noising) is taken row by row from the row's own generator, so
a session's frames do not depend on who else is in the batch (batched == unbatched for sessions that
start together; bf16 matmuls may differ in the last bit between batch sizes). When a player joins,
leaves, pauses or restarts, only that row changes, at the start of the next tick, on the clock thread,
under the backend's lock: a leaving row is dropped from the cache, a joining one was built from its own
recent frames alone by `reset` on the reset worker (`Rollout.prepare_rows`: one prefill pass, on its own
frame clock) and the tick only copies its keys in, so the other players neither wait for a rebuild of
every row, nor for a prefill, nor see their context re-noised.

Speed on a CPU: weights are cast to bf16 once where the CPU has native bf16 (AVX512-BF16 / AMX),
fp32 otherwise; everything runs under `torch.inference_mode`. torch.compile, measured on the
autoencoder decode (1 thread, bf16): 2.5 ms compiled vs 2.8 ms eager, for a 36 s compile at every
start-up, so play stays eager; the DiT's KV cache (a Python object whose length changes every frame
until the window fills) would recompile or break the graph.

onnxruntime, measured the same way (1 thread, 64x64, median ms; 2026-11-21, machine partly loaded):
autoencoder decode 2.45 bf16 eager / 3.45 onnxruntime fp32 / 4.34 fp32 eager; one DiT frame without
cache (small preset, 64 tokens) 5.56 bf16 eager / 5.06 onnxruntime fp32 / 11.1 fp32 eager. onnxruntime
matches bf16 eager on the transformer but loses on the decoder, and the KV cache would have to travel
through the graph as inputs and outputs every frame, so play stays on eager bf16.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from reverie.engine.backends import StepOut
from reverie.engine.key_binding import apply_binding, read_binding
from reverie.engine.start_walks import StartWalker
from reverie.errors import ReverieError
from reverie.models.dynamics import make_rollout
from reverie.models.sampler import SamplerConfig, SessionContext
from reverie.models.shipped import resolve_model
from reverie.models.world_model import START_CAPTION, load_world_model


@dataclass
class ModelConfig:
    """How the engine runs a model. None = the model's own play setting (its config's "sampler")."""

    steps: int | None = None  # Euler steps per frame
    threads: int | None = None  # torch intra-op threads; None = DEFAULT_THREADS
    context_noise: float | None = None  # noise level of the frames in the KV cache
    context_blur: float | None = None  # blur level the model's own cached frames are told (blur-input models)
    guidance: float | None = None  # guidance scale (on what the model's play setting `guide` names)
    max_context: int | None = None  # frames in the window; None: the model's own
    precision: str = "auto"  # auto (bf16 where the CPU has it) | bf16 | fp32
    walk_process: bool = (
        True  # real start walks in a helper process (start_walks.py); False: on the reset thread
    )
    start_caption: bool = START_CAPTION  # True: a real start plays with the world's caption of it as text

    def sampler(self, own: SamplerConfig) -> SamplerConfig:
        """The model's own play settings `own`, with this config's explicit choices on top."""
        changes: dict[str, Any] = {
            k: v
            for k, v in (
                ("steps", self.steps),
                ("context_noise", self.context_noise),
                ("context_blur", self.context_blur),
                ("guidance", self.guidance),
                ("max_context", self.max_context),
            )
            if v is not None
        }
        return replace(own, **changes)


# Threads, measured on the shared 2-core machine (small preset, 64x64, bf16, `reverie bench engine
# --model`, tick p50): steps 1, 1 session: 19.4 ms at 1 thread vs 21.2 ms at 2; steps 2, 2 sessions:
# 49.7 vs 55.8 ms. With the other core busy (load ~4), 2 threads collapse (OpenMP waits on a thread
# that is not scheduled): a 2-session tick took 312 ms vs 46 ms at 1 thread. Hence 1 by default.
DEFAULT_THREADS = 1

# A preview is a short dream per discrete action, all from one session's current frames (the bind
# panel shows what each latent code does): PREVIEW_FRAMES frames each, one batched rollout.
PREVIEW_FRAMES = 8
PREVIEW_SEED = 0  # the same noise for every action, so the strips differ by the action alone


@dataclass
class _Advanced:
    """What `advance` made for `render`: the sessions in call order, their latents by batch row."""

    sids: list[int]
    z: torch.Tensor | None  # (B, C, h, w), rows as row_of says
    row_of: dict[int, int]


@dataclass
class _Slot:
    gen: torch.Generator
    ctx: SessionContext | None  # frames to (re)join the batch with; None while the slot is a row
    prepared: Any = None  # its rows, built off the clock by reset (Rollout.prepare_rows), or None


class ModelBackend:
    """A trained world model (dynamics run + its autoencoder and text encoder) stepping B sessions."""

    name = "model"
    accepts_prompt = True
    accepts_image = True

    def __init__(self, run: str, cfg: ModelConfig | None = None) -> None:
        self.cfg = cfg = cfg or ModelConfig()
        self.threads = cfg.threads or DEFAULT_THREADS
        self.wm = wm = load_world_model(run, cfg.precision, threads=self.threads)
        self.dtype = wm.dtype
        self.world = wm.world
        self.size = wm.size
        # JSON form (sent to the page); a saved key binding (keys.json) names latent codes for the keys
        self.spec = apply_binding(wm.spec, read_binding(resolve_model(run), wm.spec))
        self.code_spec = wm.spec  # the spec as trained (codes unrenamed), for rebinding
        self.actions = wm.actions  # typed
        self.dit, self.ae, self.text_encoder = wm.dit, wm.ae, wm.text_encoder
        self.latent_shape = wm.latent_shape
        self.sampler = cfg.sampler(wm.sampler)
        self.rollout = make_rollout(self.dit, self.sampler)
        self._lock = threading.Lock()  # slots + rollout: step (clock thread) vs reset (worker)
        self._thread_state = threading.local()  # the torch threads each calling thread has set
        self._slots: dict[int, _Slot] = {}
        self._rows: list[int] = []  # the sid of each rollout row
        self._sim: Any = None  # the real world, for start frames (built on first use)
        self._sim_lock = threading.Lock()  # resets may come from several threads (WorldSession)
        self._has_sim = self.world != "video"
        self._walker: StartWalker | None = None  # walks in a helper process (cfg.walk_process)
        if self._has_sim and cfg.walk_process:
            self._walker = StartWalker(self.world, self.size, self.actions.is_box)

    def rebind(self, binding: dict[str, str]) -> dict[str, Any]:
        """Apply a new key binding (already saved) to the spec new sessions and mappers read."""
        self.spec = apply_binding(self.code_spec, binding)
        return self.spec

    # -- conversions -------------------------------------------------------------------------------
    def _actions(self, actions: Sequence[Any]) -> torch.Tensor | None:
        """Engine actions -> (B,) int64 or (B, D) float32 (None for video)."""
        return self.wm.act_tensor(list(actions))

    def _encode(self, frame: np.ndarray) -> torch.Tensor:
        return self.wm.encode(frame[None])  # (1, C, h, w) float32

    def _decode(self, z: torch.Tensor) -> np.ndarray:
        return self.wm.decode(z)  # (B, H, W, 3) uint8

    def _real_start(self, seed: int) -> tuple[list[np.ndarray], list[Any], str | None] | None:
        """The real world's start walk for `seed` (frames, actions, the world's caption of its last
        frame or None), or None without a simulator."""
        if not self._has_sim:
            return None
        if self._walker is not None:
            try:
                return self._walker.walk(seed)
            except BrokenPipeError:  # the helper is gone (killed, out of memory): walk here from now on
                self._walker = None
            except ReverieError:  # a world that is not installed here (recorded elsewhere)
                self._has_sim = False
                return None
        from reverie.engine.backends import make_env, start_walk

        with self._sim_lock:
            try:
                if self._sim is None:
                    self._sim = make_env(self.world, self.size, continuous=self.actions.is_box)
            except Exception:  # a world that is not installed here (recorded elsewhere, or video)
                self._has_sim = False
                return None
            return start_walk(self._sim, seed, self.size)

    # -- the Backend contract -------------------------------------------------------------------------
    @torch.inference_mode()
    def reset(
        self, sid: int, seed: int, prompt: str | None = None, image: np.ndarray | None = None
    ) -> StepOut:
        from reverie.worlds.adapters import fit_frame

        self._own_threads()
        gen = torch.Generator().manual_seed(int(seed))
        text = torch.from_numpy(self.text_encoder.encode([prompt])[0]) if prompt else None
        act0 = self._actions([self._null_action()])
        # An image starts from itself; no image and no prompt: from a short real walk of a fresh seed
        # (with `start_caption`, told the world's caption of where the walk ends); a prompt alone (or a
        # world with no simulator): the model dreams its own first frame.
        real = self._real_start(seed) if image is None and not prompt else None
        if real is not None:
            frames, acts, caption = real
            caption = caption if self.cfg.start_caption else None
            said = self.wm.text(caption)
            ctx = SessionContext(
                self.wm.encode(np.stack(frames)), self._actions(acts), said[0] if said is not None else None
            )
            self._set_slot(sid, gen, ctx)
            return StepOut(np.ascontiguousarray(frames[-1]), caption)
        frame = fit_frame(image, self.size) if image is not None else None
        if frame is not None:
            z0 = self._encode(frame)[0]
        else:  # dream the first frame from the prompt (or from nothing) on a private one-row rollout
            solo = make_rollout(self.dit, self.sampler)
            solo.reset(
                None,
                text=text[None] if text is not None else None,
                text_null=torch.tensor([text is None]) if text is not None else None,
                batch_size=1,
                latent_shape=self.latent_shape,
            )
            z0 = solo.step(act0, [gen])[0]
            frame = self._decode(z0[None])[0]
        made = torch.tensor([image is None])  # a dreamed first frame is the model's own
        ctx = SessionContext(z0[None], act0, text, made)  # act0 (1,) / (1, D): the null action led to frame 0
        self._set_slot(sid, gen, ctx)
        return StepOut(np.ascontiguousarray(frame), prompt)

    def _own_threads(self) -> None:
        """Run torch on this thread with the backend's thread count. OpenMP's count is per calling
        thread: the clock's render and reset threads would otherwise run at the default (every core),
        and on a 2-core CPU two threads at 2 each stall on each other."""
        if getattr(self._thread_state, "threads", None) != self.threads:
            torch.set_num_threads(self.threads)
            self._thread_state.threads = self.threads

    def _set_slot(self, sid: int, gen: torch.Generator, ctx: SessionContext) -> None:
        """Session `sid` waits to join with context `ctx`. Its rows are built here, on the caller's
        thread (the reset worker), not on the clock: the tick that takes the player in only copies
        their keys, so the others feel no join (a prefill in the tick cost them ~24 ms)."""
        prepared = self.rollout.prepare_rows([ctx], [gen])
        with self._lock:
            self._slots[sid] = _Slot(gen, ctx, prepared)

    def _null_action(self) -> Any:
        return self.actions.null_action()

    def _regroup(self, sids: list[int]) -> None:
        """Make the rollout's rows the sessions `sids` (between ticks, lock held).

        Rows that keep playing are untouched; leaving rows are dropped (their recent frames kept, so a
        paused session can rejoin) and joining or restarted sessions are appended with `add_rows`:
        rows that `reset` prepared are copied in; a paused session coming back is built here, in one
        prefill pass of its own frames.
        """
        want = set(sids)
        keep = [r for r, sid in enumerate(self._rows) if sid in want and self._slots[sid].ctx is None]
        for row, sid in enumerate(self._rows):
            slot = self._slots.get(sid)
            if row not in keep and slot is not None and slot.ctx is None:
                slot.ctx = self.rollout.session_context(row)
        rows = [self._rows[r] for r in keep]
        if len(keep) != len(self._rows):
            self.rollout.keep_rows(keep)
        joining = [sid for sid in sids if sid not in rows]
        ready = [sid for sid in joining if self._slots[sid].prepared is not None]
        late = [sid for sid in joining if self._slots[sid].prepared is None]  # paused players coming back
        if not rows and len(joining) > 1:  # several players start an empty batch: one rebuild of all
            ready, late = [], joining  # (nobody waits on it; their rows as one batch, as eval builds them)
        for sid in ready:
            slot = self._slots[sid]
            assert slot.ctx is not None
            self.rollout.add_rows([slot.ctx], [slot.gen], prepared=slot.prepared)
            slot.ctx = slot.prepared = None
        if late:
            contexts = [self._slots[sid].ctx for sid in late]
            self.rollout.add_rows(contexts, [self._slots[s].gen for s in late])  # type: ignore[arg-type]
            for sid in late:
                self._slots[sid].ctx = self._slots[sid].prepared = None
        self._rows = rows + ready + late

    def step(self, sids: Sequence[int], actions: Sequence[Any]) -> list[StepOut]:
        return self.render(self.advance(sids, actions))

    @torch.inference_mode()
    def advance(self, sids: Sequence[int], actions: Sequence[Any]) -> _Advanced:
        """The model's half of `step`: every session's next latent, in one batched sampling pass."""
        sids = list(sids)
        if not sids:
            return _Advanced([], None, {})
        with self._lock:
            unknown = [s for s in sids if s not in self._slots]
            if unknown:
                raise ReverieError(f"step for session(s) {unknown} that were never reset")
            if set(sids) != set(self._rows) or any(self._slots[s].ctx is not None for s in sids):
                self._regroup(sids)
            by_sid = dict(zip(sids, actions, strict=True))
            gens = [self._slots[s].gen for s in self._rows]  # per-row noise: see sampler.Generators
            z = self.rollout.step(self._actions([by_sid[s] for s in self._rows]), gens)  # (B, C, h, w)
            row_of = {sid: r for r, sid in enumerate(self._rows)}
        return _Advanced(sids, z, row_of)

    @torch.inference_mode()
    def render(self, advanced: _Advanced) -> list[StepOut]:
        """The decoder's half of `step`: the frames of `advance`'s latents, in its `sids` order. It touches
        no session state, so the clock may run it on another thread beside the next `advance`."""
        if advanced.z is None:
            return []
        self._own_threads()
        frames = self._decode(advanced.z)
        return [StepOut(frames[advanced.row_of[s]]) for s in advanced.sids]

    @torch.inference_mode()
    def previews(self, sid: int, frames: int = PREVIEW_FRAMES) -> dict[str, np.ndarray]:
        """What each action does from session `sid`'s current frames: {action name as trained (a
        latent code's c1, c2, ...): (frames, H, W, 3) uint8}. One private rollout, a row per action,
        so the session itself is not touched; it runs beside the clock (the lock only guards the
        copy of the session's context), costing about `frames` batched steps."""
        if self.actions.is_box:
            raise ReverieError("previews are for discrete actions; this model's actions are continuous")
        names = list(self.code_spec.get("names", []))
        self._own_threads()
        with self._lock:
            slot = self._slots.get(sid)
            if slot is None:
                raise ReverieError(f"no session {sid} to preview from")
            ctx = slot.ctx if slot.ctx is not None else self.rollout.session_context(self._rows.index(sid))
            ctx = SessionContext(
                ctx.z.clone(), None if ctx.act is None else ctx.act.clone(),
                None if ctx.text is None else ctx.text.clone(), None if ctx.made is None else ctx.made.clone(),
            )  # fmt: skip
        r = make_rollout(self.dit, self.sampler)
        gens = [torch.Generator().manual_seed(PREVIEW_SEED) for _ in names]
        r.add_rows([ctx] * len(names), gens)  # an empty rollout: built from the contexts
        act = self._actions(list(range(len(names))))
        z = torch.stack([r.step(act, gens) for _ in range(frames)], 1)  # (A, frames, C, h, w)
        video = self._decode(z.flatten(0, 1))  # (A * frames, H, W, 3)
        video = video.reshape(len(names), frames, *video.shape[1:])
        return dict(zip(names, video, strict=True))

    def close(self, sid: int) -> None:
        with self._lock:
            self._slots.pop(sid, None)
            # its row stays until the next step rebuilds the batch without it (sids != rows)

    def close_all(self) -> None:
        with self._lock:
            self._slots.clear()
            self._rows = []
            if self._sim is not None:
                self._sim.close()
                self._sim = None
            if self._walker is not None:
                self._walker.close()
                self._walker = None
