"""The eval rollout harness: the simulator scores perfectly, copy-last scores its own baseline,
a tiny untrained world model runs end to end, and `reverie eval` writes its JSON and report
(measures defined in docs/measures.md)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from reverie.eval.measures import copy_last_scores, dtpsnr, rollout_scores, teacher_forced
from reverie.eval.metrics import PSNR_CAP_DB, psnr
from reverie.eval.rollout import (
    CopyLastPredictor,
    ModelPredictor,
    RealEpisodes,
    SimulatorPredictor,
    collect_real,
)
from reverie.eval.run import EvalConfig

WORLD, SIZE = "reverie/Dungeon-v0", "32x32"


@pytest.fixture(scope="module")
def real() -> RealEpisodes:
    return collect_real(WORLD, SIZE, [5000, 5001], 24)


@pytest.fixture(scope="module")
def other() -> RealEpisodes:
    return collect_real(WORLD, SIZE, [6000, 6001], 24)


def make_tiny_runs(
    root: Path,
    n_actions: int,
    world: str = WORLD,
    data: str = "",
    sampler: dict[str, Any] | None = None,
    names: list[str] | None = None,
    actions: str = "recorded",
    blur_input: bool = False,
) -> Path:
    """An untrained tiny autoencoder + dynamics run pair saved the way training saves them
    (`actions`: the store's action stream it trained on, `names`: that stream's action names)."""
    from reverie.checkpoint import save_run
    from reverie.models.autoencoder import PRESETS as AE_PRESETS
    from reverie.models.autoencoder import Autoencoder
    from reverie.models.dit import DiT, config_dict, preset

    torch.manual_seed(0)
    ae_cfg = AE_PRESETS["tiny"]
    ae = Autoencoder(ae_cfg)
    ae_dir, dit_dir = root / "ae", root / "dit"
    ae_dir.mkdir(parents=True)
    dit_dir.mkdir(parents=True)
    common: dict[str, Any] = {"card": "test", "train_tensors": {}, "train_json": {}}
    save_run(
        ae_dir,
        config={
            "kind": "autoencoder",
            "step": 0,
            "model": asdict(ae_cfg),
            "data": {"width": 32, "height": 32},
        },
        ema_state=ae.state_dict(),
        **common,
    )
    dit_cfg = preset(
        "tiny",
        latent_channels=ae_cfg.latent_channels,
        num_actions=n_actions,
        max_context=8,
        blur_input=blur_input,
    )
    dit = DiT(dit_cfg)
    save_run(
        dit_dir,
        config={
            "kind": "dynamics",
            "step": 0,
            **({"sampler": sampler} if sampler else {}),
            "model": config_dict(dit_cfg),
            "data": {
                "path": data,
                "world": world,
                "width": 32,
                "height": 32,
                "autoencoder": str(ae_dir),
                "actions": actions,
                "action_spec": {
                    "type": "discrete",
                    "n": n_actions,
                    "names": names or [f"a{i}" for i in range(n_actions)],
                },
            },
        },
        ema_state=dit.state_dict(),
        **common,
    )
    return dit_dir


def test_collect_real_is_deterministic_and_aligned(real: RealEpisodes) -> None:
    again = collect_real(WORLD, SIZE, real.seeds, 24)
    assert real.obs.shape == (2, 24, 32, 32, 3) and real.obs.dtype == np.uint8
    assert real.act.shape == (2, 24) and np.all(real.act[:, 0] == 0)  # act[0] is the null action
    assert np.array_equal(real.obs, again.obs) and np.array_equal(real.act, again.act)
    # the world's caption of every frame, as a fresh replay of the seed writes it
    from reverie.worlds.make import make_world

    env = make_world(WORLD, SIZE)
    _, info = env.reset(seed=real.seeds[1])
    said = [info["caption"]] + [env.step(int(a))[4]["caption"] for a in real.act[1, 1:]]
    assert real.captions is not None and real.captions[1] == said == again.captions[1]  # type: ignore[index]
    assert real.caption_at(5) == [real.captions[0][5], said[5]]


def test_simulator_scores_the_cap(real: RealEpisodes) -> None:
    sim = SimulatorPredictor(WORLD, SIZE)
    tf = teacher_forced(sim, real, [1, 5, 12])
    assert tf["psnr"]["mean"] == PSNR_CAP_DB and tf["ssim"]["mean"] == pytest.approx(1.0)
    scores = rollout_scores(sim, real, 4, (1, 4, 16))
    assert scores.psnr_at == {1: PSNR_CAP_DB, 4: PSNR_CAP_DB, 16: PSNR_CAP_DB}
    assert np.array_equal(scores.frames, real.obs[:, 4:20])


def test_simulator_refuses_a_context_it_cannot_reproduce(real: RealEpisodes) -> None:
    from reverie.errors import ReverieError

    with pytest.raises(ReverieError):
        SimulatorPredictor(WORLD, SIZE).reset(real.obs[:, :5], real.act[:, :5], [s + 1 for s in real.seeds])


def test_copy_last_scores_exactly_its_baseline(real: RealEpisodes) -> None:
    scores = copy_last_scores(real, 4, (1, 4, 16))
    for k in (1, 4, 16):
        p = psnr(real.obs[:, 3], real.obs[:, 3 + k])
        expected = float(p[p < PSNR_CAP_DB].mean())  # identical pairs are left out
        assert scores.psnr_at[k] == pytest.approx(expected)
    # The explore policy moves the camera, so the last frame is not a perfect guess.
    assert scores.psnr_at[16] < PSNR_CAP_DB


def test_dtpsnr_simulator_positive_copy_last_zero(real: RealEpisodes, other: RealEpisodes) -> None:
    sim = SimulatorPredictor(WORLD, SIZE)
    sim_dt = dtpsnr(sim, real, [other.act], 4, rollout_scores(sim, real, 4, (16,)), (4, 8, 16))
    copy = CopyLastPredictor()
    copy_dt = dtpsnr(copy, real, [other.act, real.act], 4, rollout_scores(copy, real, 4, (16,)), (4, 16))
    assert all(v["mean"] == 0.0 and v["draws"] == 2 for v in copy_dt.values())  # copy-last ignores actions
    assert set(sim_dt) == {"4", "8", "16"} and sim_dt["16"]["draw_spread"] is None  # one draw: no spread
    if not np.array_equal(real.act[:, 4:20], other.act[:, 4:20]):
        assert sim_dt["16"]["mean"] > 0.0


def _fork_is_independent(pred: Any, real: RealEpisodes, other: RealEpisodes) -> None:
    pred.reset(real.obs[:, :4], real.act[:, :4], real.seeds)
    pred.step(real.act[:, 4])
    expected = pred.fork()
    want = [expected.step(real.act[:, j]) for j in (5, 6)]
    fork = pred.fork()
    # the fork wanders off with other actions, long enough for a KV cache to wrap (max_context 8)
    for j in range(5, 24):
        fork.step(other.act[:, j])
    got = [pred.step(real.act[:, j]) for j in (5, 6)]
    assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))


def test_fork_is_independent(tmp_path: Path, real: RealEpisodes, other: RealEpisodes) -> None:
    sim = SimulatorPredictor(WORLD, SIZE)
    _fork_is_independent(sim, real, other)
    assert np.array_equal(
        sim.fork().step(real.act[:, 7]), real.obs[:, 7]
    )  # the fork is where the original is
    _fork_is_independent(CopyLastPredictor(), real, other)
    model = ModelPredictor(make_tiny_runs(tmp_path, int(real.action_spec["n"])), steps=1)
    with torch.no_grad():  # untrained output layers start at zero: make frames depend on the context
        gen = torch.Generator().manual_seed(0)
        for p in model.model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    _fork_is_independent(model, real, other)
    # the fork draws the same noise: from the same state and actions it gives the original's frames
    a, b = model.fork(), model.fork()
    assert np.array_equal(a.step(real.act[:, 7]), b.step(real.act[:, 7]))


def test_model_predictor_runs_untrained(tmp_path: Path, real: RealEpisodes) -> None:
    n = int(real.action_spec["n"])
    model = ModelPredictor(make_tiny_runs(tmp_path, n), steps=1)
    scores = rollout_scores(model, real, 4, (1, 4))
    assert scores.frames.shape == (2, 4, 32, 32, 3) and scores.frames.dtype == np.uint8
    assert all(np.isfinite(v) and 0.0 <= v < PSNR_CAP_DB for v in scores.psnr_at.values())
    tf = teacher_forced(model, real, [3])
    assert np.isfinite(tf["psnr"]["mean"]) and -1.0 <= tf["ssim"]["mean"] <= 1.0
    # Seeded: the same predictor reset again gives the same frames.
    again = rollout_scores(model, real, 4, (1, 4))
    assert np.array_equal(scores.frames, again.frames)


def _small(**kw: Any) -> EvalConfig:
    base = dict(
        world=WORLD, size=SIZE, episodes=2, seed=900_000, horizons=(1, 4, 16), tf_positions=2, drift_frames=40,
        drift_segment=20, idm_steps=5, idm_episodes=2, idm_length=12, progress=False, dt_draws=2,
        probe_contexts=1, probe_frames=4, workers=1,
    )  # fmt: skip
    return EvalConfig(**{**base, **kw})


RESULT_KEYS = {
    "psnr_tf", "ssim_tf", "psnr_rollout", "psnr_copy_last", "dtpsnr16", "idm_acc_generated", "idm_acc_real",
    "drift_fd_per_minute", "fps", "model", "data", "world", "seeds", "dtpsnr", "sharpness", "probe",
    "start_from_nothing", "psnr_rollout_median", "psnr_copy_last_median", "rollout_identical_excluded",
    "play_settings", "idm_confusion", "drift_fd_over_floor_per_minute",
}  # fmt: skip


@pytest.mark.slow  # a full small evaluation, a minute on one core: `make test-all` runs it
def test_evaluate_simulator_and_report(tmp_path: Path) -> None:
    from reverie.eval.report import write_report
    from reverie.eval.run import evaluate

    result, art = evaluate(_small(predictor="simulator"))
    assert set(result) >= RESULT_KEYS
    assert result["psnr_rollout"] == {"1": PSNR_CAP_DB, "4": PSNR_CAP_DB, "16": PSNR_CAP_DB}
    assert all(v < PSNR_CAP_DB for v in result["psnr_copy_last"].values())
    assert result["dtpsnr16"] > 0 and len(result["drift_fd_per_minute"]) == 2
    assert max(result["drift_fd_per_minute"]) == pytest.approx(0.0, abs=1e-6)  # the simulator never drifts
    assert result["drift_fd_over_floor_per_minute"] == [0.0, 0.0]
    assert result["sharpness"]["generated"] == {"1": 1.0, "4": 1.0, "16": 1.0}
    assert 0.0 <= result["idm_acc_real"] <= 1.0
    assert len(result["drift_idm_acc_per_minute"]) == 2
    assert all(0.0 <= v <= 1.0 for v in result["drift_idm_acc_per_minute"])
    json.dumps(result)  # JSON-able as is
    page = tmp_path / "r.html"
    write_report(str(page), result, art)
    text = page.read_text()
    # two plots (PSNR vs horizon, drift), the probe grid, the contact sheet (dream and real per time:
    # 0 s, 1 s and the last frame of a 40-frame dream) and a real and a generated strip per episode
    assert text.count("data:image/png;base64,") == 2 + 1 + 2 * 3 + 2 * 2
    assert "DESIGN.md" not in text and "docs/measures.md" in text
    assert "<script" not in text and "src='http" not in text  # self-contained: nothing fetched
    assert f"{result['psnr_copy_last']['16']:.4g}" in text


@pytest.mark.slow  # then evaluates, 45 s on one core: `make test-all` runs it
def test_model_eval_refuses_training_seeds(tmp_path: Path) -> None:
    from reverie.data.record import RecordConfig, record
    from reverie.errors import ReverieError
    from reverie.eval.run import evaluate
    from reverie.sizes import parse_size

    store = tmp_path / "data"
    record(
        RecordConfig(WORLD, parse_size(SIZE), episodes=2, steps=8, seed=900_001), str(store), progress=False
    )
    env_n = int(collect_real(WORLD, SIZE, [1], 2).action_spec["n"])
    run = make_tiny_runs(tmp_path / "runs", env_n, data=str(store))
    with pytest.raises(ReverieError, match="allow-overlap"):
        evaluate(_small(model=str(run)))
    result, _ = evaluate(_small(model=str(run), allow_overlap=True, steps=1))
    assert result["seed_overlap"] == [900_001, 900_002]
    assert result["predictor"] == "model" and result["drift_features"].startswith("autoencoder")
    assert all(np.isfinite(v) for v in result["psnr_rollout"].values())


def test_cli_compare(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import reverie.cli.eval  # noqa: F401  (attaches the command)
    from reverie.cli.apps import app

    a = {"psnr_rollout": {"1": 20.0, "16": 15.0}, "psnr_tf": 22.0, "drift_fd_per_minute": [1.0, 3.0]}
    b = {"psnr_rollout": {"1": 21.5, "16": 14.0}, "psnr_tf": 25.0, "drift_fd_per_minute": [2.0, 2.0]}
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    res = CliRunner().invoke(
        app, ["eval", "--compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--json"]
    )
    assert res.exit_code == 0, res.output
    rows = {r["measure"]: r for r in map(json.loads, res.output.strip().splitlines())}
    assert rows["psnr_rollout@1"]["delta"] == pytest.approx(1.5)
    assert rows["psnr_tf"]["delta"] == pytest.approx(3.0)
    assert rows["drift_fd_per_minute (mean)"]["delta"] == pytest.approx(0.0)


@pytest.mark.slow
def test_cli_eval_quick_writes_json_and_report(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import reverie.cli.eval  # noqa: F401  (attaches the command)
    from reverie.cli.apps import app

    page = tmp_path / "out" / "report.html"
    args = [
        "eval",
        "--predictor",
        "copy-last",
        "--world",
        WORLD,
        "--size",
        SIZE,
        "--episodes",
        "2",
        "--quick",
    ]
    res = CliRunner().invoke(app, [*args, "--json", "--report", str(page)])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert set(result) >= RESULT_KEYS and result["quick"] is True
    assert result["psnr_rollout"] == result["psnr_copy_last"] and result["dtpsnr16"] == 0.0
    assert result["play_settings"] is None  # not a model
    assert page.read_text().startswith("<!doctype html>")


def test_cli_refuses_bad_report_name(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import reverie.cli.eval  # noqa: F401
    from reverie.cli.apps import app
    from reverie.errors import ReverieError

    res = CliRunner().invoke(app, ["eval", "--predictor", "simulator", "--world", WORLD, "--report", "r.png"])
    assert isinstance(res.exception, ReverieError) and "html" in str(res.exception)
    assert not (tmp_path / "r.png").exists()


def test_real_episodes_outlast_the_worlds_default_episode_limit() -> None:
    """The drift measure needs 9,000 frames; the built-in worlds end episodes at 1,000 by default."""
    from reverie.eval.rollout import collect_real

    real = collect_real("reverie/Dungeon-v0", "32x32", [1_000_000], 1_100)
    assert real.obs.shape[:2] == (1, 1_100) and real.seeds == [1_000_000]
