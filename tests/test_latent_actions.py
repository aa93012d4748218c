"""Latent actions: the model's shapes and codebook, the agreement measures on analytic cases, the
action stream written atomically beside the recorded actions, and the refusals."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from reverie.cli import app
from reverie.data.episode import Episode
from reverie.data.store import EpisodeStore
from reverie.data.streams import list_streams, read_stream, write_stream
from reverie.errors import ReverieError
from reverie.models.latent_actions import (
    LatentActionConfig,
    LatentActionModel,
    agreement,
    latent_action_preset,
    spherical_kmeans,
    windows_of,
)
from reverie.train.dynamics_task import LatentClips
from reverie.train.latent_action_task import LatentActionTask, check_steps

runner = CliRunner()
MOVES = np.array([[0, 0], [0, -3], [0, 3], [-3, 0], [3, 0]])  # noop, left, right, up, down (pixels)
NAMES = ["noop", "left", "right", "up", "down"]


def blob_latents(n_eps: int = 16, length: int = 40, seed: int = 0) -> LatentClips:
    """Latents (4, 6, 6) of a blob that the action moves one cell: the action is what the past cannot tell."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[:6, :6].astype(np.float32)
    zs, acts = [], []
    for _ in range(n_eps):
        pos = g.integers(1, 5, 2).astype(np.float32)
        act = g.integers(0, 5, length)
        act[0] = 0
        for a in act:
            pos = np.clip(pos + np.sign(MOVES[a]), 0, 5)
            zs.append(np.exp(-((yy - pos[0]) ** 2 + (xx - pos[1]) ** 2))[None].repeat(4, 0))
        acts.append(act)
    z = torch.from_numpy(np.stack(zs)) * 2 - 0.5
    act = torch.from_numpy(np.concatenate(acts))
    return LatentClips(z, act, torch.zeros(len(z), dtype=torch.long), [""], [length] * n_eps)


def test_shapes_and_padding() -> None:
    cfg = LatentActionConfig(latent_channels=4, codes=5, context=2, width=16, blocks=1)
    model = LatentActionModel(cfg)
    z = torch.randn(3, 3, 4, 6, 6)  # (B, context + 1, C, h, w)
    out = model(z)
    assert out["pred"].shape == (3, 4, 6, 6) and out["code"].shape == (3,) and out["code"].max() < 5
    assert model.encode(z).dtype == torch.long
    # frame i sees frames i-2..i of its own episode; the first frame is repeated before the start
    w = windows_of(torch.arange(5.0).view(5, 1, 1, 1), [2, 3], 2).flatten(1)
    assert w.tolist() == [[0, 0, 0], [0, 0, 1], [2, 2, 2], [2, 2, 3], [2, 3, 4]]
    assert latent_action_preset("tiny").width < latent_action_preset("small").width
    with pytest.raises(ReverieError, match="accepted: tiny, small"):
        latent_action_preset("huge")


def test_spherical_kmeans_finds_separated_clusters() -> None:
    centres = torch.eye(4)
    x = torch.nn.functional.normalize(centres.repeat(50, 1) + 0.05 * torch.randn(200, 4), dim=1)
    found = spherical_kmeans(x, 4)
    assert (found @ centres.t()).amax(0).min() > 0.95  # every true centre has a found one next to it


def test_agreement_on_analytic_cases() -> None:
    acts = np.arange(5).repeat(20)
    perm = np.array([3, 0, 4, 1, 2])[acts]  # codes are a relabelling of the actions
    a = agreement(perm, acts, 5, NAMES, among=["noop", "left"])
    assert a["accuracy_one_to_one"] == 1.0 and a["accuracy_many_to_one"] == 1.0 and a["nmi"] == 1.0
    assert (
        a["accuracy_one_to_one_view"] == 1.0
        and a["per_action"]["up"] == a["per_action_one_to_one"]["up"] == 1.0
    )
    const = agreement(np.zeros(100, int), acts, 5, NAMES)  # one code for everything: chance
    assert const["nmi"] == 0.0 and const["accuracy_many_to_one"] == 0.2 and const["codes_used"] == 1
    merged = agreement(np.minimum(acts, 3), acts, 8, NAMES)  # up and down share a code
    assert merged["accuracy_many_to_one"] == 0.8 and 0.8 < merged["nmi"] < 1.0


def test_warmup_ends_with_every_code_in_use() -> None:
    """After the warm-up the codebook is k-means of recent vectors, so no code starts dead."""
    torch.manual_seed(0)
    model = LatentActionModel(LatentActionConfig(latent_channels=4, codes=8, width=16, blocks=1, warmup=4))
    z = torch.randn(64, 2, 4, 6, 6)
    for _ in range(4):
        model(z)
    assert int(model.steps) == 4 and len(model(z)["code"].unique()) >= 6
    assert torch.allclose(model.codebook.norm(dim=1), torch.ones(8))


