"""A trained world model: a dynamics run with its autoencoder and text encoder, loaded once.

The play engine (`ModelBackend`), offline generation and eval all load runs through here: the
autoencoder path, frame size and action spec come from the run's config.json, and weights are cast
to bf16 where the CPU has native bf16 (fp32 otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reverie.cpus import uses_bf16
from reverie.errors import ReverieError
from reverie.models.shipped import resolve_model
from reverie.sizes import Size
from reverie.worlds.action_spec import ActionSpec

DEFAULT_FPS = 15.0  # runs that do not record their data's frame rate
PRECISIONS = ("auto", "bf16", "fp32")
# Whether a dream started from real frames (the player's start walk with no image and no prompt; eval's
# held-out contexts) takes the world's own caption of its last frame as its text (a world that writes
# none plays with the null text either way). The models are trained with the recorded captions on 90%
# of their windows, and the caption buys trajectory: measured on the shipped model (full eval, 16
# held-out episodes) rollout PSNR@16 +1.07 dB, dtPSNR@16 +0.39 dB, the dream's Frechet distance in its
# first minute 1.31 -> 0.37x the real floor. But the caption stays the start room's while the real
# walk moves on to other rooms, and the dream's later minutes drift further from the real world's
# frames (minute 5: 2.08 -> 3.64x the floor, past the bar of 3), so it is off by default
# (docs/bakeoff.md, "The start room's caption").
START_CAPTION = False


def autoencoder_path(run: str, config: dict[str, Any]) -> str:
    """The autoencoder a dynamics run names; a relative path is relative to the run (shipped models)."""
    path = Path(str(config["data"]["autoencoder"]))
    return str(path if path.is_absolute() else Path(run) / path)


def choose_dtype(precision: str) -> torch.dtype:
    if precision not in PRECISIONS:
        raise ReverieError(f"bad precision {precision!r}: accepted {', '.join(PRECISIONS)}")
    if uses_bf16(precision, "cpu"):
        return torch.bfloat16
    return torch.float32


@dataclass
class WorldModel:
    dit: Any  # reverie.models.dit.DiT
    ae: Any  # reverie.models.autoencoder.Autoencoder
    text_encoder: Any
    spec: dict[str, Any]  # the action spec's JSON form, as in the run's config.json
    world: str  # the world id the data came from ("video" for imported clips)
    size: Size
    fps: float
    dtype: torch.dtype
    sampler: Any = None  # reverie.models.sampler.SamplerConfig: the play settings the model ships with
    actions: ActionSpec = field(init=False, repr=False)  # `spec`, typed (and so validated)

    def __post_init__(self) -> None:
        self.actions = ActionSpec.from_dict(self.spec)

    @property
    def max_context(self) -> int:
        return int(self.dit.cfg.max_context)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return tuple(self.ae.latent_shape(self.size.height, self.size.width))  # type: ignore[return-value]

    def action_names(self) -> list[str]:
        return [str(n) for n in self.actions.names or ()]

    @torch.inference_mode()
    def encode(self, frames: np.ndarray, batch: int = 32) -> torch.Tensor:
        """uint8 (T, H, W, 3) -> latents (T, C, h, w) float32."""
        from reverie.models.autoencoder import frames_to_tensor

        out = []
        for i in range(0, len(frames), batch):
            x = frames_to_tensor(np.ascontiguousarray(frames[i : i + batch])).to(self.dtype)
            out.append(self.ae.encode(x.contiguous(memory_format=torch.channels_last)).float())
        return torch.cat(out)

    @torch.inference_mode()
    def decode(self, z: torch.Tensor, batch: int = 32) -> np.ndarray:
        """latents (T, C, h, w) -> uint8 (T, H, W, 3)."""
        from reverie.models.autoencoder import tensor_to_frames

        return np.concatenate(
            [tensor_to_frames(self.ae.decode(z[i : i + batch])) for i in range(0, len(z), batch)]
        )

    def text(self, prompt: str | None) -> torch.Tensor | None:
        """(1, E) sentence embedding, or None without a prompt (the model's null text)."""
        if not prompt:
            return None
        return torch.from_numpy(np.asarray(self.text_encoder.encode([prompt]), np.float32))

    def act_tensor(self, actions: list[Any]) -> torch.Tensor | None:
        """Actions (spec's own form) -> (T,) int64 or (T, D) float32; None for action-less models."""
        if self.actions.is_discrete:
            return torch.tensor([int(np.asarray(a).reshape(-1)[0]) for a in actions], dtype=torch.long)
        if self.actions.is_box:
            return torch.from_numpy(
                np.stack([self.actions.encode(a) for a in actions]).reshape(len(actions), -1)
            )
        return None


def load_world_model(run: str, precision: str = "auto", threads: int | None = None) -> WorldModel:
    """Load a `reverie train dynamics` run (and the autoencoder it names); "default": the shipped one."""
    from reverie.checkpoint import check_kind, load_run
    from reverie.load_check import check_data
    from reverie.models.autoencoder import load_autoencoder
    from reverie.models.dynamics import load_dynamics
    from reverie.models.text import get_text_encoder

    run = resolve_model(run)
    config, _ = load_run(run)
    check_kind(config, "dynamics", run)
    data = config.get("data", {})
    if (
        not isinstance(data, dict)
        or not data.get("autoencoder")
        or "action_spec" not in data
        or "width" not in data
    ):
        raise ReverieError(
            f"{run}: the run does not record its autoencoder, frame size and action spec; "
            "accepted: a run made by `reverie train dynamics`"
        )
    check_data(data, run)  # types and bounds, before anything is built from them
    if threads:
        torch.set_num_threads(threads)
    dtype = choose_dtype(precision)
    return WorldModel(
        dit=load_dynamics(run).to(dtype).eval(),
        ae=load_autoencoder(autoencoder_path(run, config)).to(dtype).eval(),
        text_encoder=get_text_encoder(str(config["model"].get("text_encoder", "hash"))),
        spec=dict(data["action_spec"]),
        world=str(data.get("world") or "video"),
        size=Size(int(data["width"]), int(data["height"])),
        fps=float(data.get("fps") or DEFAULT_FPS),
        dtype=dtype,
        sampler=play_settings(config),
    )


def play_settings(config: dict[str, Any]) -> Any:
    """The sampler settings a dynamics run is played with: its config's "sampler" entry over the defaults.

    Training writes the settings its objective was built for (e.g. the context noise level the model
    learned to expect), so play, eval and generation all run the model the same way unless told
    otherwise.
    """
    from reverie.models.sampler import SamplerConfig
    from reverie.typed_config import config_from_dict

    return config_from_dict(SamplerConfig, config.get("sampler") or {}, "sampler setting")
