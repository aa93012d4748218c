"""Training the dynamics model: it overfits a tiny clip set, and the task runs end to end on a store."""

from __future__ import annotations

import os
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from reverie.errors import ReverieError
from reverie.train.dynamics_task import DynamicsTask, LatentClips

# noop, up, down, left, right, in latent cells per step
MOVES = torch.tensor([[0, 0], [-2, 0], [2, 0], [0, -2], [0, 2]], dtype=torch.float32)


def blob_clips(n_eps: int, length: int, C: int = 4, size: int = 6, seed: int = 0) -> LatentClips:
    """Smooth latents: a Gaussian blob that the action moves, so the future depends on the action."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    zs, acts = [], []
    for _ in range(n_eps):
        color = 1.5 * torch.randn(C, 1, 1, generator=g).sign()
        pos = torch.randint(1, size - 1, (2,), generator=g).float()
        act = torch.randint(0, 5, (length,), generator=g)
        act[0] = 0
        frames = []
        for i in range(length):
            pos = (pos + MOVES[act[i]]).clamp(0, size - 1)
            frames.append(color * torch.exp(-((yy - pos[0]) ** 2 + (xx - pos[1]) ** 2)))
        zs.append(torch.stack(frames))  # (T, C, h, w)
        acts.append(act)
    z = torch.cat(zs)
    return LatentClips(
        z, torch.cat(acts), torch.zeros(len(z), dtype=torch.long), ["a blob"], [length] * n_eps
    )


def tiny_task(preset_name: str = "tiny", **kw) -> DynamicsTask:
    args = {"window": 5, "batch_size": 8, "model_overrides": {"dim": 64, "depth": 2, "heads": 2}} | kw
    return DynamicsTask.from_latents(
        blob_clips(8, 10), None, {"type": "discrete", "n": 5}, preset_name, **args
    )


def test_batches_are_deterministic_in_seed_step_rank() -> None:
    task = tiny_task()
    a, b = task.batch(3, 0, 1), task.batch(3, 0, 1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["z"], task.batch(4, 0, 1)["z"])
    assert not torch.equal(a["z"], task.batch(3, 1, 2)["z"])
    assert a["z"].shape == (8, 5, 4, 6, 6) and a["act"].shape == (8, 5) and a["text"].shape == (8, 5, 384)
    assert task.frames_per_batch() == 40
    assert task.model_config()["max_context"] == 4 and task.model_config()["num_actions"] == 5


def test_windows_never_cross_episodes() -> None:
    task = tiny_task(window=10)
    assert len(task.starts) == 8  # one window per 10-frame episode
    with pytest.raises(ReverieError, match="shorter"):
        tiny_task(window=11)


@pytest.mark.slow  # over a minute on one core: `make test-all` runs it
def test_tiny_model_overfits_and_beats_copy_last_frame() -> None:
    """Loss falls at least 4x in 400 steps (~40 s on one core), next-frame MSE is under 0.8x that of
    copying the last frame, and a 5-frame rollout beats copying too."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: one thread is faster and steadier on a shared machine
    try:
        _overfit()
    finally:
        torch.set_num_threads(threads)


def train_tiny(
    task: DynamicsTask, steps: int, lr: float, clip: float | None = None
) -> tuple[torch.nn.Module, list[float]]:
    """Train task's model from seed 0 with AdamW and a one-cycle schedule: (model, losses per step)."""
    torch.manual_seed(0)
    model = task.build_model()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    losses = []
    for step in range(steps):
        torch.manual_seed(step)
        loss, metrics = task.loss(model, task.batch(step, 0, 1))
        opt.zero_grad()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        sched.step()
        losses.append(metrics["loss"])
    return model, losses


def _overfit() -> None:
    task = tiny_task()
    model, losses = train_tiny(task, steps=400, lr=4e-3, clip=1.0)
    first, last = np.mean(losses[:20]), np.mean(losses[-50:])
    assert last < first / 4, (first, last)
    m = task.evaluate(model.eval())
    assert m["next_mse"] < 0.8 * m["copy_last_next_mse"], m
    assert m["rollout_mse"] < m["copy_last_rollout_mse"], m


