"""Training task of the dynamics model: latent windows, rectified flow with diffusion forcing.

reverie train dynamics --data runs/out/dungeon --autoencoder runs/out/ae --preset small --out runs/out/dit

All frames are encoded once by the trained autoencoder (in chunks, bf16) and kept in memory as
latents, so a training step never touches pixels. Captions are deduplicated and embedded once.
Windows never cross an episode boundary and are drawn deterministically from (seed, step, rank).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from reverie.cpus import native_bf16, usable_cpus
from reverie.data.seeds import seed_ranges
from reverie.errors import ReverieError
from reverie.models.critic import Adversary
from reverie.models.dit import DiT, deepen
from reverie.models.dreams import DreamPool
from reverie.models.dynamics import build_dynamics, dynamics_config, dynamics_preset, make_rollout
from reverie.models.flow import FlowConfig, flow_loss
from reverie.models.sampler import SamplerConfig
from reverie.models.text import get_text_encoder
from reverie.train.task import unwrap
from reverie.typed_config import config_changes
from reverie.worlds.action_spec import ActionSpec

if TYPE_CHECKING:
    from collections.abc import Callable

    from torch.utils.tensorboard import SummaryWriter

    from reverie.models.autoencoder import Autoencoder

MAX_TOKENS_PER_FRAME = 256  # above this the patch grows to 2 (then 4): attention cost is quadratic


@dataclass
class LatentClips:
    """Episodes end to end: z (N, C, h, w), act (N,) or (N, D), cap (N,) ids into `captions`."""

    z: torch.Tensor
    act: torch.Tensor
    cap: torch.Tensor
    captions: list[str]
    lengths: list[int]
    text: torch.Tensor | None = None  # (K, E) caption embeddings, set by the task
    text_null: torch.Tensor | None = None  # (K,) True for empty captions (the model's null text)

    def window_index(self, window: int) -> tuple[np.ndarray, np.ndarray]:
        """(first frame of every window, cumulative count) over episodes of at least `window` frames."""
        offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        starts = [o + np.arange(n - window + 1) for o, n in zip(offsets, self.lengths) if n >= window]
        return (np.concatenate(starts) if starts else np.zeros(0, np.int64)), offsets


def choose_patch(h: int, w: int) -> int:
    p = 1
    while ((h + p - 1) // p) * ((w + p - 1) // p) > MAX_TOKENS_PER_FRAME:
        p *= 2
    return p


class DynamicsTask:
    name = "dynamics"

    def __init__(
        self,
        data_dir: str,
        autoencoder_run: str,
        preset_name: str = "small",
        seed: int = 0,
        window: int | None = None,
        text_encoder: str = "hash",
        *,
        batch_size: int = 8,
        model_overrides: dict[str, Any] | None = None,
        val_fraction: float = 0.05,
        flow: FlowConfig | None = None,
        play: SamplerConfig | None = None,
        init: str | None = None,
        device: str = "cpu",
        actions: str = "recorded",
    ) -> None:
        store, ae, clips, (train_eps, val_eps) = encode_store_split(
            data_dir, autoencoder_run, val_fraction, device
        )
        w, h = store.size
        spec = store.action_spec
        if actions != "recorded":  # an action stream written after recording, e.g. latent actions
            spec = _use_stream(store, actions, clips, [train_eps, val_eps])
        info = {
            "path": os.path.abspath(data_dir),
            "world": store.meta.get("world"),
            "width": w,
            "height": h,
            "action_spec": spec,
            "actions": actions,
            "autoencoder": os.path.abspath(autoencoder_run),
            "episodes": len(store),
            "seed_ranges": seed_ranges(store.seeds),  # eval's held-out check needs no copy of the store
            "val_episodes": val_eps,
            "train_frames": int(sum(clips[0].lengths)),
        }
        self._setup(
            clips[0],
            clips[1] if val_eps else None,
            spec,
            preset_name,
            seed,
            window,
            text_encoder,
            batch_size,
            model_overrides,
            flow,
            info,
            ae,
        )
        self.play = play or self.default_play(self.flow)
        self.init = init
        if init:
            self.data_info["init"] = init if init == "default" else os.path.abspath(init)

    @staticmethod
    def default_play(flow: FlowConfig) -> SamplerConfig:
        """The play settings saved with a run: 2 Euler steps, context noise inside the trained range."""
        return SamplerConfig(steps=2, context_noise=min(0.1, flow.context_noise_max))

    @classmethod
    def from_latents(
        cls,
        train: LatentClips,
        val: LatentClips | None,
        action_spec: dict[str, Any],
        preset_name: str = "tiny",
        seed: int = 0,
        window: int | None = None,
        text_encoder: str = "hash",
        *,
        batch_size: int = 8,
        model_overrides: dict[str, Any] | None = None,
        flow: FlowConfig | None = None,
        autoencoder: Autoencoder | None = None,
    ) -> DynamicsTask:
        """A task over latents already in memory (tests, benchmarks, other encoders)."""
        self = cls.__new__(cls)
        info = {"source": "in-memory latents", "train_frames": int(sum(train.lengths))}
        self._setup(
            train,
            val,
            action_spec,
            preset_name,
            seed,
            window,
            text_encoder,
            batch_size,
            model_overrides,
            flow,
            info,
            autoencoder,
        )
        self.play, self.init = cls.default_play(self.flow), None
        return self

    def _setup(
        self,
        train: LatentClips,
        val: LatentClips | None,
        spec: dict[str, Any],
        preset_name: str,
        seed: int,
        window: int | None,
        text_encoder: str,
        batch_size: int,
        overrides: dict[str, Any] | None,
        flow: FlowConfig | None,
        info: dict[str, Any],
        ae: Autoencoder | None,
    ) -> None:
        C, h, w = train.z.shape[1:]
        base = dynamics_preset(preset_name)
        window = window or base.max_context + 1
        if window < 2:
            raise ReverieError(f"bad window {window}: the dynamics model needs at least 2 frames per window")
        actions = ActionSpec.from_dict(spec)
        auto: dict[str, Any] = {
            "latent_channels": C,
            "action_type": actions.kind,
            "num_actions": actions.n if actions.is_discrete else 1,
            "action_dim": actions.action_dim,
            "text_encoder": text_encoder,
            "max_context": window - 1,  # the cache never holds more context than training showed
        }
        auto["patch"] = choose_patch(h, w)  # the token size follows the latent grid
        self.model_cfg: Any = replace(base, **(auto | dict(overrides or {})))
        if self.model_cfg.latent_channels != C:
            raise ReverieError(
                f"the dynamics config wants {self.model_cfg.latent_channels} latent channels but the "
                f"autoencoder gives {C}; drop the latent_channels override"
            )
        self.preset_name, self.seed, self.window, self.batch_size = preset_name, seed, window, batch_size
        self.flow = flow or FlowConfig()
        self.adversary: Adversary | None = None  # set by build_model when flow.adv_weight > 0
        self.train_clips, self.val_clips, self.ae, self.data_info = train, val, ae, info
        self.starts, _ = train.window_index(window)
        if len(self.starts) == 0:
            raise ReverieError(
                f"no training episode holds a window of {window} frames (longest: {max(train.lengths, default=0)}); "
                "use a shorter --window or record longer episodes"
            )
        encoder = get_text_encoder(text_encoder)
        self.model_cfg = replace(self.model_cfg, text_dim=encoder.dim)
        for clips in (train, val):
            if clips is not None:
                clips.text = torch.from_numpy(encoder.encode(clips.captions))
                clips.text_null = torch.tensor([not c.strip() for c in clips.captions], dtype=torch.bool)

    # -- the Task contract -------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        """The dynamics network (and, with flow.adv_weight > 0, the critic beside it: built here,
        after the loop has seeded torch, so a fresh run starts from the same critic every time)."""
        model = build_dynamics(self.model_config())
        self.adversary = None
        if self.flow.adv_weight > 0:
            f = self.flow
            dreams = DreamPool(f.dream_rows, f.dream_frames, f.dream_advance) if f.dream_rows else None
            self.adversary = Adversary.for_model(self.model_cfg, f.adv_lr, dreams, self._critic_decoder())
        if self.init:  # a fine-tune: start from another run's shipped (EMA) weights
            cfg, state = load_init(self.init)
            # A blur input may be added and blocks put between the init's: both start as the identity
            # (a zero embedding, adaLN-Zero blocks), so the grown model starts as the one it was.
            want = self.model_cfg
            grown = replace(
                cfg,
                blur_input=cfg.blur_input or want.blur_input,
                depth=want.depth if want.depth % cfg.depth == 0 else cfg.depth,
            )
            if grown != want:
                changes = config_changes(asdict(cfg), asdict(want))
                raise ReverieError(
                    f"--init {self.init}: that model differs from the one this run asks for "
                    f"({'; '.join(changes)}); use its preset, data (its action space) and model.* settings"
                    f" (only model.blur_input=true may be added, and model.depth raised to a multiple of "
                    f"{cfg.depth})"
                )
            placed = deepen(state, cfg.depth, want.depth)
            missing, unexpected = model.load_state_dict(placed, strict=False)
            kept = {k.split(".")[1] for k in placed if k.startswith("blocks.")}  # the init's blocks' places
            fresh = [
                k
                for k in missing
                if not k.startswith("blur_embed.")
                and not (k.startswith("blocks.") and k.split(".")[1] not in kept)
            ]
            assert not unexpected and not fresh, (fresh, unexpected)  # only the grown parts start fresh
            grown = [i for i in range(want.depth) if str(i) not in kept]
            if grown:  # saved with the run, so a resumed run knows them (and their learning rate)
                self.data_info["grown_blocks"] = grown
        return model

    @property
    def grown(self) -> tuple[str, ...]:
        """Parameter-name prefixes of the blocks this run grew from its --init (TrainConfig.grown_lr_scale)."""
        return tuple(f"blocks.{i}." for i in self.data_info.get("grown_blocks", ()))

    def _critic_decoder(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """The frozen autoencoder decoder the pixel critic judges through (None for the latent one)."""
        if self.flow.adv_space != "pixel":
            return None
        if self.ae is None:
            raise ReverieError("flow.adv_space=pixel judges decoded frames: this task has no autoencoder")
        ae = self.ae.eval().requires_grad_(False)  # its weights stay; gradients pass through to z
        return ae.decode

    def extra_config(self) -> dict[str, Any]:
        """Saved in the run's config.json beside model/train/data: the objective and the play settings."""
        return {"flow": asdict(self.flow), "sampler": asdict(self.play)}

    def _windows(self, clips: LatentClips, starts: np.ndarray) -> dict[str, torch.Tensor]:
        idx = torch.from_numpy(starts[:, None] + np.arange(self.window))  # (B, T) frame rows
        cap = clips.cap[idx]
        assert clips.text is not None and clips.text_null is not None
        return {
            "z": clips.z[idx].float(),  # (B, T, C, h, w)
            "act": clips.act[idx],
            "text": clips.text[cap],  # (B, T, E): captions may change inside a window
            "text_null": clips.text_null[cap],
        }

    def batch(self, step: int, rank: int, world_size: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step, rank])
        return self._windows(
            self.train_clips, self.starts[rng.integers(0, len(self.starts), self.batch_size)]
        )

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        act = batch["act"] if self.model_cfg.action_type != "none" else None
        return flow_loss(
            model, batch["z"], act, batch["text"], self.flow, text_null=batch["text_null"],
            adversary=self.adversary,
        )  # fmt: skip

    def _eval_windows(self, n: int = 8) -> dict[str, torch.Tensor]:
        clips = self.val_clips or self.train_clips
        starts, _ = clips.window_index(self.window)
        if len(starts) == 0:
            clips, starts = self.train_clips, self.starts
        return self._windows(clips, starts[np.linspace(0, len(starts) - 1, min(n, len(starts))).astype(int)])

    @torch.no_grad()
    def rollout(
        self, model: nn.Module, batch: dict[str, torch.Tensor], context: int, steps: int = 2
    ) -> torch.Tensor:
        """Generate frames context.. of each window from its real first `context` frames and real actions."""
        z, act = batch["z"], batch["act"]
        text = batch["text"][:, context - 1]
        rollout = make_rollout(model, replace(self.play, steps=steps))
        gen = torch.Generator().manual_seed(self.seed)
        has_act = self.model_cfg.action_type != "none"
        rollout.reset(
            z[:, :context],
            act[:, :context] if has_act else None,
            text,
            text_null=batch["text_null"][:, context - 1],
            generator=gen,
        )
        frames = [rollout.step(act[:, i] if has_act else None, gen) for i in range(context, z.shape[1])]
        return torch.stack(frames, 1)  # (B, T - context, C, h, w)

    def _eval_batch(self, net: nn.Module, n: int) -> dict[str, torch.Tensor]:
        dev = next(net.parameters()).device  # the loop trains on a GPU when there is one
        return {k: v.to(dev) for k, v in self._eval_windows(n).items()}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Held-out latent MSE: one generated frame (teacher-forced) and a rollout, vs copy-last-frame."""
        net = unwrap(model)
        assert isinstance(net, DiT)
        batch = self._eval_batch(net, 8)
        ctx = max(1, self.window // 2)
        z = batch["z"]
        gen = self.rollout(net, batch, ctx)
        copy = z[:, ctx - 1 : ctx]
        return {
            "next_mse": float((gen[:, 0] - z[:, ctx]).pow(2).mean()),
            "copy_last_next_mse": float((copy[:, 0] - z[:, ctx]).pow(2).mean()),
            "rollout_mse": float((gen - z[:, ctx:]).pow(2).mean()),
            "copy_last_rollout_mse": float((copy - z[:, ctx:]).pow(2).mean()),
        }

    def log_samples(self, model: nn.Module, writer: SummaryWriter, step: int) -> None:
        net = unwrap(model)
        assert isinstance(net, DiT)
        batch = self._eval_batch(net, 4)
        ctx = max(1, self.window // 2)
        gen = self.rollout(net, batch, ctx)
        if self.ae is None:
            return
        from reverie.models.autoencoder import tensor_to_frames

        z = batch["z"]
        fake = torch.cat([z[:, :ctx], gen], 1)
        B, T = z.shape[:2]
        with torch.no_grad():
            dev = next(self.ae.parameters()).device
            real_px = tensor_to_frames(self.ae.decode(z.flatten(0, 1).to(dev))).reshape(B, T, *self._px(z))
            fake_px = tensor_to_frames(self.ae.decode(fake.flatten(0, 1).to(dev))).reshape(B, T, *self._px(z))
        rows = [np.concatenate(list(clip), axis=1) for pair in zip(real_px, fake_px) for clip in pair]
        writer.add_image(
            "samples/real|generated (context, then rollout)", np.concatenate(rows, 0), step, dataformats="HWC"
        )
        dreams = self.adversary.dreams if self.adversary is not None else None
        if dreams is not None and dreams.z is not None:  # what the critic sees far into play
            with torch.no_grad():
                d = dreams.z[: min(8, dreams.rows)]
                px = tensor_to_frames(self.ae.decode(d.flatten(0, 1).to(dev))).reshape(
                    *d.shape[:2], *self._px(z)
                )
            rows = [np.concatenate(list(clip), axis=1) for clip in px]
            writer.add_image(
                "samples/dreams (newest frames of each)", np.concatenate(rows, 0), step, dataformats="HWC"
            )

    def _px(self, z: torch.Tensor) -> tuple[int, int, int]:
        assert self.ae is not None
        s = self.ae.stride
        return (z.shape[-2] * s, z.shape[-1] * s, 3)

    def model_config(self) -> dict:
        return json.loads(json.dumps(asdict(self.model_cfg)))

    def data_config(self) -> dict:
        return json.loads(json.dumps(self.data_info))

    def card(self) -> str:
        c = self.model_cfg
        C, h, w = self.train_clips.z.shape[1:]
        n = sum(p.numel() for p in build_dynamics(self.model_config()).parameters())
        tokens = ((h + c.patch - 1) // c.patch) * ((w + c.patch - 1) // c.patch)
        arch = (
            f"Diffusion transformer (preset {self.preset_name}: d={c.dim}, {c.depth} layers, {c.heads} heads, "
            f"{n / 1e6:.2f} M parameters) over {w}x{h}x{C} autoencoder latents, patch {c.patch} "
            f"({tokens} tokens per frame), block-causal attention over up to {c.max_context} context frames."
        )
        return "\n".join(
            [
                "# reverie dynamics model",
                "",
                arch,
                f"Conditioning: noise level, action ({c.action_type}), text ({c.text_encoder} encoder, "
                f"{c.text_dim}-d, adaptive normalisation). Objective: rectified flow (v-prediction), windows of {self.window} frames, "
                f"{self.flow.p_play:.0%} in the play layout (every frame a target against lightly noised "
                f"context) and the rest diffusion forcing; context noise up to {self.flow.context_noise_max}; "
                f"t: {self.flow.p_uniform_t:.0%} uniform, {self.flow.p_one_t:.0%} at 1, the rest logit-normal. "
                + (
                    f"Self-forcing: {self.flow.p_self:.0%} of the play-layout windows see the model's own "
                    f"{self.flow.self_steps}-step rollout as context after a real prefix"
                    + (
                        f", at most {self.flow.self_frames} own frame{'s' if self.flow.self_frames > 1 else ''} before a target"
                        if self.flow.self_frames
                        else ""
                    )
                    + (
                        ", the real prefix blurred as the other windows' context"
                        if self.flow.self_blur_prefix
                        else ""
                    )
                    + (
                        f", the own frames' means over {b}x{b}-cell blocks replaced by the real frames' (only their detail is the model's). "
                        if (b := self.flow.self_colour_block)
                        else ". "
                    )
                    if self.flow.p_self
                    else ""
                )
                + _blur_sentence(self.flow, self.model_cfg.blur_input)
                + _adv_sentence(self.flow)
                + played_with(
                    self.play.steps,
                    self.play.context_noise,
                    self.play.context_blur,
                    self.play.guidance,
                    self.play.guide,
                )
                + (f" Fine-tuned from {self.data_info['init']}." if self.data_info.get("init") else ""),
                "Load with `reverie.models.dynamics.load_dynamics(RUN)`; sample with `reverie.models.dynamics.make_rollout`.",
                "",
                f"Data: {json.dumps({k: v for k, v in self.data_info.items() if k != 'val_episodes'})}",
            ]
        )

    def frames_per_batch(self) -> int:
        return self.batch_size * self.window


def encode_store_split(
    data_dir: str, autoencoder_run: str, val_fraction: float, device: str = "cpu"
) -> tuple[Any, Autoencoder, list[LatentClips], tuple[list[int], list[int]]]:
    """(store, autoencoder, [train, held-out] latents, their episode indices) of a store encoded by
    an autoencoder trained at its frame size (refused otherwise, naming both sizes)."""
    from reverie.checkpoint import load_run
    from reverie.data.store import EpisodeStore
    from reverie.models.autoencoder import load_autoencoder
    from reverie.train.autoencoder_task import split_episodes

    store = EpisodeStore.open(data_dir)
    if len(store) == 0:
        raise ReverieError(f"{data_dir}: the episode store holds no episodes; record some first")
    ae = load_autoencoder(autoencoder_run, device)
    ae_data = load_run(autoencoder_run)[0].get("data", {})
    w, h = store.size
    ae_size = (ae_data.get("width"), ae_data.get("height"))
    if None not in ae_size and ae_size != (w, h):
        raise ReverieError(
            f"the autoencoder {autoencoder_run} was trained on {ae_size[0]}x{ae_size[1]} frames but the "
            f"store {data_dir} holds {w}x{h} frames; train an autoencoder on this store (or record at "
            f"{ae_size[0]}x{ae_size[1]})"
        )
    ae.latent_shape(h, w)  # raises a clear error if the stride does not divide the frame size
    parts = split_episodes(len(store), val_fraction)
    clips = [
        encode_episodes_cached(store, eps, ae, autoencoder_run, device, label)
        for eps, label in zip(parts, ("train", "val"))
    ]
    return store, ae, clips, parts


def _use_stream(store: Any, name: str, clips: list[LatentClips], parts: list[list[int]]) -> dict[str, Any]:
    """Put action stream `name` of the store in place of the recorded actions of `clips`; its spec."""
    from reverie.data.streams import read_stream

    spec, act = read_stream(store, name)
    for c, eps in zip(clips, parts):
        c.act = torch.from_numpy(np.concatenate([act[i] for i in eps])) if eps else c.act[:0].long()
    return spec


def played_with(
    steps: int, context_noise: float, context_blur: float = 0.0, guidance: float = 1.0, guide: str = "text"
) -> str:
    """The model card's sentence on the play settings (an export that sets its own rewrites it)."""
    blur = f" and its own frames told context blur {context_blur}" if context_blur else ""
    guided = f", guidance {guidance} on the {guide}" if guidance != 1.0 else ""
    return (
        f"Played with {steps} Euler step{'' if steps == 1 else 's'} at context noise {context_noise}{blur}"
        f"{guided}."
    )


