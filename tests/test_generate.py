"""Offline generation: every mode's shapes, given frames kept exactly, seeds, samples, CLI, errors."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_runs import save_untrained_run
from typer.testing import CliRunner

from reverie.errors import ReverieError
from reverie.generate.actions import frame_actions, parse_actions
from reverie.generate.modes import (
    GenOptions,
    extend,
    fill,
    generate,
    generate_samples,
    interpolate,
    parse_span,
)
from reverie.models.sampler import SamplerConfig
from reverie.models.world_model import WorldModel, load_world_model
from reverie.sizes import Size

SPEC = {
    "type": "discrete",
    "n": 9,
    "names": ["noop", "forward", "back", "turn_left", "turn_right", "strafe_left", "strafe_right",
              "forward_left", "forward_right"],
}  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> str:
    from reverie.checkpoint import save_run
    from reverie.models.autoencoder import PRESETS, Autoencoder

    root = tmp_path_factory.mktemp("gen")
    torch.manual_seed(0)
    ae = Autoencoder(PRESETS["tiny"])
    (root / "ae").mkdir()
    config = {"kind": "autoencoder", "model": asdict(ae.cfg), "data": {"width": 64, "height": 64}, "step": 0}
    save_run(
        root / "ae", config=config, ema_state=ae.state_dict(), card="tiny\n", train_tensors={}, train_json={}
    )
    save_untrained_run(
        str(root / "dit"),
        str(root / "ae"),
        SPEC,
        preset="tiny",
        size=Size(64, 64),
        overrides={"max_context": 4},
    )
    return str(root / "dit")


@pytest.fixture(scope="module")
def model(run: str) -> WorldModel:
    return load_world_model(run, precision="fp32")


def opts(seed: int = 0, candidates: int = 2) -> GenOptions:
    return GenOptions(
        seed=seed, sampler=SamplerConfig(steps=1), prompt="a dark corridor", candidates=candidates
    )


def clip(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)


def test_generate_from_image_keeps_start_frame_and_seed_reproduces(model: WorldModel) -> None:
    start = clip(1)[0]
    a = generate(model, 5, opts(3), image=start)
    assert a.shape == (5, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a[0], start)
    assert np.array_equal(a, generate(model, 5, opts(3), image=start))
    assert not np.array_equal(a[1:], generate(model, 5, opts(4), image=start)[1:])


def test_samples_differ_and_match_single_seeds(model: WorldModel) -> None:
    outs = generate_samples(model, 4, 3, opts(7))
    assert len(outs) == 3 and all(o.shape == (4, 64, 64, 3) for o in outs)
    assert not np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[1], outs[2])
    assert np.array_equal(outs[2], generate(model, 4, opts(9)))  # sample i == seed S + i alone


def test_scripted_actions_change_the_video(model: WorldModel) -> None:
    fwd = generate(model, 4, opts(0), script=parse_actions("forward:3", SPEC))
    left = generate(model, 4, opts(0), script=parse_actions("turn_left:3", SPEC))
    assert not np.array_equal(fwd[1:], left[1:])


def test_parse_actions_and_errors() -> None:
    assert parse_actions("forward:2,turn_left", SPEC) == [1, 1, 3]
    with pytest.raises(ReverieError, match="noop, forward, back, turn_left"):
        parse_actions("fly:3", SPEC)
    with pytest.raises(ReverieError, match="NAME:COUNT"):
        parse_actions("forward:x", SPEC)
    with pytest.raises(ReverieError, match="explore policy"):
        parse_actions(
            "steer:1", {"type": "box", "shape": [2], "low": [-1, -1], "high": [1, 1], "names": ["a", "b"]}
        )
    acts = frame_actions(SPEC, 6, 0, [1, 1])
    assert acts == [0, 1, 1, 0, 0, 0]  # null first, script, padded with the null action
    assert len(frame_actions(SPEC, 6, 0)) == 6 and frame_actions(SPEC, 6, 0)[0] == 0


def test_extend_forward_and_backward_keep_given_frames(model: WorldModel) -> None:
    c = clip(6)
    fwd = extend(model, c, 3, opts())
    assert fwd.shape == (9, 64, 64, 3) and np.array_equal(fwd[:6], c)
    back = extend(model, c, 3, opts(), backward=True)
    assert back.shape == (9, 64, 64, 3) and np.array_equal(back[3:], c)


@pytest.mark.parametrize("span", ["2-3", "0-1", "4-5"])
def test_fill_keeps_given_frames(model: WorldModel, span: str) -> None:
    c = clip(6)
    first, last = parse_span(span, len(c))
    out = fill(model, c, first, last, opts())
    assert out.shape == c.shape
    keep = [i for i in range(6) if not first <= i <= last]
    assert np.array_equal(out[keep], c[keep])
    assert not np.array_equal(out[first : last + 1], c[first : last + 1])


def test_fill_span_errors() -> None:
    for bad in ["3", "a-b", "4-2", "0-5", "2-9"]:
        with pytest.raises(ReverieError, match="accepted"):
            parse_span(bad, 6)


def test_interpolate_length_and_given_frames(model: WorldModel) -> None:
    c = clip(3)
    out = interpolate(model, c, 3, opts())
    assert out.shape == (7, 64, 64, 3)
    assert np.array_equal(out[::3], c)


def test_cli_generate_samples_grid_strip_then_extend(run: str, tmp_path: Path) -> None:
    from reverie.cli.generate import app
    from reverie.data.video import decode_video

    out = tmp_path / "dream.mp4"
    res = CliRunner().invoke(
        app, ["generate", "--model", run, "--prompt", "hi", "--frames", "4", "--samples", "2", "--steps", "1",
              "--actions", "forward:2", "--scale", "1", "--strip", str(tmp_path / "s.png"), "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    for name in ["dream_0.mp4", "dream_1.mp4", "dream_grid.mp4", "s.png"]:
        assert (tmp_path / name).exists(), name
    frames, _ = decode_video(str(tmp_path / "dream_0.mp4"), Size(64, 64))
    assert len(frames) == 4
    grid, _ = decode_video(str(tmp_path / "dream_grid.mp4"), Size(130, 64))
    assert len(grid) == 4
    ext = tmp_path / "ext.mp4"
    res = CliRunner().invoke(
        app, ["extend", str(tmp_path / "dream_0.mp4"), "--model", run, "--frames", "2", "--steps", "1",
              "--backward", "--scale", "1", "--out", str(ext)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert len(decode_video(str(ext), Size(64, 64))[0]) == 6


def test_cli_bad_actions_lists_names_and_writes_nothing(run: str, tmp_path: Path) -> None:
    from reverie.cli.generate import app

    out = tmp_path / "x.mp4"
    res = CliRunner().invoke(app, ["generate", "--model", run, "--actions", "jump:3", "--out", str(out)])
    assert isinstance(res.exception, ReverieError)
    assert "turn_left" in str(res.exception)
    assert list(tmp_path.iterdir()) == []


def test_fill_keeps_the_candidate_ending_nearest_the_next_frame(model: WorldModel) -> None:
    from reverie.generate.modes import _continue

    c, o = clip(6), opts(5, candidates=3)
    z_right = model.encode(c[4:5])[0]
    cands = [_continue(model, c[:2], 2, o, o.seed + k, "t") for k in range(3)]
    errs = [float(((z[-1] - z_right) ** 2).mean()) for z in cands]
    assert len(set(errs)) == 3  # the candidates really differ
    best = cands[int(np.argmin(errs))]
    assert np.array_equal(fill(model, c, 2, 3, o)[2:4], model.decode(best))


@pytest.mark.parametrize("size", ["96x64", "128x72"])
def test_cli_generate_other_sizes_from_the_same_model(run: str, tmp_path: Path, size: str) -> None:
    import av

    from reverie.cli.generate import app

    out = tmp_path / "wide.mp4"
    res = CliRunner().invoke(
        app, ["generate", "--model", run, "--frames", "3", "--steps", "1", "--size", size, "--scale", "1",
              "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    with av.open(str(out)) as f:
        stream = f.streams.video[0]
        assert f"{stream.codec_context.width}x{stream.codec_context.height}" == size
        assert sum(1 for _ in f.decode(stream)) == 3


def test_cli_generate_refuses_a_size_off_the_stride(run: str, tmp_path: Path) -> None:
    from reverie.cli.generate import app

    res = CliRunner().invoke(
        app, ["generate", "--model", run, "--size", "100x64", "--out", str(tmp_path / "x.mp4")]
    )
    assert isinstance(res.exception, ReverieError) and "stride" in str(res.exception)
    assert list(tmp_path.iterdir()) == []
