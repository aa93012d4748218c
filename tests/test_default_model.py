"""The world model shipped in reverie/weights/default: present, small, documented, and it has learnt."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reverie.models.shipped import SHIPPED_DIR, default_model_available

MAX_BYTES = 40 * 2**20  # the budget for weights in git


def test_the_default_model_ships_with_its_card_and_config() -> None:
    assert default_model_available(), f"{SHIPPED_DIR} holds no model: run `bash runs/default.sh`"
    weights = sum(p.stat().st_size for p in SHIPPED_DIR.rglob("*.safetensors"))
    assert 0 < weights <= MAX_BYTES
    config = json.loads((SHIPPED_DIR / "config.json").read_text())
    assert config["kind"] == "dynamics" and config["data"]["autoencoder"] == "autoencoder"
    assert config["data"]["seed_ranges"], "the training seeds must be recorded for eval's held-out check"
    card = (SHIPPED_DIR / "MODEL_CARD.md").read_text()
    assert "## Measured" in card and '"psnr_tf"' in card  # the eval numbers travel with the weights


def test_the_default_model_beats_copying_the_last_frame_while_turning() -> None:
    """A turn moves every pixel: only a model that learnt the world predicts it better than a copy."""
    from reverie.eval.metrics import psnr
    from reverie.eval.rollout import ModelPredictor, SimulatorPredictor, collect_real

    if not default_model_available():
        pytest.fail(f"{SHIPPED_DIR} holds no model")
    context, horizon, turn = 8, 4, 3  # turn_left
    real = collect_real("reverie/Dungeon-v0", "64x64", [1_000_500, 1_000_501], context + horizon)
    real.act[:, context:] = turn  # the real world replays the same turn below
    sim = SimulatorPredictor("reverie/Dungeon-v0", "64x64")
    sim.reset(real.obs[:, :context], real.act[:, :context], real.seeds)
    truth = np.stack([sim.step(real.act[:, context + k]) for k in range(horizon)], 1)  # (B, T, H, W, 3)
    model = ModelPredictor("default", steps=2, seed=0)
    model.reset(real.obs[:, :context], real.act[:, :context], real.seeds)
    dream = np.stack([model.step(real.act[:, context + k]) for k in range(horizon)], 1)
    copy = np.repeat(real.obs[:, context - 1 : context], horizon, axis=1)
    p_model = np.mean(
        [psnr(d, t) for d, t in zip(dream.reshape(-1, 64, 64, 3), truth.reshape(-1, 64, 64, 3))]
    )
    p_copy = np.mean([psnr(c, t) for c, t in zip(copy.reshape(-1, 64, 64, 3), truth.reshape(-1, 64, 64, 3))])
    assert p_model > p_copy + 2.0, (p_model, p_copy)


def test_the_dream_sheet_script_draws_one_row_per_session(tmp_path) -> None:
    """runs/dream_sheet.py: a real row, one row per player start, one 64x64 column per time (x2)."""
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    out = tmp_path / "dreams.png"
    script = Path(__file__).parents[1] / "runs" / "dream_sheet.py"
    cmd = [
        sys.executable,
        str(script),
        "--out",
        str(out),
        "--sessions",
        "2",
        "--seconds",
        "0.5",
        "--at",
        "0 0.2",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert Image.open(out).size == (2 * 64 * 2, 2 * 64 * 3)  # columns at frames 0 and 6; 1 + 2 rows
    assert "top row the real seed 1000000" in res.stdout


def test_the_one_step_script_scores_each_action_beside_its_baselines() -> None:
    """runs/one_step.py: the model's one-step frame per action beside copy-last, the autoencoder, a shift."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "runs" / "one_step.py"
    cmd = [sys.executable, str(script), "--episodes", "1", "--length", "11", "--every", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert sum(a["pairs"] for a in out["per_action"].values()) == 11 - 8  # one per position after the context
    every = out["all"]
    assert every["ae"] > every["copy"] and 10 < every["model"] < 60 and every["shift"] >= every["copy"]
    assert 0 < out["sharpness"]["model"] < 3 and out["sampler"]["steps"] == 1  # the shipped play setting
