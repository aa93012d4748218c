"""Eval runs the model as the player gets it (docs/measures.md, "Play settings"): the same frames as the
engine for the same seed and actions, the model's own sampler settings unless overridden, and a
model and a world that do not match are refused naming both sides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_eval_rollout import SIZE, WORLD, make_tiny_runs

from reverie.errors import ReverieError
from reverie.eval.rollout import ModelPredictor, collect_real


def _lively(run: Path) -> None:
    """Untrained output layers start at zero: give the weights values so frames depend on everything."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = run / "model.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()  # ties the weights to their config.json: kept as saved
    state = load_file(str(path))
    gen = torch.Generator().manual_seed(0)
    lively = {k: v + 0.2 * torch.randn(v.shape, generator=gen) for k, v in state.items()}
    save_file(lively, str(path), metadata=meta)


@pytest.mark.parametrize("precision", ["fp32", "auto"])
def test_eval_and_the_engine_give_the_same_frames(tmp_path: Path, precision: str) -> None:
    from reverie.engine.backends import START_WALK
    from reverie.engine.model_backend import ModelBackend, ModelConfig

    real = collect_real(WORLD, SIZE, [4242, 4243], START_WALK + 7)
    run = make_tiny_runs(tmp_path, int(real.action_spec["n"]), sampler={"steps": 2, "context_noise": 0.1})
    _lively(run)
    engine = ModelBackend(str(run), ModelConfig(precision=precision))
    starts = [engine.reset(i, s).frame for i, s in enumerate(real.seeds)]
    # the player's start is the seed's explore walk: eval's real episode of the same seed
    assert all(np.array_equal(a, b) for a, b in zip(starts, real.obs[:, START_WALK - 1], strict=True))
    later = range(START_WALK, START_WALK + 7)
    played = np.stack(
        [np.stack([o.frame for o in engine.step([0, 1], list(real.act[:, t]))]) for t in later], 1
    )
    pred = ModelPredictor(str(run), precision=precision)
    assert (pred.sampler.steps, pred.sampler.context_noise) == (2, 0.1)  # the model's own play settings
    pred.reset(
        real.obs[:, :START_WALK], real.act[:, :START_WALK], real.seeds, real.caption_at(START_WALK - 1)
    )
    measured = np.stack([pred.step(real.act[:, t]) for t in later], 1)
    assert np.array_equal(played, measured)


def test_a_real_start_plays_with_the_worlds_caption_when_told_to(tmp_path: Path) -> None:
    from reverie.engine.backends import START_WALK
    from reverie.engine.model_backend import ModelBackend, ModelConfig

    real = collect_real(WORLD, SIZE, [4242], START_WALK + 4)
    run = make_tiny_runs(tmp_path, int(real.action_spec["n"]), sampler={"steps": 1, "context_noise": 0.1})
    _lively(run)
    later = range(START_WALK, START_WALK + 4)
    frames = {}
    for told in (True, False):
        engine = ModelBackend(str(run), ModelConfig(precision="fp32", start_caption=told, walk_process=False))
        out = engine.reset(0, real.seeds[0])
        assert out.caption == (real.caption_at(START_WALK - 1)[0] if told else None)  # the page shows it
        assert not told or (isinstance(out.caption, str) and out.caption)
        played = np.stack([engine.step([0], [real.act[0, t]])[0].frame for t in later])
        pred = ModelPredictor(str(run), precision="fp32", start_caption=told)
        pred.reset(
            real.obs[:, :START_WALK], real.act[:, :START_WALK], real.seeds, real.caption_at(START_WALK - 1)
        )
        measured = np.stack([pred.step(real.act[:, t])[0] for t in later])
        assert np.array_equal(played, measured)  # eval follows the engine either way
        frames[told] = played
    assert not np.array_equal(frames[True], frames[False])  # the caption reaches the model


