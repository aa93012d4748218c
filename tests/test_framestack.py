"""The frame-stack dynamics candidate: its network contract, its rollout, and that it learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reverie.errors import ReverieError
from reverie.models.dynamics import make_rollout
from reverie.models.framestack import FrameStack, FrameStackConfig, preset
from reverie.models.framestack_rollout import FrameStackRollout
from reverie.models.sampler import SamplerConfig, SessionContext


def make(seed: int = 0, **kw) -> FrameStack:
    """A conv-tiny model with every weight random (zero-initialised layers would hide the inputs)."""
    torch.manual_seed(seed)
    m = FrameStack(preset("conv-tiny", latent_channels=4, **kw))
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m.eval()


def inputs(B: int = 2, K: int = 4, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(B, 4, 6, 6, generator=g),
        torch.rand(B, generator=g),
        torch.randn(B, K, 4, 6, 6, generator=g),
        torch.rand(B, generator=g) * 0.5,
        torch.ones(B, K, dtype=torch.bool),
        torch.randint(0, 9, (B, K + 1), generator=g),
        torch.randn(B, 384, generator=g),
    )


def test_untrained_output_is_zero_and_shapes_hold() -> None:
    m = FrameStack(preset("conv-tiny", latent_channels=4))
    out = m(*inputs())
    assert out.shape == (2, 4, 6, 6) and torch.equal(out, torch.zeros_like(out))


def test_invalid_context_slots_are_ignored_and_valid_ones_matter() -> None:
    m = make()
    x, t, ctx, lv, valid, act, text = inputs()
    valid[:, :2] = False
    with torch.no_grad():
        base = m(x, t, ctx, lv, valid, act, text)
        other = ctx.clone()
        other[:, :2] = torch.randn_like(other[:, :2])  # change only the invalid slots
        assert torch.allclose(m(x, t, other, lv, valid, act, text), base, atol=1e-5)
        other[:, 3] += 1.0  # a valid slot
        assert not torch.allclose(m(x, t, other, lv, valid, act, text), base, atol=1e-3)
        act2 = act.clone()
        act2[:, -1] = (act2[:, -1] + 1) % 9  # the new frame's action
        assert not torch.allclose(m(x, t, ctx, lv, valid, act2, text), base, atol=1e-3)


def test_odd_grids_and_bad_configs() -> None:
    m = make()
    _, t, _, lv, valid, act, text = inputs()
    out = m(torch.randn(2, 4, 5, 7), t, torch.randn(2, 4, 4, 5, 7), lv, valid, act, text)
    assert out.shape == (2, 4, 5, 7)
    with pytest.raises(ReverieError, match="accepted"):
        FrameStackConfig.from_dict({"width": 32, "depth": 3})
    with pytest.raises(ReverieError):
        FrameStackConfig(width=30)


def _play(model: FrameStack, rows: list[int], frames: int = 5) -> torch.Tensor:
    """Rows with their own seeds and contexts, stepped together: (B, frames, C, h, w)."""
    r = FrameStackRollout(model, SamplerConfig(steps=2, context_noise=0.1))
    gens = [torch.Generator().manual_seed(s) for s in rows]
    sessions = [
        SessionContext(
            torch.randn(3, 4, 6, 6, generator=torch.Generator().manual_seed(100 + s)), torch.tensor([0, 1, 2])
        )
        for s in rows
    ]
    r.rebuild(sessions, gens)
    out = [r.step(torch.tensor([(s + i) % 9 for s in rows]), gens) for i in range(frames)]
    return torch.stack(out, 1)


def test_rollout_batched_equals_unbatched_and_seeds_reproduce() -> None:
    m = make()
    both = _play(m, [3, 4])
    for i, s in enumerate((3, 4)):
        assert torch.allclose(both[i], _play(m, [s])[0], atol=1e-4)
    assert torch.equal(_play(m, [3]), _play(m, [3]))
    assert not torch.allclose(_play(m, [3]), _play(m, [5]))


def test_make_rollout_picks_the_family_and_keeps_the_window() -> None:
    m = make()
    r = make_rollout(m, SamplerConfig(steps=1))
    assert isinstance(r, FrameStackRollout) and r.max_context == 4
    g = torch.Generator().manual_seed(0)
    r.reset(None, batch_size=1, latent_shape=(4, 6, 6))  # from nothing: every slot invalid
    for i in range(7):
        z = r.step(torch.tensor([i % 9]), g)
        assert z.shape == (1, 4, 6, 6) and torch.isfinite(z).all()
    assert r.frames == 7 and len(r.session_context(0).z) == 4  # a sliding window of K frames
    with pytest.raises(ReverieError, match="reset"):
        FrameStackRollout(m).step(None)


@pytest.mark.slow  # 35 s on one core: `make test-all` runs it
def test_conv_tiny_overfits_and_beats_copy_last_frame() -> None:
    """The same bar as the DiT's overfit test, on the same moving-blob latents (~20 s on one core)."""
    from test_dynamics_train import tiny_task, train_tiny

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from reverie.models.flow import FlowConfig

        flow = FlowConfig(p_play=0.7)  # 30% of samples see a shorter context, as evaluate() gives it
        task = tiny_task(model_overrides={"width": 32, "cond_dim": 64}, preset_name="conv-tiny", flow=flow)
        model, losses = train_tiny(task, steps=500, lr=3e-3)
        assert np.mean(losses[-50:]) < np.mean(losses[:20]) / 4
        model.eval()
        m = task.evaluate(model)  # rollouts from 2 of the 4 context frames
        assert m["rollout_mse"] < m["copy_last_rollout_mse"], m
        batch = task._eval_windows()
        z = batch["z"]
        nxt = task.rollout(model, batch, context=4)[:, 0]  # the next frame from a full context
        assert float((nxt - z[:, 4]).pow(2).mean()) < 0.8 * float((z[:, 3] - z[:, 4]).pow(2).mean())
    finally:
        torch.set_num_threads(threads)