def _store(path: Path, n_eps: int = 3, length: int = 12, size: int = 32) -> None:
    from reverie.data.episode import Episode
    from reverie.data.store import EpisodeStore

    store = EpisodeStore.create(
        path, world="test-squares", action_spec={"type": "discrete", "n": 3}, size=f"{size}x{size}", fps=30.0
    )
    rng = np.random.default_rng(0)
    for e in range(n_eps):
        obs = np.zeros((length, size, size, 3), np.uint8)
        act = rng.integers(0, 3, length)
        act[0] = 0
        x = 8
        for i in range(length):
            x = int(np.clip(x + (act[i] - 1) * 3, 0, size - 8))
            obs[i, 10:18, x : x + 8] = (255, 80 * e, 40)
        caps = ["a red square"] * (length // 2) + [""] * (length - length // 2)
        store.append(Episode.from_frames(obs, act=act.astype(np.int64), captions=caps, seed=e))


def test_task_from_store_trains_loads_and_samples(tmp_path: Path) -> None:
    """Store -> autoencoder run -> DynamicsTask -> loop.train -> load_dynamics -> Rollout."""
    from reverie.models.autoencoder import preset_config
    from reverie.models.dynamics import load_dynamics
    from reverie.models.sampler import Rollout, SamplerConfig
    from reverie.train.autoencoder_task import AutoencoderTask
    from reverie.train.config import TrainConfig
    from reverie.train.loop import train

    _store(tmp_path / "data")
    cfg = TrainConfig(
        steps=2, batch_size=4, device="cpu", threads=1, sample_every=1, log_every=1, val_fraction=0.34
    )
    ae_task = AutoencoderTask.from_store(str(tmp_path / "data"), preset_config("tiny"), cfg)
    train(ae_task, cfg, tmp_path / "ae")

    task = DynamicsTask(
        str(tmp_path / "data"),
        str(tmp_path / "ae"),
        "tiny",
        seed=1,
        window=4,
        batch_size=2,
        val_fraction=0.34,
    )
    batch = task.batch(0, 0, 1)
    assert batch["z"].shape == (2, 4, 12, 4, 4)
    # Frames without a caption use the null text; captioned frames do not.
    assert batch["text_null"].any() or not batch["text_null"].all()
    assert "dynamics" in task.card() and task.data_config()["width"] == 32
    assert "Context blur" not in task.card()  # the card names the objective the run was trained with
    task.flow = replace(task.flow, context_blur_max=0.5)
    assert "by a weight uniform in [0, 0.5]" in task.card() and "of the play windows" not in task.card()
    task.flow = replace(task.flow, context_blur_p=0.5)
    assert "50% of the play windows" in task.card()
    task.flow = replace(task.flow, context_blur_p=1.0)
    task.flow = replace(task.flow, context_blur_max=0.0)
    train(task, cfg, tmp_path / "dit")

    model = load_dynamics(str(tmp_path / "dit"))
    assert asdict(model.cfg) == task.model_config()
    r = Rollout(model, SamplerConfig(steps=2))
    g = torch.Generator().manual_seed(0)
    r.reset(batch["z"][:, :3], batch["act"][:, :3], batch["text"][:, 2], generator=g)
    z = r.step(batch["act"][:, 3], g)
    assert z.shape == (2, 12, 4, 4) and torch.isfinite(z).all()
    assert set(task.evaluate(model)) >= {"next_mse", "copy_last_next_mse"}

    images: list[np.ndarray] = []

    class Writer:
        def add_image(self, tag: str, img: np.ndarray, step: int, dataformats: str) -> None:
            images.append(img)

    task.log_samples(model, Writer(), 0)  # type: ignore[arg-type]
    # 4 held-out windows, each a real row above a generated row of 4 frames of 32x32.
    assert len(images) == 1 and images[0].shape == (4 * 2 * 32, 4 * 32, 3) and images[0].dtype == np.uint8
    # with dreams, their newest frames too: a row of window - 1 frames per dream
    from reverie.models.critic import Adversary
    from reverie.models.dreams import DreamPool

    task.adversary = Adversary.for_model(task.model_cfg, 1e-3, DreamPool(2, 10, 1, lost_scale=1e3))
    assert task.adversary.dreams is not None
    task.adversary.dreams.propose(model, batch["z"], batch["act"], steps=1, context_noise=0.1)
    task.log_samples(model, Writer(), 1)  # type: ignore[arg-type]
    assert len(images) == 3 and images[2].shape == (2 * 32, 3 * 32, 3)


def test_autoencoder_size_mismatch_names_both_sides(tmp_path: Path) -> None:
    from reverie.checkpoint import save_run
    from reverie.models.autoencoder import Autoencoder, preset_config

    _store(tmp_path / "data", n_eps=2, length=6)
    ae = Autoencoder(preset_config("tiny"))
    run = tmp_path / "ae"
    run.mkdir()
    config = {"kind": "autoencoder", "model": asdict(ae.cfg), "data": {"width": 64, "height": 64}, "step": 0}
    save_run(run, config=config, ema_state=ae.state_dict(), card="", train_tensors={}, train_json={})
    with pytest.raises(ReverieError, match=r"64x64.*32x32"):
        DynamicsTask(str(tmp_path / "data"), str(run), "tiny", window=4)


def test_cli_objective_is_typed_saved_and_guarded_on_resume(tmp_path: Path) -> None:
    """flow.* / sampler.* are checked, saved in config.json, and a resume may not silently change them."""
    import json

    from typer.testing import CliRunner

    from reverie.cli import app
    from reverie.models.autoencoder import preset_config
    from reverie.train.autoencoder_task import AutoencoderTask
    from reverie.train.config import TrainConfig
    from reverie.train.loop import train

    _store(tmp_path / "data", n_eps=2, length=8)
    cfg = TrainConfig(steps=1, batch_size=2, device="cpu", threads=1, val_fraction=0.0)
    train(
        AutoencoderTask.from_store(str(tmp_path / "data"), preset_config("tiny"), cfg), cfg, tmp_path / "ae"
    )
    runner = CliRunner()
    base = ["train", "dynamics", "--data", str(tmp_path / "data"), "--autoencoder", str(tmp_path / "ae")]
    small = ["--set", "batch_size=2", "--set", "threads=1", "--set", "val_fraction=0"]

    bad = runner.invoke(
        app,
        [*base, "--out", str(tmp_path / "x"), "--preset", "tiny", "--window", "4", "--set", "flow.unknown=1"],
    )
    assert bad.exit_code != 0 and "p_play" in str(bad.exception) and not (tmp_path / "x").exists()

    run = str(tmp_path / "dit")
    play_sets = ["--set", "flow.p_play=0.5", "--set", "sampler.context_noise=0.2"]
    ok = runner.invoke(
        app,
        [*base, "--out", run, "--preset", "tiny", "--window", "4", "--steps", "1", *small, *play_sets],
    )
    assert ok.exit_code == 0, ok.output
    saved = json.loads((tmp_path / "dit" / "config.json").read_text())
    assert saved["flow"]["p_play"] == 0.5 and saved["flow"]["context_noise_max"] == 0.5
    assert saved["sampler"]["context_noise"] == 0.2
    from reverie.models.world_model import load_world_model

    assert load_world_model(run).sampler.context_noise == 0.2  # play uses the run's own settings

    changed = runner.invoke(
        app, [*base, "--out", run, "--resume", "--steps", "2", "--set", "flow.p_play=0.9"]
    )
    assert (
        changed.exit_code != 0
        and "p_play" in str(changed.exception)
        and "--allow-config-change" in str(changed.exception)
    )
    assert json.loads((tmp_path / "dit" / "config.json").read_text())["step"] == 1  # nothing trained
    allowed = runner.invoke(
        app,
        [
            *base,
            "--out",
            run,
            "--resume",
            "--steps",
            "2",
            "--set",
            "flow.p_play=0.9",
            "--allow-config-change",
        ],
    )
    assert allowed.exit_code == 0, allowed.output
    assert json.loads((tmp_path / "dit" / "config.json").read_text())["flow"]["p_play"] == 0.9

    # a run saved before a flow key existed resumes: the missing key is its default, not a change
    older = json.loads((tmp_path / "dit" / "config.json").read_text())
    del older["flow"]["p_self"]
    del older["model"][
        "rope_theta"
    ]  # and a model setting at its default: as if added since, as loading gives it
    (tmp_path / "dit" / "config.json").write_text(json.dumps(older))
    resumed = runner.invoke(app, [*base, "--out", run, "--resume", "--steps", "3"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((tmp_path / "dit" / "config.json").read_text())["step"] == 3

    ft = str(tmp_path / "ft")
    tuned = runner.invoke(app, [*base, "--out", ft, "--init", run, "--steps", "1", *small, "--set", "lr=0"])
    assert tuned.exit_code == 0, tuned.output
    from reverie.models.dynamics import load_dynamics

    a, b = load_dynamics(run).state_dict(), load_dynamics(ft).state_dict()
    assert all(torch.allclose(a[k], b[k]) for k in a)  # lr 0: the fine-tune starts from the init weights
    grown = runner.invoke(app, [*base, "--out", str(tmp_path / "grown"), "--init", run, "--steps", "1", *small,
                                "--set", "lr=0", "--set", "model.blur_input=true"])  # fmt: skip
    assert grown.exit_code == 0, grown.output
    assert load_dynamics(str(tmp_path / "grown")).cfg.blur_input
    depth = load_dynamics(run).cfg.depth
    deeper = runner.invoke(app, [*base, "--out", str(tmp_path / "deep"), "--init", run, "--steps", "1", *small,
                                 "--set", "lr=0", "--set", f"model.depth={2 * depth}"])  # fmt: skip
    assert deeper.exit_code == 0, deeper.output
    assert load_dynamics(str(tmp_path / "deep")).cfg.depth == 2 * depth
    grown_blocks = json.loads((tmp_path / "deep" / "config.json").read_text())["data"]["grown_blocks"]
    assert grown_blocks == list(range(1, 2 * depth, 2))  # the init's blocks sit at the even places
    # resumed (it knows its grown blocks from its config) at a real rate but grown_lr_scale=0: the grown
    # blocks stay the identities they started as while the init's blocks learn
    before = load_dynamics(str(tmp_path / "deep"))
    frozen = runner.invoke(app, [*base, "--out", str(tmp_path / "deep"), "--resume", "--steps", "3", "--set",
                                 "lr=1e-2", "--set", "grown_lr_scale=0", "--set", "ema_decay=0"])  # fmt: skip
    assert frozen.exit_code == 0, frozen.output
    after = load_dynamics(str(tmp_path / "deep"))
    assert all(int(torch.count_nonzero(after.blocks[i].ada.weight)) == 0 for i in grown_blocks)
    assert not torch.equal(after.blocks[0].ada.weight, before.blocks[0].ada.weight)
    # runs/default.sh reruns the same command to resume it: the model setting it grew is no change
    on = runner.invoke(app, [*base, "--out", str(tmp_path / "grown"), "--resume", "--allow-config-change",
                             "--steps", "2", *small, "--set", "lr=0", "--set", "model.blur_input=true"])  # fmt: skip
    assert on.exit_code == 0, on.output
    again = runner.invoke(app, [*base, "--out", ft, "--resume", "--steps", "2"])
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "ft" / "config.json").read_text())["data"]["init"] == os.path.abspath(run)
    assert f"Fine-tuned from {os.path.abspath(run)}." in (tmp_path / "ft" / "MODEL_CARD.md").read_text()
    wider = runner.invoke(app, [*base, "--out", str(tmp_path / "w"), "--init", run, "--set", "model.dim=48"])
    assert wider.exit_code != 0 and "only model.blur_input=true may be added" in str(wider.exception)


def test_latents_are_cached_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second run on the same store and autoencoder loads the latents instead of encoding again."""
    from reverie.models.autoencoder import preset_config
    from reverie.train import dynamics_task
    from reverie.train.autoencoder_task import AutoencoderTask
    from reverie.train.config import TrainConfig
    from reverie.train.loop import train

    monkeypatch.setenv("REVERIE_CACHE", str(tmp_path / "cache"))
    _store(tmp_path / "data", n_eps=3, length=8)
    cfg = TrainConfig(steps=1, batch_size=2, device="cpu", threads=1, val_fraction=0.0)
    train(
        AutoencoderTask.from_store(str(tmp_path / "data"), preset_config("tiny"), cfg), cfg, tmp_path / "ae"
    )
    first = DynamicsTask(str(tmp_path / "data"), str(tmp_path / "ae"), "tiny", window=4, val_fraction=0.34)
    assert len(list((tmp_path / "cache" / "latents").glob("*.safetensors"))) == 2  # train and val

    def no_encoding(*a, **k):
        raise AssertionError("encoded again")

    monkeypatch.setattr(dynamics_task, "encode_episodes", no_encoding)
    again = DynamicsTask(str(tmp_path / "data"), str(tmp_path / "ae"), "tiny", window=4, val_fraction=0.34)
    assert torch.equal(first.train_clips.z, again.train_clips.z)
    assert torch.equal(first.train_clips.act, again.train_clips.act)
    assert first.train_clips.captions == again.train_clips.captions
    assert first.train_clips.lengths == again.train_clips.lengths
    # another autoencoder gives other latents: not served from this cache
    (tmp_path / "cache" / "latents").joinpath("junk.tmp1").write_text("")
    train(
        AutoencoderTask.from_store(str(tmp_path / "data"), preset_config("tiny"), cfg), cfg, tmp_path / "ae2"
    )
    with pytest.raises(AssertionError, match="encoded again"):
        DynamicsTask(str(tmp_path / "data"), str(tmp_path / "ae2"), "tiny", window=4, val_fraction=0.34)


def test_under_torchrun_only_local_rank_0_encodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Local rank 1 waits for the cache entry local rank 0 writes and loads it, encoding nothing."""
    import threading

    from reverie.data.store import EpisodeStore
    from reverie.models.autoencoder import load_autoencoder, preset_config
    from reverie.train import dynamics_task
    from reverie.train.autoencoder_task import AutoencoderTask
    from reverie.train.config import TrainConfig
    from reverie.train.loop import train

    monkeypatch.setenv("REVERIE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(dynamics_task, "CACHE_POLL_S", 0.02)
    _store(tmp_path / "data", n_eps=2, length=8)
    cfg = TrainConfig(steps=1, batch_size=2, device="cpu", threads=1, val_fraction=0.0)
    train(
        AutoencoderTask.from_store(str(tmp_path / "data"), preset_config("tiny"), cfg), cfg, tmp_path / "ae"
    )
    store, ae = EpisodeStore.open(tmp_path / "data"), load_autoencoder(tmp_path / "ae")
    encoded: list[str] = []
    real_encode = dynamics_task.encode_episodes

    def counting(*a, **k):  # type: ignore[no-untyped-def]
        encoded.append(threading.current_thread().name)
        return real_encode(*a, **k)

    monkeypatch.setattr(dynamics_task, "encode_episodes", counting)
    got: list[LatentClips] = []

    def rank(r: int) -> LatentClips:
        return dynamics_task.encode_episodes_cached(
            store, [0, 1], ae, str(tmp_path / "ae"), "cpu", "train", r
        )

    waiter = threading.Thread(target=lambda: got.append(rank(1)), name="rank1", daemon=True)
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive() and not encoded  # nothing to load yet: it waits, and does not encode
    first = rank(0)
    waiter.join(10)
    assert not waiter.is_alive() and encoded == ["MainThread"]
    assert torch.equal(got[0].z, first.z) and got[0].lengths == first.lengths == [8, 8]
    # a damaged entry is never loaded: rank 1 waits until rank 0 has written it again
    entry = next((tmp_path / "cache" / "latents").glob("*.safetensors"))
    entry.write_bytes(b"not a safetensors file")
    waiter = threading.Thread(target=lambda: got.append(rank(1)), name="rank1", daemon=True)
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive() and entry.read_bytes() == b"not a safetensors file"
    assert torch.equal(rank(0).z, first.z)
    waiter.join(10)
    assert not waiter.is_alive() and encoded == ["MainThread"] * 2 and torch.equal(got[1].z, first.z)


def test_another_action_space_is_refused_naming_the_change(tmp_path: Path) -> None:
    """A run (or --init) built for 5 actions does not silently take data with 6."""
    from reverie.train.config import TrainConfig
    from reverie.train.loop import train

    cfg = TrainConfig(steps=2, batch_size=4, warmup_steps=1, threads=1, precision="fp32", sample_every=100,
                      checkpoint_minutes=100.0)  # fmt: skip

    def six(init: str | None = None) -> DynamicsTask:
        t = DynamicsTask.from_latents(blob_clips(8, 10), None, {"type": "discrete", "n": 6}, "tiny", window=5,
                                      batch_size=4, model_overrides={"dim": 32, "depth": 1, "heads": 2})  # fmt: skip
        t.init = init
        return t

    run = train(
        tiny_task(batch_size=4, model_overrides={"dim": 32, "depth": 1, "heads": 2}), cfg, tmp_path / "a"
    )
    with pytest.raises(ReverieError, match=r"differs .*\(num_actions: 5 -> 6\)"):
        train(six(), cfg, run, resume=True)
    with pytest.raises(ReverieError, match=r"--init .*\(num_actions: 5 -> 6\)"):
        train(six(str(run)), cfg, tmp_path / "b")


def test_init_may_grow_a_blur_input_and_nothing_else(tmp_path: Path) -> None:
    """--init from a model without the blur input, asking for one, starts from its weights (the new
    embedding at zero); the reverse is refused."""
    from reverie.train.config import TrainConfig
    from reverie.train.loop import train

    cfg = TrainConfig(steps=1, batch_size=4, warmup_steps=1, threads=1, precision="fp32", sample_every=100,
                      checkpoint_minutes=100.0, lr=0.0)  # fmt: skip
    small = {"dim": 32, "depth": 1, "heads": 2}
    run = train(tiny_task(batch_size=4, model_overrides=small), cfg, tmp_path / "a")

    def task(blur: bool, init: str) -> DynamicsTask:
        t = tiny_task(batch_size=4, model_overrides=small | {"blur_input": blur})
        t.init = init
        return t

    grown = task(True, str(run))
    model = grown.build_model()
    plain = task(False, str(run)).build_model()
    for k, v in plain.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    assert int(torch.count_nonzero(model.blur_embed[-1].weight)) == 0
    grown.flow = replace(grown.flow, context_blur_max=1.0)
    back = train(grown, cfg, tmp_path / "b")
    assert "uniform in [0, 1.0], and the network is told the weight" in (back / "MODEL_CARD.md").read_text()
    with pytest.raises(ReverieError, match=r"--init .*blur_input: True -> False"):
        task(False, str(back)).build_model()


def test_init_may_deepen_and_starts_as_the_model_it_grew_from(tmp_path: Path) -> None:
    """--init with model.depth raised to a multiple lays the init's blocks every other place and leaves
    the ones between as adaLN-Zero identities: the deeper network predicts exactly what the init did."""
    from reverie.train.config import TrainConfig
    from reverie.train.loop import train

    cfg = TrainConfig(steps=3, batch_size=4, warmup_steps=1, threads=1, precision="fp32", sample_every=100,
                      checkpoint_minutes=100.0, lr=1e-2)  # fmt: skip
    small = {"dim": 32, "depth": 2, "heads": 2}
    run = train(tiny_task(batch_size=4, model_overrides=small), cfg, tmp_path / "a")

    def task(depth: int) -> DynamicsTask:
        t = tiny_task(batch_size=4, model_overrides=small | {"depth": depth})
        t.init = str(run)
        return t

    plain, deep = task(2).build_model().eval(), task(4).build_model().eval()
    assert len(deep.blocks) == 4
    assert torch.equal(deep.blocks[2].attn.qkv.weight, plain.blocks[1].attn.qkv.weight)
    assert int(torch.count_nonzero(deep.blocks[1].ada.weight)) == 0  # a new block: the identity
    g = torch.Generator().manual_seed(0)
    z, t = torch.randn(2, 3, 4, 6, 6, generator=g), torch.rand(2, 3, generator=g)
    act = torch.randint(0, 5, (2, 3), generator=g)
    with torch.no_grad():
        torch.testing.assert_close(deep(z, t, act), plain(z, t, act))
    for depth in (3, 1):  # not a multiple: refused, naming the change
        with pytest.raises(ReverieError, match=rf"depth: 2 -> {depth}.*multiple of 2"):
            task(depth).build_model()
