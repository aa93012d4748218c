"""`reverie generate`, `reverie extend`, `reverie fill`, `reverie interpolate`: offline video from a world model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from reverie.cli.apps import app

if TYPE_CHECKING:
    import numpy as np

    from reverie.generate.modes import GenOptions
    from reverie.models.world_model import WorldModel

_MODEL = typer.Option(
    "default",
    "--model",
    help="World model: a run directory (made by `reverie train dynamics`), a model package (made by "
    "`reverie export`), or default (the shipped model; used when --model is left out).",
)
_STEPS = typer.Option(
    None, "--steps", min=1, max=8, help="Euler sampling steps per generated frame (default: the model's own)."
)
_SEED = typer.Option(0, "--seed", help="Random seed (noise and explore-policy actions).")
_PROMPT = typer.Option(None, "--prompt", help="Text conditioning for the generated frames.")
_SCALE = typer.Option(4, "--scale", min=1, help="Enlarge frames this many times in the MP4 (nearest).")
_CANDIDATES = typer.Option(4, "--candidates", min=1, help="Rollouts per gap; the one ending nearest the next given frame is kept.")  # fmt: skip


def _opts(seed: int, steps: int | None, prompt: str | None, candidates: int = 4) -> GenOptions:
    from reverie.generate.modes import GenOptions
    from reverie.models.sampler import SamplerConfig

    return GenOptions(
        seed=seed,
        sampler=SamplerConfig(steps=steps) if steps else None,
        prompt=prompt,
        candidates=candidates,
        progress=True,
    )


def _read_clip(path: str, model: WorldModel) -> tuple[np.ndarray, float]:
    import os

    from reverie.data.video import decode_video
    from reverie.errors import ReverieError

    if not os.path.isfile(path):
        raise ReverieError(f"{path}: no such video file")
    return decode_video(path, model.size)  # fitted to the model's frame size, at the file's frame rate


@app.command("generate")
def generate_cmd(
    model: str = _MODEL,
    prompt: str | None = _PROMPT,
    image: str | None = typer.Option(
        None, "--image", help="Start image: the clean first frame, kept exactly."
    ),
    frames: int = typer.Option(32, "--frames", min=1, help="Frames per clip (including the start image)."),
    size: str | None = typer.Option(
        None,
        "--size",
        help="Frame size WIDTHxHEIGHT (default: the model's; others, e.g. 96x64 or 128x72, "
        "work as well as the model was trained on them: multiples of the autoencoder's stride).",
    ),
    fps: float | None = typer.Option(
        None, "--fps", help="Frame rate of the MP4 (default: the model's data, else 15)."
    ),
    seed: int = _SEED,
    samples: int = typer.Option(
        1, "--samples", min=1, help="K futures (seeds S..S+K-1): out_0.mp4.. and out_grid.mp4."
    ),
    actions: str | None = typer.Option(
        None,
        "--actions",
        help="Scripted actions NAME:COUNT,... (e.g. forward:30,turn_left:10), the model's action names; "
        "padded with the null action, cut at --frames. Default: the world's explore policy, a scripted "
        "human-like action prior seeded by the seed.",
    ),
    steps: int | None = _STEPS,
    strip: str | None = typer.Option(None, "--strip", help="Also write a PNG strip of frames here."),
    scale: int = _SCALE,
    out: str = typer.Option(..., "--out", help="Output .mp4 path."),
) -> None:
    """Text and/or image to video: dream a clip from a prompt, a start image, or both.

    Example:  reverie generate --model runs/dungeon/dit --prompt "a torch-lit corridor" --frames 64 --samples 4 --out dream.mp4
    """
    from reverie.generate.actions import parse_actions
    from reverie.generate.modes import generate_samples
    from reverie.generate.output import check_out, grid, read_image, sample_paths, write_png, write_video
    from reverie.generate.output import strip as make_strip
    from reverie.models.world_model import load_world_model

    check_out(out)
    if strip is not None:
        check_out(strip, ".png")
    start = read_image(image) if image is not None else None
    m = load_world_model(model)
    if size is not None:  # the autoencoder is convolutional and the DiT's positions are rotary: any grid
        from dataclasses import replace

        from reverie.sizes import parse_size

        m = replace(m, size=parse_size(size))  # a size off the autoencoder's stride fails with its reason
    script = parse_actions(actions, m.actions) if actions is not None else None
    clips = generate_samples(m, frames, samples, _opts(seed, steps, prompt), image=start, script=script)
    paths, grid_path = sample_paths(out, samples)
    rate = fps or m.fps
    for clip, path in zip(clips, paths):
        write_video(clip, path, rate, scale)
    if grid_path is not None:
        write_video(grid(clips), grid_path, rate, scale)
    if strip is not None:
        write_png(make_strip(clips), strip)
    typer.echo(f"wrote {', '.join(paths + ([grid_path] if grid_path else []) + ([strip] if strip else []))}")


@app.command("extend")
def extend_cmd(
    clip: str = typer.Argument(..., help="Input video (fitted to the model's frame size)."),
    model: str = _MODEL,
    frames: int = typer.Option(16, "--frames", min=1, help="New frames to generate."),
    backward: bool = typer.Option(
        False,
        "--backward",
        help="Generate frames BEFORE the clip: reverse it, extend forward, reverse back. Assumes the "
        "world looks plausible played backwards (the model was trained forwards only).",
    ),
    prompt: str | None = _PROMPT,
    seed: int = _SEED,
    steps: int | None = _STEPS,
    scale: int = _SCALE,
    out: str = typer.Option(..., "--out", help="Output .mp4 path."),
) -> None:
    """Continue a clip forward (or backward); the given frames are copied through unchanged.

    New frames' actions come from the world's explore policy.

    Example:  reverie extend walk.mp4 --model runs/dungeon/dit --frames 32 --out longer.mp4
    """
    from reverie.generate.modes import extend
    from reverie.generate.output import check_out, write_video
    from reverie.models.world_model import load_world_model

    check_out(out)
    m = load_world_model(model)
    frames_in, rate = _read_clip(clip, m)
    write_video(extend(m, frames_in, frames, _opts(seed, steps, prompt), backward=backward), out, rate, scale)
    typer.echo(f"wrote {out}")


@app.command("fill")
def fill_cmd(
    clip: str = typer.Argument(..., help="Input video (fitted to the model's frame size)."),
    model: str = _MODEL,
    missing: str = typer.Option(
        ..., "--missing", help="Frames to regenerate, FIRST-LAST (0-based, inclusive), e.g. 10-20."
    ),
    candidates: int = _CANDIDATES,
    prompt: str | None = _PROMPT,
    seed: int = _SEED,
    steps: int | None = _STEPS,
    scale: int = _SCALE,
    out: str = typer.Option(..., "--out", help="Output .mp4 path."),
) -> None:
    """Regenerate missing frames of a clip; every other frame is copied through unchanged.

    The model is causal: the gap is generated forward from the frames before it, several times, and
    the candidate whose last frame is nearest the first frame after the gap is kept (a gap at the
    start is filled on the reversed clip).

    Example:  reverie fill walk.mp4 --model runs/dungeon/dit --missing 10-20 --out filled.mp4
    """
    from reverie.generate.modes import fill, parse_span
    from reverie.generate.output import check_out, write_video
    from reverie.models.world_model import load_world_model

    check_out(out)
    m = load_world_model(model)
    frames_in, rate = _read_clip(clip, m)
    first, last = parse_span(missing, len(frames_in))
    write_video(fill(m, frames_in, first, last, _opts(seed, steps, prompt, candidates)), out, rate, scale)
    typer.echo(f"wrote {out}")


@app.command("interpolate")
def interpolate_cmd(
    clip: str = typer.Argument(..., help="Input video (fitted to the model's frame size)."),
    model: str = _MODEL,
    factor: int = typer.Option(2, "--factor", min=2, help="Output frames per input frame step."),
    candidates: int = _CANDIDATES,
    prompt: str | None = _PROMPT,
    seed: int = _SEED,
    steps: int | None = _STEPS,
    scale: int = _SCALE,
    out: str = typer.Option(..., "--out", help="Output .mp4 path (at factor times the input frame rate)."),
) -> None:
    """Generate factor-1 frames between each pair of frames; the given frames are copied through unchanged.

    Each gap is filled like `reverie fill` (forward rollouts, keep the one ending nearest the next frame).

    Example:  reverie interpolate walk.mp4 --model runs/dungeon/dit --factor 2 --out smooth.mp4
    """
    from reverie.generate.modes import interpolate
    from reverie.generate.output import check_out, write_video
    from reverie.models.world_model import load_world_model

    check_out(out)
    m = load_world_model(model)
    frames_in, rate = _read_clip(clip, m)
    result = interpolate(m, frames_in, factor, _opts(seed, steps, prompt, candidates))
    write_video(result, out, rate * factor, scale)
    typer.echo(f"wrote {out}")