def test_trains_from_the_cli_and_plays_in_the_engine(tmp_path) -> None:
    """`reverie train dynamics --preset conv-tiny` -> a run the engine, generation and export all take."""
    from test_dynamics_train import _store
    from typer.testing import CliRunner

    from reverie.cli import app
    from reverie.engine.model_backend import ModelBackend
    from reverie.models.autoencoder import preset_config
    from reverie.models.dynamics import load_dynamics
    from reverie.train.autoencoder_task import AutoencoderTask
    from reverie.train.config import TrainConfig
    from reverie.train.loop import train

    _store(tmp_path / "data", n_eps=2, length=10)
    cfg = TrainConfig(steps=1, batch_size=2, device="cpu", threads=1, val_fraction=0.0)
    train(
        AutoencoderTask.from_store(str(tmp_path / "data"), preset_config("tiny"), cfg), cfg, tmp_path / "ae"
    )
    run = tmp_path / "conv"
    args = f"train dynamics --data {tmp_path / 'data'} --autoencoder {tmp_path / 'ae'} --out {run}"
    args += " --preset conv-tiny --window 5 --steps 2 --set batch_size=2 --set threads=1 --set val_fraction=0"
    res = CliRunner().invoke(app, [*args.split(), "--set", "cpu_minutes=5"])
    assert res.exit_code == 0, res.output
    assert isinstance(load_dynamics(str(run)), FrameStack)
    assert "Frame-stack" in (run / "MODEL_CARD.md").read_text()
    b = ModelBackend(str(run))
    img = np.zeros((32, 32, 3), np.uint8)
    assert b.reset(1, 0, image=img).frame.shape == (32, 32, 3)
    assert b.reset(2, 1, prompt="a red square").frame.shape == (32, 32, 3)
    outs = b.step([1, 2], [1, 2])
    assert len(outs) == 2 and all(o.frame.dtype == np.uint8 for o in outs)


def test_add_and_keep_rows_leave_the_running_rows_alone() -> None:
    m = make()
    cfg = SamplerConfig(steps=2, context_noise=0.1)
    a = FrameStackRollout(m, cfg)
    first = SessionContext(
        torch.randn(3, 4, 6, 6, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1, 2])
    )
    a.rebuild([first], [torch.Generator().manual_seed(2)])
    g = torch.Generator().manual_seed(3)
    for i in range(5):
        a.step(torch.tensor([i % 9]), [g])
    alone, rebuilt = a.fork(), a.fork()
    joiner = SessionContext(
        torch.randn(2, 4, 6, 6, generator=torch.Generator().manual_seed(4)), torch.tensor([3, 4])
    )
    a.add_rows([joiner], [torch.Generator().manual_seed(5)])
    rebuilt.rebuild(
        [rebuilt.session_context(0), joiner],
        [torch.Generator().manual_seed(6), torch.Generator().manual_seed(5)],
    )
    state = g.get_state()
    ga, gr = (
        [g, torch.Generator().manual_seed(7)],
        [torch.Generator().manual_seed(6), torch.Generator().manual_seed(7)],
    )
    g1 = torch.Generator().set_state(state)
    for i in range(4):
        act = torch.tensor([i % 9, 3])
        za, zr, z1 = a.step(act, ga), rebuilt.step(act, gr), alone.step(act[:1], [g1])
        assert torch.allclose(za[1], zr[1], atol=1e-5) and torch.allclose(za[0], z1[0], atol=1e-5)
    a.keep_rows([1])
    assert a.B == 1 and a.step(torch.tensor([2]), ga[1:]).shape == (1, 4, 6, 6)
