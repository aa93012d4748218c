"""`reverie record`, `reverie import-video`, `reverie data info|show`, `reverie bench data`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from reverie.cli.apps import app, bench_app, data_app

if TYPE_CHECKING:
    from reverie.data.record import RecordConfig


@app.command("record")
def record_cmd(
    world: str = typer.Option(
        ..., "--world", "-w", help="World id: reverie/Dungeon-v0, or any Gymnasium id."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Store directory: new, empty, or a store to append to."
    ),
    episodes: int = typer.Option(10, "--episodes", "-n", help="Number of episodes."),
    steps: int = typer.Option(1000, "--steps", "-t", help="Frames per episode (shorter if it ends)."),
    size: str = typer.Option("64x64", "--size", help="Frame size WIDTHxHEIGHT."),
    seed: int = typer.Option(0, "--seed", help="Episode i uses seed SEED+i."),
    policy: str = typer.Option("explore", "--policy", help="Who plays: explore (human-like) or random."),
    continuous: bool = typer.Option(
        False, "--continuous", help="Continuous (Box) actions, where the world has them."
    ),
    workers: int = typer.Option(
        0, "--workers", "-j", help="Worker processes (0: one per core when it helps)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Record episodes of a world (frames, actions, rewards, captions) into an episode store.

    Example:  reverie record --world reverie/Dungeon-v0 --episodes 20 --steps 1000 --out runs/out/dungeon
    """
    from reverie.data.record import RecordConfig, record
    from reverie.sizes import parse_size

    cfg = RecordConfig(world, parse_size(size), episodes, steps, seed, policy, continuous, workers)
    before = _count(out)
    try:
        store = record(cfg, str(out), progress=not quiet)
    except KeyboardInterrupt:
        # Episodes land whole and in seed order, so what was kept is a run of seeds to continue after.
        typer.echo(_interrupted(cfg, out, _count(out) - before), err=True)
        raise typer.Exit(130) from None
    added = store.lengths[before:]
    typer.echo(
        f"recorded {len(added)} episodes ({int(added.sum())} frames, seeds {seed}-{seed + episodes - 1}) "
        f"into {out}; it now holds {len(store)} episodes"
    )


def _interrupted(cfg: RecordConfig, out: Path, kept: int) -> str:
    """What an interrupted recording kept, and the command that records the rest."""
    import shlex

    if kept == 0:
        return f"interrupted before the first episode was written; {out} has no new episodes"
    flags = [
        "reverie", "record", "--world", cfg.world, "--size", str(cfg.size), "--episodes", str(cfg.episodes - kept),
        "--steps", str(cfg.steps), "--seed", str(cfg.seed + kept), "--policy", cfg.policy, "--out", str(out),
    ] + (["--continuous"] if cfg.continuous else [])  # fmt: skip
    return (
        f"interrupted: kept {kept} new episodes (seeds {cfg.seed}-{cfg.seed + kept - 1}) in {out}. "
        f"To record the other {cfg.episodes - kept}, continue from seed {cfg.seed + kept}:\n  "
        + " ".join(shlex.quote(f) for f in flags)
    )


def _count(out: Path) -> int:
    from reverie.data.store import EpisodeStore, is_store

    return len(EpisodeStore.open(out)) if is_store(out) else 0


@app.command("import-video")
def import_video_cmd(
    files: list[Path] = typer.Argument(..., help="Video files (mp4, webm, mov, gif, ...), one episode each."),
    out: Path = typer.Option(..., "--out", "-o", help="Store directory: new, empty, or a video store."),
    size: str = typer.Option(
        "64x64", "--size", help="Frame size WIDTHxHEIGHT (scaled, then centre-cropped)."
    ),
    fps: float = typer.Option(0.0, "--fps", help="Resample to this frame rate (0: the first file's rate)."),
    allow_truncated: bool = typer.Option(
        False,
        "--allow-truncated",
        help="Import the frames that decode from a file cut off before the length its container "
        "declares (refused by default), with a warning.",
    ),
) -> None:
    """Import video files as episodes without actions (for pre-training or text-to-video).

    Example:  reverie import-video clips/*.mp4 --size 64x64 --fps 15 --out runs/out/clips
    """
    from reverie.data.video import import_videos
    from reverie.sizes import parse_size

    before = _count(out)
    store = import_videos(
        [str(f) for f in files],
        parse_size(size),
        str(out),
        fps=fps or None,
        progress=True,
        allow_truncated=allow_truncated,
    )
    added = store.lengths[before:]
    typer.echo(
        f"imported {len(added)} videos ({int(added.sum())} frames at {store.fps:g} fps) into {out}; "
        f"it now holds {len(store)} episodes"
    )