PLAYED_WITH = re.compile(
    r"Played with \d+ Euler steps? at context noise [0-9.e-]+(?: and (?:its own frames told )?context blur [0-9.e-]+)?"
    r"(?:, guidance [0-9.e-]+ on the (?:text|action|both))?\."
)


def load_init(run: str) -> tuple[Any, dict[str, torch.Tensor]]:
    """(model config, EMA weights) of a dynamics run, model package or "default" to fine-tune from."""
    from reverie.checkpoint import check_kind, load_run
    from reverie.models.shipped import resolve_model

    path = resolve_model(run)
    config, state = load_run(path)
    check_kind(config, "dynamics", path)
    return dynamics_config(config["model"]), {k: v.float() for k, v in state.items()}


def _latent_key(store: Any, episodes: list[int], autoencoder_run: str) -> str:
    """Hash of the frames (store path, episode ids, lengths, seeds, write times) and the encoder weights."""
    import hashlib

    from reverie.checkpoint import MODEL_FILE
    from reverie.models.shipped import resolve_model

    h = hashlib.sha256(b"latents-v1")
    with open(Path(resolve_model(autoencoder_run)) / MODEL_FILE, "rb") as f:
        h.update(hashlib.sha256(f.read()).digest())
    eps = [
        (i, int(store.lengths[i]), store.seeds[i], os.stat(store.episode_path(i)).st_mtime_ns)
        for i in episodes
    ]
    h.update(json.dumps([os.path.abspath(store.path), eps]).encode())
    return h.hexdigest()[:32]