@pytest.mark.slow
def test_codes_come_to_mean_the_actions() -> None:
    """On latents where only the action decides the next frame, the codes are used and agree with it."""
    torch.manual_seed(0)
    cfg = LatentActionConfig(codes=8, width=32, blocks=1, code_dim=8, warmup=150)
    task = LatentActionTask(blob_latents(), blob_latents(4, 40, seed=1), cfg, batch_size=64,
                            action_spec={"type": "discrete", "n": 5, "names": NAMES})  # fmt: skip
    model = task.build_model()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(400):
        loss, _ = task.loss(model, task.batch(step, 0, 1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    result = task.evaluate(model)
    assert result["codes_used"] >= 5
    assert result["next_mse"] < 0.5 * result["copy_last_mse"]
    assert result["other_code_mse"] > 2 * result["next_mse"]  # the code matters
    assert result["nmi"] > 0.6, result


def test_too_few_frames_are_refused_with_the_numbers() -> None:
    with pytest.raises(ReverieError, match=r"holds 12 frames in 3 episodes: 9 steps.*at least 64"):
        check_steps([4, 4, 4], "clips")


def _store(
    path: Path, n_eps: int = 3, length: int = 24, size: int = 32, actions: bool = True
) -> EpisodeStore:
    spec = {"type": "discrete", "n": 5, "names": NAMES} if actions else {"type": "none"}
    store = EpisodeStore.create(path, world="test/blob", action_spec=spec, size=f"{size}x{size}", fps=10.0)
    g = np.random.default_rng(0)
    for i in range(n_eps):
        act = g.integers(0, 5, length)
        act[0] = 0
        pos, obs = np.array([size // 2, size // 2]), []
        for a in act:
            pos = np.clip(pos + MOVES[a], 4, size - 12)
            frame = np.full((size, size, 3), 30, np.uint8)
            frame[pos[0] : pos[0] + 8, pos[1] : pos[1] + 8] = (250, 200, 40)
            obs.append(frame)
        store.append(Episode.from_frames(np.stack(obs), act=act if actions else None, seed=i))
    return store


def _ae_run(path: Path, size: int = 32) -> str:
    from reverie.checkpoint import save_run
    from reverie.models.autoencoder import Autoencoder, preset_config

    torch.manual_seed(0)
    ae = Autoencoder(preset_config("tiny"))
    config = {
        "kind": "autoencoder",
        "model": asdict(ae.cfg),
        "data": {"width": size, "height": size},
        "step": 0,
    }
    save_run(path, config=config, ema_state=ae.state_dict(), card="", train_tensors={}, train_json={})
    return str(path)


SMALL = ["--set", "threads=1", "--set", "batch_size=16", "--set", "val_fraction=0", "--preset", "tiny"]


@pytest.fixture
def lam_run(tmp_path: Path) -> dict[str, str]:
    _store(tmp_path / "data")
    ae = _ae_run(tmp_path / "ae")
    out = str(tmp_path / "lam")
    args = ["train", "latent-actions", "--data", str(tmp_path / "data"), "--autoencoder", ae, "--out", out]
    r = runner.invoke(app, [*args, "--steps", "3", *SMALL, "--set", "model.warmup=2"])
    assert r.exit_code == 0, r.output
    return {"data": str(tmp_path / "data"), "ae": ae, "lam": out, "root": str(tmp_path)}


def test_train_label_and_dynamics_on_the_stream(lam_run: dict[str, str]) -> None:
    config = json.loads(Path(lam_run["lam"], "config.json").read_text())
    assert config["kind"] == "latent-actions" and config["data"]["width"] == 32
    r = runner.invoke(app, ["data", "label-actions", lam_run["data"], "--model", lam_run["lam"]])
    assert r.exit_code == 0, r.output
    store = EpisodeStore.open(lam_run["data"])
    spec, act = read_stream(store, "latent")
    assert spec["n"] == 8 and spec["source"] == "latent-actions" and spec["names"][0] == "noop"
    assert [len(a) for a in act] == store.lengths.tolist() and all(a[0] == 0 for a in act)
    assert store[0].act is not None and store.action_spec["n"] == 5  # the recorded actions are kept
    info = runner.invoke(app, ["data", "info", lam_run["data"]])
    assert "stream    latent: 8 actions" in info.output
    r = runner.invoke(app, ["eval-actions", "--model", lam_run["lam"], "--data", lam_run["data"], "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output.strip().splitlines()[-1])
    assert {"accuracy_one_to_one", "accuracy_many_to_one", "nmi", "per_action"} <= set(result)
    dyn = str(Path(lam_run["root"], "dyn"))
    r = runner.invoke(app, ["train", "dynamics", "--data", lam_run["data"], "--autoencoder", lam_run["ae"],
                            "--out", dyn, "--actions", "latent", "--window", "3", "--steps", "1", *SMALL])  # fmt: skip
    assert r.exit_code == 0, r.output
    dyn_config = json.loads(Path(dyn, "config.json").read_text())
    assert dyn_config["model"]["num_actions"] == 8 and dyn_config["data"]["actions"] == "latent"
    assert dyn_config["data"]["action_spec"]["source"] == "latent-actions"
    # A resume keeps the run's own actions (it once fell back to the recorded ones), and refuses others.
    r = runner.invoke(app, ["train", "dynamics", "--data", lam_run["data"], "--autoencoder", lam_run["ae"],
                            "--out", dyn, "--resume", "--steps", "2"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(Path(dyn, "config.json").read_text())["data"]["actions"] == "latent"
    r = runner.invoke(app, ["train", "dynamics", "--data", lam_run["data"], "--autoencoder", lam_run["ae"],
                            "--out", dyn, "--resume", "--steps", "3", "--actions", "recorded"])  # fmt: skip
    assert r.exit_code != 0 and "trained on the actions 'latent'" in r.output + str(r.exception)


def test_saved_keys_name_the_stream_after_recorded_actions(lam_run: dict[str, str]) -> None:
    r = runner.invoke(
        app, ["eval-actions", "--model", lam_run["lam"], "--data", lam_run["data"], "--save-keys"]
    )
    assert r.exit_code == 0, r.output
    saved = json.loads(Path(lam_run["lam"], "action_map.json").read_text())
    assert len(saved["codes"]) == 5 and set(saved["codes"].values()) == set(NAMES)
    runner.invoke(app, ["data", "label-actions", lam_run["data"], "--model", lam_run["lam"]])
    spec, _ = read_stream(EpisodeStore.open(lam_run["data"]), "latent")
    assert set(NAMES) <= set(spec["names"])


def test_merged_stream_speaks_the_recorded_actions(lam_run: dict[str, str]) -> None:
    """--merge writes every code as the recorded action it most often goes with: the stream has the
    recorded action space and agrees with the recorded actions exactly as often as the many-to-one map."""
    r = runner.invoke(app, ["data", "label-actions", lam_run["data"], "--model", lam_run["lam"], "--merge"])
    assert r.exit_code != 0 and "--save-keys" in r.output + str(r.exception)  # no fitted keys yet
    r = runner.invoke(app, ["eval-actions", "--model", lam_run["lam"], "--data", lam_run["data"], "--json",
                            "--save-keys"])  # fmt: skip
    assert r.exit_code == 0, r.output
    result = json.loads(r.output.strip().splitlines()[-1])
    r = runner.invoke(app, ["data", "label-actions", lam_run["data"], "--model", lam_run["lam"], "--merge",
                            "--name", "named"])  # fmt: skip
    assert r.exit_code == 0, r.output
    store = EpisodeStore.open(lam_run["data"])
    spec, act = read_stream(store, "named")
    assert spec["n"] == 5 and spec["names"] == NAMES and len(spec["merged"]) == 8
    assert all(a[0] == 0 for a in act)
    rec = [store[i].act for i in range(len(store))]
    hit = np.concatenate([a[1:] == r_[1:] for a, r_ in zip(act, rec)])
    assert hit.mean() == pytest.approx(result["accuracy_many_to_one"], abs=1e-3)
    # scored again, the saved maps are applied as they are (here on the store they were fitted on)
    r = runner.invoke(app, ["eval-actions", "--model", lam_run["lam"], "--data", lam_run["data"], "--json"])
    again = json.loads(r.output.strip().splitlines()[-1])
    assert again["accuracy_saved_merged_map"] == result["accuracy_many_to_one"]
    assert again["accuracy_saved_map"] == result["accuracy_one_to_one"]


def test_interrupted_labelling_leaves_the_store_as_it_was(
    lam_run: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EpisodeStore.open(lam_run["data"])
    write_stream(
        store, "latent", {"type": "discrete", "n": 2}, [np.zeros(n, np.int64) for n in store.lengths]
    )
    before = {p: os.path.getsize(os.path.join(r, p)) for r, _, fs in os.walk(lam_run["data"]) for p in fs}

    def killed(*args: object, **kw: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", killed)
    r = runner.invoke(app, ["data", "label-actions", lam_run["data"], "--model", lam_run["lam"]])
    assert r.exit_code != 0
    after = {p: os.path.getsize(os.path.join(r, p)) for r, _, fs in os.walk(lam_run["data"]) for p in fs}
    assert after == before  # no temp file left, the old stream untouched
    spec, _ = read_stream(EpisodeStore.open(lam_run["data"]), "latent")
    assert spec["n"] == 2


def test_a_stream_refuses_a_store_that_changed(tmp_path: Path) -> None:
    store = _store(tmp_path / "data", n_eps=2, length=6)
    write_stream(store, "latent", {"type": "discrete", "n": 3}, [np.ones(6, np.int64)] * 2)
    assert list_streams(store) == ["latent"]
    store.append(Episode.from_frames(store[0].obs, act=store[0].act, seed=99))
    with pytest.raises(ReverieError, match=r"labels 2 episodes \(12 frames\).*now holds 3 \(18 frames\)"):
        read_stream(store, "latent")
    with pytest.raises(ReverieError, match="has no action stream 'other'"):
        read_stream(store, "other")
    with pytest.raises(ReverieError, match="bad action stream name"):
        write_stream(store, "recorded", {"type": "discrete", "n": 3}, [])


def test_labelling_at_another_size_names_both_sizes(lam_run: dict[str, str], tmp_path: Path) -> None:
    _store(tmp_path / "big", n_eps=1, length=8, size=48)
    r = runner.invoke(app, ["data", "label-actions", str(tmp_path / "big"), "--model", lam_run["lam"]])
    assert r.exit_code != 0 and r.exception is not None
    assert "32x32" in str(r.exception) and "48x48" in str(r.exception)


def test_training_refuses_a_short_store_and_an_autoencoder_of_another_size(tmp_path: Path) -> None:
    _store(tmp_path / "short", n_eps=2, length=10)
    ae = _ae_run(tmp_path / "ae")
    args = [
        "train",
        "latent-actions",
        "--autoencoder",
        ae,
        "--out",
        str(tmp_path / "x"),
        "--steps",
        "1",
        *SMALL,
    ]
    r = runner.invoke(app, [*args, "--data", str(tmp_path / "short")])
    assert r.exit_code != 0 and "holds 20 frames in 2 episodes: 18 steps" in str(r.exception)
    _store(tmp_path / "wide", n_eps=4, length=24, size=48)
    r = runner.invoke(app, [*args, "--data", str(tmp_path / "wide")])
    assert r.exit_code != 0 and "32x32" in str(r.exception) and "48x48" in str(r.exception)


@pytest.mark.slow
def test_video_with_its_actions_thrown_away_becomes_a_trainable_world(tmp_path: Path) -> None:
    """A clip the project makes itself: Dungeon recorded, written to MP4 through PyAV (the actions are
    lost), then import-video -> train autoencoder -> train latent-actions -> label-actions -> train
    dynamics on the latent actions."""
    from reverie.data.video import write_mp4

    rec = tmp_path / "rec"
    r = runner.invoke(app, ["record", "--world", "reverie/Dungeon-v0", "--episodes", "2", "--steps", "60",
                            "--size", "32x32", "--seed", "7", "--workers", "1", "-q", "--out", str(rec)])  # fmt: skip
    assert r.exit_code == 0, r.output
    store = EpisodeStore.open(rec)
    clips = []
    for i in range(len(store)):
        clips.append(str(tmp_path / f"clip{i}.mp4"))
        write_mp4(store[i].obs, clips[-1], store.fps, scale=1)
    data, ae, lam, dyn = (str(tmp_path / n) for n in ("clips", "ae", "lam", "dyn"))
    r = runner.invoke(app, ["import-video", *clips, "--size", "32x32", "--out", data])
    assert r.exit_code == 0, r.output
    assert EpisodeStore.open(data).action_spec == {"type": "none"}
    small = ["--set", "threads=1", "--set", "batch_size=8", "--set", "val_fraction=0", "--preset", "tiny"]
    steps = ["--steps", "4"]
    r = runner.invoke(app, ["train", "autoencoder", "--data", data, "--out", ae, *steps, *small])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["train", "latent-actions", "--data", data, "--autoencoder", ae, "--out", lam,
                            *steps, *small, "--set", "model.warmup=2"])  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["data", "label-actions", data, "--model", lam])
    assert r.exit_code == 0, r.output
    spec, act = read_stream(EpisodeStore.open(data), "latent")
    assert spec["n"] == 8 and sum(len(a) for a in act) == 120
    r = runner.invoke(app, ["train", "dynamics", "--data", data, "--autoencoder", ae, "--out", dyn,
                            "--actions", "latent", "--window", "3", *steps, *small])  # fmt: skip
    assert r.exit_code == 0, r.output
    from reverie.models.world_model import load_world_model

    assert load_world_model(dyn).spec["n"] == 8
