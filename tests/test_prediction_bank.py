"""A decoder tuned to a dynamics model: the bank of its predicted latents, and `train autoencoder --tune-to`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_dynamics_train import _store
from typer.testing import CliRunner

from reverie.errors import ReverieError
from reverie.models.autoencoder import load_autoencoder
from reverie.train.prediction_bank import build_bank

SMALL = ["--set", "batch_size=4", "--set", "threads=1", "--set", "val_fraction=0.34"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A store, a tiny autoencoder on it, and a tiny dynamics model over that autoencoder."""
    from reverie.cli import app

    root = tmp_path_factory.mktemp("tune")
    _store(root / "data", n_eps=3, length=12)
    runner = CliRunner()
    paths = {k: str(root / k) for k in ("data", "ae", "dit", "ae2")}
    for name in ("ae", "ae2"):  # two autoencoders that encode differently (seeds)
        seed = "0" if name == "ae" else "1"
        res = runner.invoke(
            app,
            ["train", "autoencoder", "--data", paths["data"], "--out", paths[name], "--preset", "tiny",
             "--steps", "2", *SMALL, "--set", f"seed={seed}"],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        ["train", "dynamics", "--data", paths["data"], "--autoencoder", paths["ae"], "--out", paths["dit"],
         "--preset", "tiny", "--window", "4", "--steps", "1", *SMALL],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return paths


def test_bank_pairs_predictions_with_the_real_frames_that_follow_the_context(runs: dict[str, str]) -> None:
    from reverie.data.store import EpisodeStore

    bank = build_bank(runs["dit"], runs["data"], [0, 1], windows=5, horizon=2, seed=3, progress=False)
    assert len(bank) == 10 and sorted(np.bincount(bank.horizon)[1:]) == [5, 5]
    assert bank.z.shape[0] == 10 and bank.z.dim() == 4  # (N, C, h, w)
    assert bank.frames.shape == (10, 32, 32, 3) and bank.frames.dtype == np.uint8
    store = EpisodeStore.open(runs["data"])
    real = np.concatenate([store[0].obs[3:], store[1].obs[3:]])  # frames after a full context (3)
    assert all((real == f).all(axis=(1, 2, 3)).any() for f in bank.frames)
    again = build_bank(runs["dit"], runs["data"], [0, 1], windows=5, horizon=2, seed=3, progress=False)
    assert torch.equal(bank.z, again.z) and (bank.frames == again.frames).all()  # deterministic: exact resume
    with pytest.raises(ReverieError, match="has 15 frames"):
        build_bank(runs["dit"], runs["data"], [0], windows=1, horizon=12, progress=False)


def test_tune_to_trains_the_decoder_on_the_models_predictions(runs: dict[str, str], tmp_path: Path) -> None:
    from reverie.cli import app

    runner = CliRunner()
    base = ["train", "autoencoder", "--data", runs["data"], *SMALL]
    out = tmp_path / "tuned"
    tune = ["--tune-to", runs["dit"], "--tune-windows", "6"]
    res = runner.invoke(app, [*base, *tune, "--out", str(out), "--steps", "3", "--set", "lr=1e-2"])
    assert res.exit_code == 0, res.output
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["tuned_to"]["model"] == runs["dit"] and config["data"]["freeze_encoder"] is True
    assert config["data"]["init"] == str(Path(runs["ae"]).resolve())  # the autoencoder the model trained on
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert "pred_psnr" in log[-1] and "psnr" in log[-1]  # both halves of the batch are scored
    card = (out / "MODEL_CARD.md").read_text()
    assert "Decoder tuned to the dynamics model" in card and "pred_psnr" in card
    a, b = load_autoencoder(runs["ae"]), load_autoencoder(out)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(a.encode(x), b.encode(x))  # the model's latents keep their meaning
        assert not torch.allclose(a.decode(a.encode(x)), b.decode(b.encode(x)))

    other = runner.invoke(
        app, [*base, *tune, "--init", runs["ae2"], "--out", str(tmp_path / "x"), "--steps", "1"]
    )
    assert isinstance(other.exception, ReverieError) and "does not encode as" in str(other.exception)
    assert not (tmp_path / "x").exists()


def test_tune_with_the_critic_and_far_horizons_from_the_command_line(
    runs: dict[str, str], tmp_path: Path
) -> None:
    from reverie.cli import app

    runner = CliRunner()
    out = tmp_path / "sharp"
    base = ["train", "autoencoder", "--data", runs["data"], *SMALL, "--tune-to", runs["dit"], "--tune-windows", "4",
            "--out", str(out)]  # fmt: skip
    loss = ["--set", "loss.adv_weight=0.5", "--set", "loss.bank_horizon=2", "--set", "loss.near_horizon=1"]
    res = runner.invoke(app, [*base, *loss, "--steps", "2"])
    assert res.exit_code == 0, res.output
    config = json.loads((out / "config.json").read_text())
    assert config["loss"]["adv_weight"] == 0.5 and config["data"]["tuned_to"]["horizon"] == 2
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any("critic_loss" in r for r in log) and any("far_l1" in r for r in log)
    assert "later ones keep the untuned decoder's colours" in (out / "MODEL_CARD.md").read_text()

    res = runner.invoke(app, [*base, "--resume", "--steps", "3", "--set", "loss.adv_weight=0.2"])
    assert isinstance(res.exception, ReverieError)
    assert "loss.adv_weight: 0.5 -> 0.2" in str(res.exception) and "--allow-config-change" in str(
        res.exception
    )
    res = runner.invoke(app, [*base, "--resume", "--steps", "3"])  # the saved objective goes on unchanged
    assert res.exit_code == 0, res.output
    assert json.loads((out / "train_state.json").read_text())["step"] == 3

    bad = runner.invoke(
        app, [*base[:-1], str(tmp_path / "bad"), "--set", "loss.adv_wieght=1", "--steps", "1"]
    )
    assert isinstance(bad.exception, ReverieError) and "adv_weight" in str(bad.exception)
    assert not (tmp_path / "bad").exists()
    help_text = runner.invoke(app, ["train", "autoencoder", "--help"]).output
    assert "loss.adv_weight" in help_text and "loss.near_horizon" in help_text
