"""What a newcomer's console shows is the tool's own output: no library banners or warnings."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from reverie.models.autoencoder import frames_to_tensor


def test_read_only_frames_convert_without_a_warning() -> None:
    frames = np.full((2, 16, 16, 3), 255, np.uint8)
    frames.flags.writeable = False  # what a store read hands over
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = frames_to_tensor(frames)
    assert t.shape == (2, 3, 16, 16) and float(t.min()) == 1.0


def test_atari_starts_without_its_banner() -> None:
    pytest.importorskip("ale_py")
    code = (
        "from reverie.worlds.make import make_world\n"
        "for _ in range(2): make_world('ALE/Breakout-v5', '64x64').close()\n"
        "print('ok')"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert res.stdout.strip() == "ok"
    assert "A.L.E" not in res.stderr + res.stdout and "Stella" not in res.stderr + res.stdout, res.stderr