# How often a local rank other than 0 looks for the cache entry local rank 0 is writing.
CACHE_POLL_S = 2.0


def encode_episodes_cached(
    store: Any,
    episodes: list[int],
    ae: Autoencoder,
    autoencoder_run: str,
    device: str,
    label: str,
    local_rank: int | None = None,
) -> LatentClips:
    """`encode_episodes`, kept in the latent cache (reverie.cache) so a resumed or repeated run skips it.

    Encoding is the slow part of starting a run (125-300 frames/s on a 2-core CPU: an hour for the
    500,000 frames of a 1,000-episode store on the slower one); the cache file holds float16 latents
    (~1.5 KB a frame at 64x64) and loads in seconds. Under torchrun (`local_rank`: LOCAL_RANK by
    default) only local rank 0 encodes, on every CPU the processes of this machine have, and the
    others wait for its entry: each encoding the store on its own one thread took twice as long.
    """
    from reverie.cache import cache_dir

    if local_rank is None:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    path = cache_dir("latents") / f"{_latent_key(store, episodes, autoencoder_run)}.safetensors"
    cached = _read_cached(path)
    if cached is not None:
        return cached
    if local_rank > 0:
        return _wait_for_cached(path, label)
    path.unlink(missing_ok=True)  # a damaged cache entry is recomputed, never trusted
    threads = torch.get_num_threads()
    torch.set_num_threads(max(threads, usable_cpus()))  # the other local ranks only wait
    try:
        clips = encode_episodes(store, episodes, ae, device, label)
    finally:
        torch.set_num_threads(threads)
    clips.z = clips.z.half().float()  # what the cache returns next time (exact for bf16 encodings)
    _write_cached(path, clips)
    return clips


