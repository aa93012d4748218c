"""Generation modes: text/image to video, extension forward or backward, gap filling, interpolation.

Every mode returns uint8 frames (T, H, W, 3) at the model's frame size. Frames the user gives (the
start image, the input clip) are copied through pixel for pixel: only new frames go through the
autoencoder's decoder. (An MP4 written afterwards is lossy H.264 like any MP4; the exactness is
of the frames handed to the writer.)

The dynamics model is causal in time: a frame sees only the frames before it. Hence:
- backward extension reverses the clip, extends it forward and reverses the result. This assumes
  the world's dynamics look plausible played backwards (walking backwards through a corridor looks
  like walking forwards); the model was trained forwards only, so backward frames are a best guess.
- filling a gap cannot let the frames after the gap steer the generated ones through attention.
  We generate the gap forwards from the left context `candidates` times (different seeds, hence
  different noise and explore-policy actions) and keep the candidate whose last generated latent is
  closest (mean squared error) to the latent of the first frame after the gap: a search, not a
  constraint, so the seam at the right edge can still jump. A gap at the very start is filled the
  same way on the reversed clip (see backward extension).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from reverie.errors import ReverieError
from reverie.generate.actions import frame_actions
from reverie.models.dynamics import make_rollout
from reverie.models.sampler import SamplerConfig, sample_video
from reverie.models.world_model import WorldModel


@dataclass
class GenOptions:
    seed: int = 0
    sampler: SamplerConfig | None = None  # None: the model's own play settings
    prompt: str | None = None
    candidates: int = 4  # gap filling: rollouts to choose from
    progress: bool = False


def _fill(
    model: torch.nn.Module,
    z: torch.Tensor,
    known: list[bool],
    act: torch.Tensor | None,
    act_known: list[bool] | None,
    text: torch.Tensor | None,
    cfg: SamplerConfig | None,
    *,
    seed: int,
    progress: bool = False,
    desc: str = "generate",
) -> torch.Tensor:
    """One session's unknown frames of z (T, C, h, w) filled by `sample_video`, seeded, with a bar."""
    from tqdm import tqdm

    gen = torch.Generator().manual_seed(int(seed))
    with tqdm(total=len(known) - sum(known), unit="frame", desc=desc, disable=not progress) as bar:
        batch_act = act[None] if act is not None else None  # (1, T) / (1, T, D)
        out = sample_video(
            make_rollout(model, cfg), z[None], known, batch_act, text, act_known=act_known, generator=gen,
            on_frame=bar.update,
        )  # fmt: skip
    return out[0]


def generate(
    model: WorldModel,
    frames: int,
    opts: GenOptions,
    *,
    image: np.ndarray | None = None,
    script: list[int] | None = None,
) -> np.ndarray:
    """A clip of `frames` frames from a prompt and/or a start image (a clean first frame, kept exactly)."""
    from reverie.worlds.adapters import fit_frame

    if frames < 1:
        raise ReverieError(f"bad frame count {frames}: accepted 1 or more")
    C, h, w = model.latent_shape
    z = torch.zeros(frames, C, h, w)
    known = [False] * frames
    first = None
    if image is not None:
        first = fit_frame(image, model.size)
        z[0] = model.encode(first[None])[0]
        known[0] = True
    act = model.act_tensor(frame_actions(model.actions, frames, opts.seed, script))
    out_z = _fill(
        model.dit, z, known, act, None, model.text(opts.prompt), opts.sampler or model.sampler,
        seed=opts.seed, progress=opts.progress,
    )  # fmt: skip
    gen = list(range(1 if first is not None else 0, frames))
    out = np.zeros((frames, model.size.height, model.size.width, 3), np.uint8)
    if gen:
        out[gen] = model.decode(out_z[gen])
    if first is not None:
        out[0] = first
    return out


def generate_samples(
    model: WorldModel, frames: int, samples: int, opts: GenOptions, **kw: Any
) -> list[np.ndarray]:
    """`samples` futures; sample i is exactly what seed `opts.seed + i` gives on its own."""
    from dataclasses import replace

    if samples < 1:
        raise ReverieError(f"bad sample count {samples}: accepted 1 or more")
    return [generate(model, frames, replace(opts, seed=opts.seed + i), **kw) for i in range(samples)]


def _check_clip(clip: np.ndarray, model: WorldModel) -> None:
    H, W = model.size.height, model.size.width
    if clip.ndim != 4 or clip.shape[1:] != (H, W, 3) or clip.dtype != np.uint8 or len(clip) < 1:
        raise ReverieError(f"clip must be uint8 (T, {H}, {W}, 3) with T >= 1, got {clip.dtype} {clip.shape}")


