"""A video cut off mid-file is noticed: decoded frames are compared with what the container
declares, and the import refuses (or, when asked, keeps what decodes and says so)."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from reverie.cli import app
from reverie.data.store import EpisodeStore
from reverie.data.video import decode_video
from reverie.errors import ReverieError
from reverie.sizes import Size

FRAMES = 90


def _webm(path: Path) -> Path:
    """3 s of VP9 at 30 fps: WebM declares a duration, not a frame count."""
    with av.open(str(path), "w", format="webm") as c:
        s = c.add_stream("libvpx-vp9", rate=30)
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        for i in range(FRAMES):
            f = np.zeros((32, 32, 3), np.uint8)
            f[..., 0], f[i % 32, :, 1] = i * 2, 255
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode())
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("webm")
    full = _webm(d / "full.webm")
    half = d / "half.webm"
    data = full.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    return full, half


def test_a_whole_webm_decodes_every_declared_frame(clips: tuple[Path, Path]) -> None:
    frames, fps = decode_video(str(clips[0]), Size(32, 32))
    assert len(frames) == FRAMES and fps == 30


def test_a_half_webm_is_refused_with_both_counts(clips: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "store"
    res = CliRunner().invoke(app, ["import-video", str(clips[1]), "--size", "32x32", "--out", str(out)])
    assert isinstance(res.exception, ReverieError)
    msg = str(res.exception)
    assert f"of the {FRAMES} frames its container declares" in msg and "--allow-truncated" in msg
    assert not out.exists() or not any(out.iterdir())  # nothing imported


def test_allow_truncated_keeps_what_decodes_and_warns(
    clips: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "store"
    with caplog.at_level(logging.WARNING, logger="reverie.data"):
        res = CliRunner().invoke(
            app, ["import-video", str(clips[1]), "--size", "32x32", "--allow-truncated", "--out", str(out)]
        )
    assert res.exit_code == 0, res.output
    kept = len(EpisodeStore.open(out)[0].obs)
    assert 0 < kept < FRAMES * 0.8
    assert any(f"only {kept} of the {FRAMES} frames" in r.getMessage() for r in caplog.records)
