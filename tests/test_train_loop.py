"""The training loop: schedule, config overrides, exact resume, atomic checkpoints, bad input, CLI smoke."""

from __future__ import annotations

import itertools
import json
import os
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from reverie import checkpoint as ckpt
from reverie.errors import ReverieError
from reverie.models.autoencoder import PRESETS, load_autoencoder
from reverie.train.autoencoder_task import AutoencoderTask, split_episodes
from reverie.train.config import TrainConfig, load_yaml, resolve
from reverie.train.loop import LOG_FILE, train
from reverie.train.schedule import lr_at
from reverie.typed_config import apply_overrides

TINY = PRESETS["tiny"]
CFG = TrainConfig(steps=6, batch_size=4, warmup_steps=2, precision="fp32", log_every=1, threads=1)


def frames(n: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    return np.repeat(np.repeat(small, 4, axis=1), 4, axis=2)  # (n, 32, 32, 3) blocky frames


def task(cfg: TrainConfig = CFG) -> AutoencoderTask:
    return AutoencoderTask.from_frames(frames(), TINY, cfg, val_frames=frames(4, seed=1))


def losses(run: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in map(json.loads, (run / LOG_FILE).read_text().splitlines())]


def weights(run: Path) -> dict[str, torch.Tensor]:
    tensors, _ = ckpt.load_train_state(run, json.loads((run / ckpt.CONFIG_FILE).read_text()))
    return tensors


# -- schedule and config ----------------------------------------------------------------------------
def test_lr_schedule_warmup_then_cosine() -> None:
    kw = {"lr": 1.0, "warmup_steps": 10, "total_steps": 110, "min_lr_ratio": 0.1}
    assert lr_at(0, **kw) == pytest.approx(0.1)
    assert lr_at(9, **kw) == pytest.approx(1.0)
    assert lr_at(60, **kw) == pytest.approx(0.55)  # halfway down the cosine: floor + half the span
    assert lr_at(110, **kw) == pytest.approx(0.1)
    values = [lr_at(s, **kw) for s in range(10, 111)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_device_auto_takes_cuda_only_where_there_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from reverie.train.distributed import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == resolve_device("auto") == "cpu"
    with pytest.raises(ReverieError, match="accepted: cpu, auto"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == "cuda:0" and resolve_device("cpu") == "cpu"
    monkeypatch.setenv("LOCAL_RANK", "3")  # under torchrun each local rank takes its own GPU
    assert resolve_device("cuda") == "cuda:1"


def test_unknown_key_lists_valid_keys() -> None:
    with pytest.raises(
        ReverieError, match=r"unknown train config key 'lerning_rate'.*valid keys: steps, batch_size"
    ):
        resolve(None, ["lerning_rate=1"])


def test_overrides_are_typed_and_checked(tmp_path: Path) -> None:
    cfg, model = resolve(None, ["lr=3e-4", "steps=10", "precision=fp32", "model.latent_channels=8"])
    assert (cfg.lr, cfg.steps, cfg.precision) == (3e-4, 10, "fp32")
    assert model == {"latent_channels": "8"}
    with pytest.raises(ReverieError, match="bad value 'ten' for steps"):
        resolve(None, ["steps=ten"])
    with pytest.raises(ReverieError, match="precision 'fp8'"):
        resolve(None, ["precision=fp8"])
    with pytest.raises(ReverieError, match="KEY=VALUE"):
        resolve(None, ["lr"])
    yml = tmp_path / "cfg.yaml"
    yml.write_text("lr: 0.002\nmodel:\n  latent_channels: 16\n")
    assert load_yaml(yml) == {"lr": 0.002, "model.latent_channels": 16}
    cfg, model = resolve(str(yml), ["lr=1e-4"])  # --set wins over the file
    assert cfg.lr == 1e-4 and model == {"latent_channels": 16}
    assert apply_overrides(TrainConfig(), {"minutes": "1.5"}).minutes == 1.5


def test_split_holds_out_last_episodes() -> None:
    assert split_episodes(40, 0.05) == (list(range(38)), [38, 39])
    assert split_episodes(3, 0.05) == ([0, 1], [2])
    assert split_episodes(1, 0.05) == ([0], [])


# -- resume and checkpoints ---------------------------------------------------------------------------
class InterruptAt(AutoencoderTask):
    """Sends this process SIGINT while building the batch of `at`: as if Ctrl-C was pressed then."""

    at = -1

    def batch(self, step: int, rank: int, world_size: int) -> dict[str, torch.Tensor]:
        if step == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return super().batch(step, rank, world_size)


def test_resume_is_exact(tmp_path: Path) -> None:
    straight = train(task(), CFG, tmp_path / "straight")

    t = InterruptAt.from_frames(frames(), TINY, CFG, val_frames=frames(4, seed=1))
    t.at = 2  # the signal lands during step 2: the loop finishes it, saves at step 3 and returns
    split = train(t, CFG, tmp_path / "split")
    assert json.loads((split / ckpt.CONFIG_FILE).read_text())["step"] == 3
    train(task(), CFG, split, resume=True)

    assert [s for s, _ in losses(split)] == list(range(1, 7))
    assert losses(split) == losses(straight)  # bitwise: same floats
    a, b = weights(straight), weights(split)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    _, ema_a = ckpt.load_run(straight)
    _, ema_b = ckpt.load_run(split)
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)


def test_checkpoint_files_and_loading(tmp_path: Path) -> None:
    run = train(task(), replace(CFG, steps=2), tmp_path / "run")
    names = sorted(os.listdir(run))
    assert not [n for n in names if n.endswith(".tmp")]
    assert {
        "model.safetensors",
        "config.json",
        "MODEL_CARD.md",
        "train_state.safetensors",
        "train_state.json",
    } <= set(names)
    config = json.loads((run / "config.json").read_text())
    assert config["kind"] == "autoencoder" and config["step"] == 2 and config["train"]["steps"] == 2
    assert "psnr" in config["metrics"]
    assert "## Training" in (run / "MODEL_CARD.md").read_text()
    model = load_autoencoder(run)
    assert not model.training
    z = model.encode(torch.zeros(1, 3, 32, 32))
    assert z.shape == (1, 12, 4, 4)


def test_corrupt_and_mixed_checkpoints_error(tmp_path: Path) -> None:
    run = train(task(), replace(CFG, steps=2), tmp_path / "run")
    good = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(good[: len(good) // 2])  # cut off mid-write
    with pytest.raises(ReverieError, match="corrupt or truncated"):
        load_autoencoder(run)
    (run / "model.safetensors").write_bytes(good)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "save_id": "other"}))
    with pytest.raises(ReverieError, match="different saves"):
        load_autoencoder(run)
    (run / "config.json").write_text("{not json")
    with pytest.raises(ReverieError, match="not valid JSON"):
        load_autoencoder(run)
    with pytest.raises(ReverieError, match="does not exist"):
        load_autoencoder(tmp_path / "nowhere")


def test_incompatible_runs_error(tmp_path: Path) -> None:
    run = train(task(), replace(CFG, steps=2), tmp_path / "run")
    with pytest.raises(ReverieError, match="already holds a training run"):
        train(task(), CFG, run)
    with pytest.raises(ReverieError, match="no training run to continue"):
        train(task(), CFG, tmp_path / "empty", resume=True)
    other = AutoencoderTask.from_frames(frames(), replace(TINY, latent_channels=8), CFG)
    with pytest.raises(ReverieError, match=r"its model differs .*\(latent_channels: 12 -> 8\)"):
        train(other, CFG, run, resume=True)
    config, _ = ckpt.load_run(run)
    with pytest.raises(ReverieError, match="holds a 'autoencoder' model, expected 'dynamics'"):
        ckpt.check_kind(config, "dynamics", run)


# -- data and CLI -------------------------------------------------------------------------------------
def make_store(path: Path, episodes: int = 3, T: int = 6) -> Path:
    from reverie.data.episode import Episode
    from reverie.data.store import EpisodeStore

    store = EpisodeStore.create(
        path,
        world="test",
        action_spec={"type": "discrete", "n": 2, "names": ["noop", "go"]},
        size="32x32",
        fps=30,
    )
    for i in range(episodes):
        obs = frames(T, seed=i)
        store.append(Episode.from_frames(obs, act=np.zeros(T, np.int64), seed=i))
    return path


def test_missing_or_empty_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(ReverieError, match="no such episode store"):
        AutoencoderTask.from_store(str(tmp_path / "none"), TINY, CFG)
    make_store(tmp_path / "empty", episodes=0)
    with pytest.raises(ReverieError, match="holds no episodes"):
        AutoencoderTask.from_store(str(tmp_path / "empty"), TINY, CFG)
    with pytest.raises(ReverieError, match="divisible by 8"):
        AutoencoderTask.from_frames(np.zeros((2, 30, 32, 3), np.uint8), TINY, CFG)


def test_cli_train_resume_and_bench(tmp_path: Path) -> None:
    from reverie.cli import app

    data = make_store(tmp_path / "data")
    out = tmp_path / "ae"
    runner = CliRunner()
    args = ["train", "autoencoder", "--data", str(data), "--out", str(out), "--preset", "tiny"]
    res = runner.invoke(app, [*args, "--steps", "3", "--set", "batch_size=4", "--set", "threads=1"])
    assert res.exit_code == 0, res.output
    config = json.loads((out / "config.json").read_text())
    assert config["step"] == 3 and config["data"]["val_episodes"] == [2]
    res = runner.invoke(
        app, ["train", "autoencoder", "--data", str(data), "--out", str(out), "--resume", "--steps", "5"]
    )
    assert res.exit_code == 0, res.output
    config = json.loads((out / "config.json").read_text())
    assert config["step"] == 5 and config["train"]["batch_size"] == 4  # the resumed run kept its settings
    res = runner.invoke(app, [*args, "--set", "nope=1"])
    assert isinstance(res.exception, ReverieError) and "valid keys" in str(res.exception)

    res = runner.invoke(
        app, ["bench", "train", "--kind", "autoencoder", "--preset", "tiny", "--steps", "1", "--json"]
    )
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    assert [(r["kind"], r["preset"]) for r in rows] == [("autoencoder", "tiny")] and rows[0][
        "frames_per_s"
    ] > 0


def test_cli_train_dynamics_on_the_autoencoder(tmp_path: Path) -> None:
    pytest.importorskip("reverie.train.dynamics_task")
    from reverie.cli import app

    data = make_store(tmp_path / "data", episodes=3, T=8)
    runner = CliRunner()
    ae = tmp_path / "ae"
    res = runner.invoke(
        app,
        ["train", "autoencoder", "--data", str(data), "--out", str(ae), "--preset", "tiny", "--steps", "2"],
    )
    assert res.exit_code == 0, res.output
    dit = tmp_path / "dit"
    args = ["train", "dynamics", "--data", str(data), "--autoencoder", str(ae), "--out", str(dit)]
    res = runner.invoke(
        app, [*args, "--preset", "tiny", "--window", "3", "--steps", "2", "--set", "batch_size=2"]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*args, "--resume", "--steps", "3"])
    assert res.exit_code == 0, res.output
    config = json.loads((dit / "config.json").read_text())
    assert config["kind"] == "dynamics" and config["step"] == 3
    assert config["model"]["latent_channels"] == PRESETS["tiny"].latent_channels
    # a dynamics run is not an autoencoder: the error names both kinds
    res = runner.invoke(
        app,
        ["train", "dynamics", "--data", str(data), "--autoencoder", str(dit), "--out", str(tmp_path / "x")],
    )
    assert isinstance(res.exception, ReverieError) and "'dynamics' model, expected 'autoencoder'" in str(
        res.exception
    )


def test_decoder_fine_tune_keeps_the_latents_exactly(tmp_path: Path) -> None:
    """--init RUN --freeze-encoder: encode() is bitwise unchanged, the decoder (and its pictures) move."""
    from reverie.cli import app

    data = make_store(tmp_path / "data")
    runner = CliRunner()
    base = ["train", "autoencoder", "--data", str(data), "--set", "batch_size=4", "--set", "threads=1"]
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "ae"), "--preset", "tiny", "--steps", "4"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        [*base, "--out", str(tmp_path / "ft"), "--init", str(tmp_path / "ae"), "--freeze-encoder",
         "--steps", "4", "--set", "lr=1e-2"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    a, b = load_autoencoder(tmp_path / "ae"), load_autoencoder(tmp_path / "ft")
    x = torch.from_numpy(frames(4, seed=9)).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        za, zb = a.encode(x), b.encode(x)
        assert torch.equal(za, zb)
        assert not torch.allclose(a.decode(za), b.decode(zb))
    config = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert config["data"]["freeze_encoder"] is True and config["data"]["init"].endswith("ae")
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "x"), "--freeze-encoder"])
    assert isinstance(res.exception, ReverieError) and "needs --init" in str(res.exception)
