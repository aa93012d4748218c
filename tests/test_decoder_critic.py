"""The autoencoder's objective beyond L1 + SSIM (`loss.*`): a patch critic over single frames, and far
predictions of a tuned decoder anchored to the untuned decoder's colours."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reverie.checkpoint import load_run, load_train_state
from reverie.errors import ReverieError
from reverie.models.autoencoder import AutoencoderConfig
from reverie.models.critic import Adversary, PixelCritic
from reverie.train.autoencoder_task import AutoencoderLossConfig, AutoencoderTask
from reverie.train.config import TrainConfig
from reverie.train.loop import train
from reverie.train.prediction_bank import PredictionBank

AE = AutoencoderConfig(channels=(8, 8, 8), blocks=(0, 0, 0), latent_channels=4)  # 32x32 -> 4x4x4


def textures(n: int, seed: int) -> torch.Tensor:
    """(n, 3, 32, 32) frames in [-1, 1] with sharp 2-pixel checks in random colours."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 16, 16, generator=g) * 2 - 1
    return coarse.repeat_interleave(2, -1).repeat_interleave(2, -2)


def blurred(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(F.avg_pool2d(x, 4), scale_factor=4, mode="bilinear")


def test_unpaired_critic_tells_sharp_frames_from_blurred_ones() -> None:
    torch.manual_seed(0)
    adv = Adversary(PixelCritic("none", 1, 0, paired=False), lr=2e-3)
    for i in range(60):
        real = textures(32, i)
        m = adv.update(None, real, blurred(textures(32, 1000 + i)), None)
    assert m["critic_real"] > m["critic_fake"]
    real, fake = textures(64, 999), blurred(textures(64, 998))
    with torch.no_grad():
        d_real, d_fake = adv.critic(None, real, None).mean((1, 2)), adv.critic(None, fake, None).mean((1, 2))
    assert (d_real.mean() - d_fake.mean()) > 0.5 and (d_real > d_fake.median()).float().mean() > 0.9
    fake = fake.clone().requires_grad_(True)  # its generator loss reaches the frames, not the critic
    adv.generator_loss(None, fake, None).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in adv.critic.parameters())
    with pytest.raises(ValueError, match="not paired"):
        adv.critic(real, real, None)


def _bank(n: int, horizon: int, seed: int) -> PredictionBank:
    g = torch.Generator().manual_seed(seed)
    frames = ((textures(n, seed) + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    return PredictionBank(torch.randn(n, 4, 4, 4, generator=g), frames, np.arange(n) % horizon + 1)


def _task(loss: AutoencoderLossConfig, horizon: int = 3) -> AutoencoderTask:
    frames = ((textures(24, 5) + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()

    def sample(batch: int, rng: np.random.Generator) -> np.ndarray:
        return frames[rng.integers(0, len(frames), size=batch)]

    bank = _bank(30, horizon, 1)  # a tuned decoder keeps its encoder (and the latents' statistics)
    return AutoencoderTask(
        AE, TrainConfig(), sample, frames[:4], (32, 32), freeze_encoder=True, bank=bank, loss_cfg=loss
    )


def test_far_predictions_keep_the_untuned_colours_and_near_ones_learn_the_real_frame() -> None:
    task = _task(AutoencoderLossConfig(bank_horizon=3, near_horizon=1))
    torch.manual_seed(0)
    model = task.build_model()
    batch = task.batch(0, 0, 1)
    assert batch["near"].any() and not batch["near"].all()
    _, m = task.loss(model, batch)
    assert m["far_l1"] == 0.0  # the decoder has not moved from the one it is anchored to
    assert "pred_l1" in m and "critic_loss" not in m  # no critic unless weighted
    with torch.no_grad():  # a decoder that darkens every frame is held back by the anchor alone
        model.decoder.conv_out.bias -= 0.5
    _, m = task.loss(model, batch)
    assert m["far_l1"] == pytest.approx(0.5, abs=1e-4)
    # every prediction near: no anchor is kept, no far term is computed
    near_only = _task(AutoencoderLossConfig(bank_horizon=3, near_horizon=3))
    near_only.build_model()
    assert near_only._anchor is None and "far_l1" not in near_only.loss(model, near_only.batch(0, 0, 1))[1]


def test_decoder_critic_run_resumes_exactly(tmp_path: Path) -> None:
    loss = AutoencoderLossConfig(adv_weight=0.5, adv_lr=1e-3, bank_horizon=3, near_horizon=1)
    cfg = TrainConfig(steps=4, batch_size=8, lr=1e-3, warmup_steps=1, log_every=1, sample_every=100,
                      checkpoint_minutes=100.0, threads=1, precision="fp32")  # fmt: skip
    train(_task(loss), cfg, tmp_path / "whole")
    train(_task(loss), replace(cfg, steps=2), tmp_path / "split")
    train(_task(loss), cfg, tmp_path / "split", resume=True)
    config, whole = load_run(tmp_path / "whole")
    assert config["loss"] == {"adv_weight": 0.5, "adv_lr": 1e-3, "bank_horizon": 3, "near_horizon": 1}
    split = load_run(tmp_path / "split")[1]
    assert all(torch.equal(whole[k], split[k]) for k in whole)
    tw, _ = load_train_state(tmp_path / "whole", config)
    ts, _ = load_train_state(tmp_path / "split", load_run(tmp_path / "split")[0])
    critic = [k for k in tw if k.startswith("critic/")]
    assert critic and all(torch.equal(tw[k], ts[k]) for k in critic)
    assert not any(k.startswith("critic") for k in whole)  # the shipped weights hold the autoencoder only
    log = (tmp_path / "whole" / "log.jsonl").read_text()
    assert "critic_loss" in log and "far_l1" in log and "recon_loss" in log
    card = (tmp_path / "whole" / "MODEL_CARD.md").read_text()
    assert "Adversarial term" in card


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"adv_weight": -1.0}, "loss.adv_weight"),
        ({"bank_horizon": 2, "near_horizon": 3}, "loss.near_horizon must be in 1..loss.bank_horizon"),
        ({"bank_horizon": 0}, "loss.bank_horizon"),
        ({"adv_lr": 0.0}, "loss.adv_lr"),
    ],
)
def test_loss_config_is_checked(bad: dict, match: str) -> None:
    with pytest.raises(ReverieError, match=match):
        AutoencoderLossConfig(**bad)
    with pytest.raises(ReverieError, match="accepted"):
        AutoencoderLossConfig.from_dict({"adv_wieght": 0.1})


@pytest.mark.parametrize(
    "command,key,takes",
    [
        ("autoencoder", "flow.p_play=1", "model.* and loss.*"),
        ("dynamics", "loss.adv_weight=1", "flow.* and sampler.*"),
    ],
)
def test_a_section_of_the_other_command_is_named_as_such(
    tmp_path: Path, command: str, key: str, takes: str
) -> None:
    from typer.testing import CliRunner

    from reverie.cli import app

    args = ["train", command, "--data", str(tmp_path / "d"), "--out", str(tmp_path / "o"), "--set", key]
    res = CliRunner().invoke(
        app, args + (["--autoencoder", str(tmp_path / "a")] if command == "dynamics" else [])
    )
    assert isinstance(res.exception, ReverieError)
    assert f"not a setting of `reverie train {command}`" in str(res.exception) and takes in str(res.exception)
    assert not (tmp_path / "o").exists()