def _continue(
    model: WorldModel, clip: np.ndarray, n: int, opts: GenOptions, seed: int, desc: str
) -> torch.Tensor:
    """Latents (n, C, h, w) of n frames generated after the clip (its actions unknown)."""
    ctx = clip[-model.max_context :]
    z_ctx = model.encode(ctx)
    Tc = len(ctx)
    z = torch.cat([z_ctx, torch.zeros(n, *z_ctx.shape[1:])])  # (Tc + n, C, h, w)
    act = model.act_tensor(frame_actions(model.actions, Tc + n, seed))
    act_known = [False] * Tc + [True] * n
    out = _fill(
        model.dit, z, [True] * Tc + [False] * n, act, act_known, model.text(opts.prompt), opts.sampler or model.sampler,
        seed=seed, progress=opts.progress, desc=desc,
    )  # fmt: skip
    return out[Tc:]


def extend(
    model: WorldModel, clip: np.ndarray, frames: int, opts: GenOptions, *, backward: bool = False
) -> np.ndarray:
    """The clip with `frames` new frames after it (or before it, with backward); given frames kept exactly."""
    _check_clip(clip, model)
    if frames < 1:
        raise ReverieError(f"bad frame count {frames}: accepted 1 or more")
    src = clip[::-1] if backward else clip
    new = model.decode(_continue(model, np.ascontiguousarray(src), frames, opts, opts.seed, "extend"))
    return np.concatenate([new[::-1], clip]) if backward else np.concatenate([clip, new])


def _best_gap(
    model: WorldModel, left: np.ndarray, n: int, right: np.ndarray | None, opts: GenOptions
) -> np.ndarray:
    """n frames after `left` (T, H, W, 3); with `right` (H, W, 3), the candidate that ends nearest it."""
    tries = opts.candidates if right is not None else 1
    z_right = model.encode(right[None])[0] if right is not None else None
    best, best_err = None, float("inf")
    for c in range(tries):
        z = _continue(model, left, n, opts, opts.seed + c, f"fill {c + 1}/{tries}")
        err = float(((z[-1] - z_right) ** 2).mean()) if z_right is not None else 0.0
        if err < best_err:
            best, best_err = z, err
    assert best is not None
    return model.decode(best)


def parse_span(text: str, length: int) -> tuple[int, int]:
    """`10-20` -> (10, 20): 0-based frame indices, both ends included, inside a clip of `length`."""
    parts = text.split("-")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ReverieError(f"bad --missing {text!r}; accepted form: FIRST-LAST frame indices, e.g. 10-20")
    a, b = (int(p) for p in parts)
    if not 0 <= a <= b < length:
        raise ReverieError(
            f"bad --missing {text!r}: accepted FIRST <= LAST inside the clip's frames 0-{length - 1}"
        )
    if a == 0 and b == length - 1:
        raise ReverieError("--missing covers the whole clip; accepted: a span that leaves some frames given")
    return a, b


def fill(model: WorldModel, clip: np.ndarray, first: int, last: int, opts: GenOptions) -> np.ndarray:
    """Regenerate frames first..last (inclusive) of the clip; every other frame is kept exactly."""
    _check_clip(clip, model)
    T = len(clip)
    if not 0 <= first <= last < T or (first == 0 and last == T - 1):
        raise ReverieError(
            f"bad gap {first}-{last} in a clip of {T} frames: accepted a span inside it that leaves some frames given"
        )
    if first == 0:  # no left context: solve the mirrored problem on the reversed clip
        rev = fill(model, np.ascontiguousarray(clip[::-1]), T - 1 - last, T - 1 - first, opts)
        return np.ascontiguousarray(rev[::-1])
    right = clip[last + 1] if last + 1 < T else None
    out = clip.copy()
    out[first : last + 1] = _best_gap(model, clip[:first], last - first + 1, right, opts)
    return out


def interpolate(model: WorldModel, clip: np.ndarray, factor: int, opts: GenOptions) -> np.ndarray:
    """(T - 1) * factor + 1 frames: given frame i lands at i * factor, factor - 1 generated between.

    Each gap is filled like `fill`, left to right, with the frames so far as context. The model steps
    at its training frame rate, so in-between frames move at that rate; the candidate search pulls
    each gap toward the next given frame.
    """
    _check_clip(clip, model)
    if factor < 2:
        raise ReverieError(f"bad --factor {factor}: accepted 2 or more")
    if len(clip) < 2:
        raise ReverieError("interpolation needs a clip of 2 or more frames")
    out = [clip[0]]
    for i in range(1, len(clip)):
        left = np.stack(out[-model.max_context :])
        out += list(_best_gap(model, left, factor - 1, clip[i], opts))
        out.append(clip[i])
    return np.stack(out)