def test_a_context_blur_override_reaches_the_engine_and_eval_alike(tmp_path: Path) -> None:
    """`--context-blur` (eval) and ModelConfig.context_blur (engine) tell a blur-input model the same
    level: the same frames from both, and other frames than at the model's own level (0)."""
    from reverie.engine.backends import START_WALK
    from reverie.engine.model_backend import ModelBackend, ModelConfig

    real = collect_real(WORLD, SIZE, [4242], START_WALK + 4)
    run = make_tiny_runs(tmp_path, int(real.action_spec["n"]), sampler={"steps": 1}, blur_input=True)
    _lively(run)
    later = range(START_WALK, START_WALK + 4)
    frames = {}
    for blur in (0.6, None):
        engine = ModelBackend(str(run), ModelConfig(precision="fp32", context_blur=blur, walk_process=False))
        engine.reset(0, real.seeds[0])
        played = np.stack([engine.step([0], [real.act[0, t]])[0].frame for t in later])
        pred = ModelPredictor(str(run), precision="fp32", context_blur=blur)
        assert pred.sampler.context_blur == (blur or 0.0)
        pred.reset(
            real.obs[:, :START_WALK], real.act[:, :START_WALK], real.seeds, real.caption_at(START_WALK - 1)
        )
        assert np.array_equal(played, np.stack([pred.step(real.act[:, t])[0] for t in later]))
        frames[blur] = played
    assert not np.array_equal(frames[0.6], frames[None])
    # a start image is a given frame (told sharp); a first frame dreamed from a prompt is the model's own
    engine.reset(1, 7, image=real.obs[0, 0])
    engine.reset(2, 7, prompt="a dark room")
    made = [engine._slots[sid].ctx.made for sid in (1, 2)]
    assert [m.tolist() if m is not None else None for m in made] == [[False], [True]]
    with pytest.raises(ReverieError, match="not trained with a blur input"):
        ModelPredictor(str(make_tiny_runs(tmp_path / "plain", 9)), precision="fp32", context_blur=0.6)


def test_overrides_replace_only_what_they_name(tmp_path: Path) -> None:
    run = make_tiny_runs(tmp_path, 9, sampler={"steps": 3, "context_noise": 0.1})
    pred = ModelPredictor(str(run), steps=1, precision="fp32")
    assert (pred.sampler.steps, pred.sampler.context_noise) == (1, 0.1)
    assert pred.wm.dtype == torch.float32


def test_a_model_and_a_world_that_do_not_match_are_refused(tmp_path: Path) -> None:
    from reverie.eval.config import EvalConfig, setup

    run = str(make_tiny_runs(tmp_path / "a", 5))  # Dungeon has 9 actions
    with pytest.raises(ReverieError, match=r"5 discrete actions.*reverie/Dungeon-v0 with 9 discrete"):
        setup(EvalConfig(model=run, allow_overlap=True))
    ok = str(make_tiny_runs(tmp_path / "b", 9))
    with pytest.raises(ReverieError, match=r"32x32 frames, not the --size 64x64"):
        setup(EvalConfig(model=ok, size="64x64"))
    with pytest.raises(ReverieError, match=r"trained on reverie/Dungeon-v0, not the world reverie/Drive-v0"):
        setup(EvalConfig(model=ok, world="reverie/Drive-v0"))


def test_a_model_of_named_latent_actions_plays_the_world_actions_by_name(tmp_path: Path) -> None:
    from reverie.eval.config import EvalConfig, setup

    names = ["noop", "forward", "turn_left", "turn_right", "c4"]  # 5 codes, named by eval-actions --save-keys
    run = make_tiny_runs(tmp_path / "a", 5, names=names, actions="latent")
    _lively(run)
    s = setup(EvalConfig(model=str(run), allow_overlap=True))
    # Dungeon: noop forward back turn_left turn_right strafe_left strafe_right forward_left forward_right
    assert s.act_map == [0, 1, 0, 2, 3, 0, 0, 0, 0]
    assert s.act_map_names is not None and s.act_map_names["turn_left"] == "turn_left"
    assert s.act_map_names["back"] == "noop"  # no code for it: the null action, as an unbound key plays
    real = collect_real(WORLD, SIZE, [7], 8)
    mapped = ModelPredictor(str(run), precision="fp32", act_map=s.act_map)
    direct = ModelPredictor(str(run), precision="fp32")
    for p in (mapped, direct):
        p.reset(real.obs[:, :4], np.zeros((1, 4), np.int64), real.seeds)
    assert np.array_equal(mapped.step(np.array([3])), direct.step(np.array([2])))  # turn_left is code 2
    # Unnamed codes are refused until keys are bound to them, as the player binds them.
    codes = ["noop", "c1", "c2", "c3", "c4"]
    bare = make_tiny_runs(tmp_path / "b", 5, names=codes, actions="latent")
    with pytest.raises(ReverieError, match=r"5 discrete actions"):
        setup(EvalConfig(model=str(bare), allow_overlap=True))
    from reverie.engine.key_binding import write_binding

    write_binding(bare, {"type": "discrete", "n": 5, "names": codes}, {"c3": "forward", "c1": "turn_right"})
    bound = setup(EvalConfig(model=str(bare), allow_overlap=True))
    assert bound.act_map == [0, 3, 0, 0, 1, 0, 0, 0, 0]


def test_report_and_probe_writes_are_atomic_and_make_their_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from reverie.eval.report import write_atomic

    target = tmp_path / "new" / "deeper" / "probe.png"
    write_atomic(str(target), b"png")
    assert target.read_bytes() == b"png"

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(str(tmp_path / "r.html"), b"<!doctype html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]  # nothing half-written left behind
