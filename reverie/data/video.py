"""Video files in and out: import clips as action-less episodes, and write episodes as MP4.

Import decodes with PyAV (mp4, webm, mov, mkv, avi, gif, ...), resamples to one frame rate by
timestamps, and resizes each frame like rendered worlds are resized (worlds.adapters.fit_frame):
scale keeping the aspect ratio until the target is covered, centre crop, Lanczos.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from reverie.data.episode import Episode
from reverie.data.store import EpisodeStore, is_store
from reverie.errors import ReverieError
from reverie.sizes import Size
from reverie.worlds.adapters import fit_frame

VIDEO_WORLD = "video"
NO_ACTIONS = {"type": "none"}
log = logging.getLogger("reverie.data")


class TruncatedVideo(ReverieError):
    """Fewer frames decode than the container declares: the file was cut off (or is damaged)."""

    def __init__(self, path: str, decoded: int, declared: int, fps: float) -> None:
        self.decoded, self.declared = decoded, declared
        super().__init__(
            f"{path}: only {decoded} of the {declared} frames its container declares decode "
            f"({decoded / fps:.1f} of {declared / fps:.1f} s at {fps:g} fps); the file looks cut off or "
            "damaged: download or encode it again"
        )


def declared_frames(container: Any, stream: Any, fps: float) -> int | None:
    """How many frames the container says the stream holds: its frame count, else its duration
    times the frame rate (WebM and many MKVs only store a duration); None when it says neither."""
    if stream.frames:
        return int(stream.frames)
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / 1_000_000  # FFmpeg's AV_TIME_BASE
    else:
        return None
    return round(seconds * fps) if fps > 0 else None


def _short_by(decoded: int, declared: int | None) -> bool:
    """Decoded clearly fewer than declared: a rounding frame or two (or 2%) is not truncation."""
    return declared is not None and decoded < declared - max(2, round(0.02 * declared))


def decode_video(
    path: str, size: Size, fps: float | None = None, *, allow_truncated: bool = False
) -> tuple[np.ndarray, float]:
    """Frames of the first video stream of `path` resized to `size`, resampled to `fps` (default:
    the file's own rate); returns (frames (T, H, W, 3) uint8, fps). A file that decodes clearly
    fewer frames than its container declares raises TruncatedVideo, or with `allow_truncated`
    logs a warning and gives the frames that decode."""
    import av

    frames: list[np.ndarray] = []
    times: list[float] = []
    declared: int | None = None
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise ReverieError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            src_fps = float(rate) if rate else 0.0
            declared = declared_frames(container, stream, src_fps)
            try:
                for frame in container.decode(stream):
                    t = frame.time
                    times.append(float(t) if t is not None else len(times) / (src_fps or 30.0))
                    frames.append(fit_frame(frame.to_ndarray(format="rgb24"), size))
            except (av.FFmpegError, ValueError):
                if not frames:  # damage after some frames is truncation, judged below
                    raise
                declared = max(declared or 0, len(frames) + 1 + max(2, round(0.02 * len(frames))))
    except ReverieError:
        raise
    except (av.FFmpegError, OSError, ValueError) as e:
        raise ReverieError(
            f"{path}: not a readable video ({e}); accepted: files PyAV/FFmpeg decode, e.g. mp4, webm, mov, gif"
        ) from e
    if not frames:
        raise ReverieError(f"{path}: the video has no frames")
    if declared is not None and _short_by(len(frames), declared):
        truncated = TruncatedVideo(path, len(frames), declared, src_fps or 30.0)
        if not allow_truncated:
            raise truncated
        log.warning("warning: %s; keeping the %d frames that decode", truncated, len(frames))
    if src_fps <= 0 or not np.isfinite(src_fps):
        span = times[-1] - times[0]
        src_fps = (len(times) - 1) / span if span > 0 else 30.0
    out_fps = float(fps) if fps else src_fps
    when = np.array(times) - times[0]
    order = np.argsort(when, kind="stable")  # B-frames can decode out of presentation order
    when = when[order]
    # Output frame k shows what was on screen at k / out_fps: the last source frame not after it.
    n_out = max(1, round((when[-1] + 1 / src_fps) * out_fps))
    pick = np.searchsorted(when, np.arange(n_out) / out_fps + 1e-6, side="right") - 1
    stacked = np.stack(frames)[order]  # (T_src, H, W, 3)
    return stacked[np.clip(pick, 0, len(when) - 1)], out_fps


def import_videos(
    files: Sequence[str],
    size: Size,
    out: str,
    *,
    fps: float | None = None,
    progress: bool = False,
    allow_truncated: bool = False,
) -> EpisodeStore:
    """Each file becomes one episode without actions. Every file is decoded before anything is
    written, so an unreadable one (or a truncated one, unless `allow_truncated`) leaves the store
    untouched."""
    from tqdm import tqdm

    if not files:
        raise ReverieError("no video files given; accepted: one or more paths to mp4, webm, mov, gif files")
    store = None
    if is_store(out):
        store = EpisodeStore.open(out)
        store.check_compatible(world=VIDEO_WORLD, action_spec=NO_ACTIONS, size=size)
        if fps and abs(fps - store.fps) > 1e-6:
            raise ReverieError(f"{out} holds video at {store.fps:g} fps, not {fps:g}; leave out --fps")
        fps = store.fps
    elif os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ReverieError(f"{out} exists and is not an episode store nor empty; refusing to overwrite it")
    episodes = []
    for f in tqdm(files, unit="file", desc="decode", disable=not progress):
        if not os.path.isfile(f):
            raise ReverieError(f"{f}: no such file")
        try:
            obs, fps = decode_video(f, size, fps, allow_truncated=allow_truncated)
        except TruncatedVideo as e:
            raise ReverieError(
                f"{e}; or pass --allow-truncated to import the {e.decoded} frames that decode. "
                "Nothing was imported"
            ) from None
        episodes.append(Episode.from_frames(obs, source=os.path.basename(f), actions="none", fps=fps))
    if store is None:
        store = EpisodeStore.create(
            out, world=VIDEO_WORLD, action_spec=NO_ACTIONS, size=size, fps=float(fps or 30.0), source="video"
        )
    for ep in episodes:
        store.append(ep)
    return store


def write_mp4(frames: np.ndarray, path: str, fps: float, *, scale: int = 4) -> str:
    """Encode (T, H, W, 3) uint8 frames as H.264 yuv420p (MPEG-4 Part 2 if libx264 is missing),
    each frame enlarged `scale` times (nearest) so small worlds are visible in a player; returns the codec."""
    import av

    frames = np.repeat(np.repeat(frames, scale, axis=1), scale, axis=2)  # (T, H*s, W*s, 3)
    # yuv420p needs even sides.
    H, W = frames.shape[1:3]
    frames = np.pad(frames, ((0, 0), (0, H % 2), (0, W % 2), (0, 0)), mode="edge")
    tmp = f"{path}.part"
    for codec in ("libx264", "mpeg4"):
        try:
            with av.open(tmp, "w", format="mp4") as container:
                stream = container.add_stream(codec, rate=round(fps))
                stream.width, stream.height = frames.shape[2], frames.shape[1]
                stream.pix_fmt = "yuv420p"
                if codec == "libx264":
                    stream.options = {"crf": "18", "preset": "veryfast"}
                for f in frames:
                    container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
                container.mux(stream.encode())
            os.replace(tmp, path)
            return codec
        except (av.FFmpegError, ValueError):
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise ReverieError(f"could not encode {path}: neither libx264 nor mpeg4 is available in this FFmpeg")