def _read_cached(path: Path) -> LatentClips | None:
    """The latents of a cache entry, or None where there is none or it cannot be read."""
    from safetensors.torch import load_file

    try:
        t = load_file(str(path))
        meta = json.loads(bytes(t["meta"].numpy()).decode())
        return LatentClips(t["z"].float(), t["act"], t["cap"], meta["captions"], meta["lengths"])
    except Exception:
        return None


def _write_cached(path: Path, clips: LatentClips) -> None:
    from safetensors.torch import save_file

    meta = np.frombuffer(
        json.dumps({"captions": clips.captions, "lengths": clips.lengths}).encode(), np.uint8
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tensors = {"z": clips.z.half(), "act": clips.act, "cap": clips.cap, "meta": torch.from_numpy(meta.copy())}
    save_file(tensors, str(tmp))
    os.replace(tmp, path)  # atomic: a killed run leaves no half-written entry under the real name


def _wait_for_cached(path: Path, label: str) -> LatentClips:
    """The cache entry local rank 0 is encoding, once it is there. If rank 0 dies torchrun stops this
    process too, so the wait needs no timeout of its own."""
    import time

    print(f"reverie: waiting for local rank 0 to encode the {label} frames ({path})", flush=True)
    while (cached := _read_cached(path)) is None:
        time.sleep(CACHE_POLL_S)
    return cached


@torch.no_grad()
def encode_episodes(
    store: Any, episodes: list[int], ae: Autoencoder, device: str, label: str, chunk: int = 256
) -> LatentClips:
    """Encode the frames of `episodes` once (in chunks, bf16 autocast where the hardware has bf16 math)
    with a progress bar."""
    from tqdm import tqdm

    from reverie.models.autoencoder import frames_to_tensor

    spec = store.spec
    total = int(sum(store.lengths[i] for i in episodes))
    C, h, w = ae.latent_shape(store.size.height, store.size.width)
    z = torch.empty(total, C, h, w)
    act = torch.zeros(total, spec.action_dim) if spec.is_box else torch.zeros(total, dtype=torch.long)
    cap = torch.empty(total, dtype=torch.long)
    ids: dict[str, int] = {}
    lengths: list[int] = []
    dev = torch.device(device)
    amp = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=native_bf16(dev))
    row = 0
    with tqdm(total=total, desc=f"encoding {label} frames", unit="frame", disable=total == 0) as bar:
        for i in episodes:
            ep = store.read(i)
            n = len(ep)
            for lo in range(0, n, chunk):
                x = frames_to_tensor(ep.obs[lo : lo + chunk]).to(dev)
                with amp:
                    z[row + lo : row + lo + len(x)] = ae.encode(x).float().cpu()
                bar.update(len(x))
            if ep.act is not None:
                act[row : row + n] = torch.as_tensor(np.asarray(ep.act)).reshape(act[row : row + n].shape)
            cap[row : row + n] = torch.tensor([ids.setdefault(c, len(ids)) for c in ep.captions])
            lengths.append(n)
            row += n
    return LatentClips(z, act, cap, list(ids), lengths)


