"""Video import: clips become action-less episodes at the chosen size, unreadable files change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from reverie.data.store import EpisodeStore
from reverie.data.video import import_videos
from reverie.errors import ReverieError
from reverie.sizes import Size
from reverie.worlds.adapters import fit_frame


def source_frames(T: int = 24, w: int = 96, h: int = 64) -> np.ndarray:
    """Smooth moving content (video codecs keep it close); the left and right thirds differ so a
    wrong crop would show."""
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((T, h, w, 3), np.uint8)
    for t in range(T):
        out[t, ..., 0] = (xx * 2 + t * 6) % 256
        out[t, ..., 1] = yy * 3
        out[t, ..., 2] = np.where(xx < w // 3, 40, np.where(xx >= 2 * w // 3, 220, 128))
    return out


def write_mp4(path: Path, frames: np.ndarray, fps: int) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.options = {"crf": "10"}
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode())


def write_gif(path: Path, frames: np.ndarray, ms: int) -> None:
    imgs = [Image.fromarray(f) for f in frames]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=ms, loop=0)


def test_mp4_and_gif_round_trip(tmp_path: Path) -> None:
    src = source_frames()
    write_mp4(tmp_path / "a.mp4", src, 12)
    write_gif(tmp_path / "b.gif", src[:10], 100)
    size = Size(32, 32)
    store = import_videos([str(tmp_path / "a.mp4"), str(tmp_path / "b.gif")], size, str(tmp_path / "s"))
    store = EpisodeStore.open(tmp_path / "s")
    assert store.action_spec == {"type": "none"} and store.meta["source"] == "video"
    assert store.fps == 12.0
    assert len(store) == 2 and store.seeds == [None, None]
    a, b = store[0], store[1]
    assert a.act is None and a.obs.shape == (24, 32, 32, 3) and a.meta["source"] == "a.mp4"
    expect = np.stack([fit_frame(f, size) for f in src]).astype(np.float32)
    assert np.abs(a.obs.astype(np.float32) - expect).mean() < 4.0  # lossy H.264, then resized
    # The gif runs at 10 fps; resampled to the store's 12 fps it lasts the same second.
    assert b.obs.shape == (12, 32, 32, 3)
    assert np.abs(b.obs[0].astype(np.float32) - expect[0]).mean() < 8.0  # gif palette is lossy


def test_fps_resampling_and_aspect_crop(tmp_path: Path) -> None:
    src = source_frames(T=30, w=120, h=40)
    write_gif(tmp_path / "c.gif", src, 50)  # 20 fps, 1.5 s
    store = import_videos([str(tmp_path / "c.gif")], Size(16, 16), str(tmp_path / "s"), fps=10)
    ep = store[0]
    assert store.fps == 10.0 and len(ep) == 15
    assert np.array_equal(ep.obs[3], store[0].obs[3])
    # Centre crop of a 3:1 frame to a square keeps only the middle third (blue = 128).
    assert abs(float(ep.obs[:, :, :, 2].mean()) - 128) < 6


def test_unreadable_file_leaves_store_untouched(tmp_path: Path) -> None:
    good = tmp_path / "good.gif"
    write_gif(good, source_frames(T=5), 100)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00not a video" * 50)
    with pytest.raises(ReverieError, match=str(bad)):
        import_videos([str(good), str(bad)], Size(16, 16), str(tmp_path / "new"))
    assert not (tmp_path / "new").exists()
    import_videos([str(good)], Size(16, 16), str(tmp_path / "s"))
    before = sorted(p.name for p in (tmp_path / "s" / "episodes").iterdir())
    with pytest.raises(ReverieError, match=str(bad)):
        import_videos([str(good), str(bad)], Size(16, 16), str(tmp_path / "s"))
    assert sorted(p.name for p in (tmp_path / "s" / "episodes").iterdir()) == before
    with pytest.raises(ReverieError, match="holds size 16x16"):
        import_videos([str(good)], Size(32, 32), str(tmp_path / "s"))


def test_import_video_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from reverie.cli import app

    write_gif(tmp_path / "a.gif", source_frames(T=8), 100)
    runner = CliRunner()
    r = runner.invoke(
        app, ["import-video", str(tmp_path / "a.gif"), "--size", "32x24", "--out", str(tmp_path / "s")]
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["data", "info", str(tmp_path / "s"), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert (info["episodes"], info["frames"], info["size"], info["world"]) == (1, 8, "32x24", "video")
    assert info["action_spec"] == {"type": "none"} and info["actions"] is None