@data_app.command("info")
def info_cmd(
    path: Path = typer.Argument(..., help="Episode store directory."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object instead of text."),
) -> None:
    """Summarize a store: episodes, frames, size, fps, world, actions, captions, seeds.

    Example:  reverie data info runs/out/dungeon
    """
    from reverie.data.sheet import summarize
    from reverie.data.store import EpisodeStore

    s = summarize(EpisodeStore.open(path))
    if as_json:
        print(json.dumps(s))
        return
    length = s["length"] or {"min": 0, "mean": 0, "max": 0}
    lines = [
        f"store     {s['path']}",
        f"world     {s['world']}   {s['size']} at {s['fps']:g} fps",
        f"episodes  {s['episodes']}   frames {s['frames']}   length {length['min']}..{length['max']}"
        f" (mean {length['mean']:.1f})",
        f"actions   {json.dumps(s['action_spec'])}",
    ]
    acts = s["actions"] or {}
    if "histogram" in acts:
        total = max(1, sum(acts["histogram"].values()))
        lines += [f"  {n:>12s} {c:8d}  {100 * c / total:5.1f}%" for n, c in acts["histogram"].items()]
    else:
        lines += [
            f"  {n:>12s} mean {v['mean']:+.3f} std {v['std']:.3f} [{v['min']:+.3f}, {v['max']:+.3f}]"
            for n, v in acts.items()
        ]
    lines.append(f"captions  {s['captions']['distinct']} distinct")
    lines += [f"  {n:8d}  {c}" for c, n in s["captions"]["examples"]]
    for name, spec in s["streams"].items():
        what = spec.get("stale") or f"{spec['n']} actions {spec.get('names')} from {spec.get('source', '?')}"
        lines.append(f"stream    {name}: {what}")
    lines.append(f"seeds     {s['seeds']}")
    lines.append(f"written   by reverie {s['version']} at {s['created']}")
    typer.echo("\n".join(lines))


@data_app.command("show")
def show_cmd(
    path: Path = typer.Argument(..., help="Episode store directory."),
    out: Path = typer.Option(..., "--out", "-o", help="sheet.png (contact sheet) or clip.mp4 (video)."),
    episodes: int = typer.Option(6, "--episodes", "-n", help="How many episodes (spread over the store)."),
    frames: int = typer.Option(8, "--frames", help="Frames per episode on a contact sheet."),
    scale: int = typer.Option(2, "--scale", help="Enlarge each frame this many times (nearest)."),
) -> None:
    """Draw a contact sheet (PNG) of frames from several episodes, or write them as an MP4.

    Example:  reverie data show runs/out/dungeon --out sheet.png
    """
    import numpy as np

    from reverie.data.store import EpisodeStore
    from reverie.errors import ReverieError

    store = EpisodeStore.open(path)
    if len(store) == 0:
        raise ReverieError(f"{path} holds no episodes yet")
    suffix = out.suffix.lower()
    if suffix == ".mp4":
        from reverie.data.video import write_mp4

        picks = np.unique(np.linspace(0, len(store) - 1, min(episodes, len(store))).round().astype(int))
        obs = np.concatenate([store.read(int(i)).obs for i in picks])  # (sum T, H, W, 3)
        codec = write_mp4(obs, str(out), store.fps, scale=max(scale, 1))
        typer.echo(f"wrote {out} ({len(obs)} frames of episodes {picks.tolist()}, {codec})")
    elif suffix in (".png", ".jpg", ".jpeg", ".webp"):
        from reverie.data.sheet import contact_sheet

        img = contact_sheet(store, episodes=episodes, frames=frames, scale=max(scale, 1))
        tmp = out.with_name(out.name + ".part" + suffix)
        img.save(tmp)
        tmp.replace(out)
        typer.echo(f"wrote {out} ({img.width}x{img.height})")
    else:
        raise ReverieError(
            f"bad --out {str(out)!r}: accepted endings .png, .jpg, .webp (sheet) or .mp4 (video)"
        )


@bench_app.command("data")
def bench_data_cmd(
    data: Path | None = typer.Option(
        None, "--data", help="Store to read (default: a synthetic one in a temp dir)."
    ),
    window: int = typer.Option(16, "--window", help="Frames per window."),
    batch: int = typer.Option(32, "--batch", help="Windows per batch."),
    seconds: float = typer.Option(2.0, "--seconds", help="How long to sample."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line."),
) -> None:
    """Measure how many random training windows per second the sampler delivers.

    Example:  reverie bench data --json
    """
    from reverie.data.bench import bench_data

    r = bench_data(str(data) if data else None, window=window, batch=batch, seconds=seconds)
    if as_json:
        print(json.dumps(r))
    else:
        typer.echo(
            f"window {r['window']} batch {r['batch']}: {r['frames_per_s']:.0f} frames/s, "
            f"{r['windows_per_s']:.0f} windows/s (load {r['load_frames_per_s']:.0f} frames/s)"
        )
