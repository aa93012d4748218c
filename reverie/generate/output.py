"""Writing results: MP4 per clip (via `reverie.data.video.write_mp4`), side-by-side grids, PNG strips."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from reverie.errors import ReverieError


def check_out(path: str, suffix: str = ".mp4") -> None:
    """Refuse an output path we cannot write, before any generation work."""
    p = Path(path)
    if p.suffix.lower() != suffix:
        raise ReverieError(f"bad output {path!r}: accepted a path ending in {suffix}")
    if not p.parent.exists():
        raise ReverieError(f"bad output {path!r}: folder {p.parent} does not exist")


def sample_paths(out: str, samples: int) -> tuple[list[str], str | None]:
    """out.mp4 for one sample; out_0.mp4 .. out_{K-1}.mp4 and out_grid.mp4 for K > 1."""
    if samples == 1:
        return [out], None
    stem, ext = os.path.splitext(out)
    return [f"{stem}_{i}{ext}" for i in range(samples)], f"{stem}_grid{ext}"


def grid(clips: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """Clips (T, H, W, 3) side by side with `gap` black columns between: (T, H, K*W + (K-1)*gap, 3)."""
    T, H = clips[0].shape[:2]
    sep = np.zeros((T, H, gap, 3), np.uint8)
    parts: list[np.ndarray] = []
    for i, c in enumerate(clips):
        parts += [sep, c] if i else [c]
    return np.concatenate(parts, axis=2)


def strip(clips: list[np.ndarray], count: int = 8, gap: int = 2) -> np.ndarray:
    """`count` evenly spaced frames of each clip in a row, one row per clip: (rows, cols) image."""
    rows = []
    for c in clips:
        idx = np.unique(np.linspace(0, len(c) - 1, min(count, len(c))).round().astype(int))
        rows.append(grid([c[i : i + 1] for i in idx], gap)[0])
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, gap), (0, width - r.shape[1]), (0, 0))) for r in rows]
    return np.concatenate(rows)[:-gap] if gap else np.concatenate(rows)


def write_png(image: np.ndarray, path: str) -> None:
    from PIL import Image

    tmp = f"{path}.part"
    Image.fromarray(image).save(tmp, format="PNG")
    os.replace(tmp, path)


def write_video(frames: np.ndarray, path: str, fps: float, scale: int = 4) -> None:
    from reverie.data.video import write_mp4

    write_mp4(frames, path, fps, scale=scale)


def read_image(path: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise ReverieError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise ReverieError(f"{path}: not a readable image ({e}); accepted: png, jpg, webp, ...") from e