def _blur_sentence(flow: FlowConfig, told: bool = False) -> str:
    """The model card's words for the context blur, empty when it is off; `told`: the network is
    given the weight (DiTConfig.blur_input)."""
    if not flow.context_blur_max:
        return ""
    which = (
        f"{flow.context_blur_p:.0%} of the play windows have their context"
        if flow.context_blur_p < 1
        else "each play window's context"
    )
    tell = ", and the network is told the weight" if told else ""
    return f"Context blur: {which} mixed with its 3x3 latent average by a weight uniform in [0, {flow.context_blur_max}]{tell}, the targets real. "


def _adv_sentence(flow: FlowConfig) -> str:
    """The model card's words for the adversarial term, empty when it is off."""
    if not flow.adv_weight:
        return ""
    what = f"a {flow.adv_space} critic, weight {flow.adv_weight}"
    if flow.adv_detail_block:
        what += f", on detail within {flow.adv_detail_block}x{flow.adv_detail_block}-cell blocks only"
    judged = "the play windows with real context" + (" and the self-forcing windows" if flow.adv_self else "")
    if flow.dream_rows:
        judged += (
            f" and of {flow.dream_rows} free-running dreams (each up to {flow.dream_frames} frames deep)"
        )
    return f"Adversarial term: {what}, judging the 1-step samples of {judged}. "
