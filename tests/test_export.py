"""Packaging a world model: `reverie export`, the shipped "default" name, recorded training seeds."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tiny_runs import save_untrained_run
from typer.testing import CliRunner

from reverie.cli import app
from reverie.data.seeds import expand_ranges, seed_ranges
from reverie.errors import ReverieError
from reverie.eval.run import held_out_seeds
from reverie.models import shipped
from reverie.models.world_model import load_world_model
from reverie.sizes import Size
from reverie.train.export import export_model

SPEC = {"type": "discrete", "n": 3, "names": ["noop", "forward", "back"]}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> str:
    from reverie.checkpoint import save_run
    from reverie.models.autoencoder import PRESETS, Autoencoder

    root = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    ae = Autoencoder(PRESETS["tiny"])
    config = {"kind": "autoencoder", "model": asdict(ae.cfg), "data": {"width": 32, "height": 32}, "step": 0}
    (root / "ae").mkdir()
    save_run(
        root / "ae",
        config=config,
        ema_state=ae.state_dict(),
        card="tiny ae\n",
        train_tensors={},
        train_json={},
    )
    save_untrained_run(str(root / "dit"), str(root / "ae"), SPEC, preset="tiny", size=Size(32, 32))
    (root / "dit" / "MODEL_CARD.md").write_text("tiny dit. Played with 2 Euler steps at context noise 0.1.\n")
    return str(root / "dit")


def test_seed_ranges_round_trip() -> None:
    seeds = [5, 1, 2, 3, 9, None, 10, 3]
    assert seed_ranges(seeds) == [[1, 3], [5, 5], [9, 10]]
    assert expand_ranges(seed_ranges(seeds)) == {1, 2, 3, 5, 9, 10}
    assert seed_ranges([]) == []


def test_held_out_check_reads_recorded_seed_ranges() -> None:
    config = {"data": {"path": "/nowhere", "seed_ranges": [[0, 99]]}}
    assert held_out_seeds(config, [1_000_000, 1_000_001], allow_overlap=False) == []
    with pytest.raises(ReverieError, match="were used to train"):
        held_out_seeds(config, [50, 1_000_000], allow_overlap=False)
    assert held_out_seeds(config, [50, 1_000_000], allow_overlap=True) == [50]


def test_export_is_self_contained_and_bf16(run: str, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    sizes = export_model(run, str(out))
    assert set(sizes) == {"dynamics", "autoencoder"}
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert files == {
        "model.safetensors", "config.json", "MODEL_CARD.md",
        "autoencoder/model.safetensors", "autoencoder/config.json", "autoencoder/MODEL_CARD.md",
    }  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["autoencoder"] == "autoencoder"
    assert {v.dtype for v in load_file(out / "model.safetensors").values()} == {torch.bfloat16}
    plain = tmp_path / "plain"
    plain.mkdir()  # the package directory gets the permissions any new directory gets, not a temp's 0700
    assert (out.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)
    # moved elsewhere (as when installed with the package), it still loads and decodes like the original
    moved = tmp_path / "elsewhere" / "model"
    shutil.move(str(out), str(moved))
    a, b = load_world_model(run, precision="fp32"), load_world_model(str(moved), precision="fp32")
    z = torch.randn(2, *a.latent_shape)
    diff = np.abs(a.decode(z).astype(int) - b.decode(z).astype(int))
    assert diff.mean() < 2.0  # bf16 rounding of the weights only


def test_export_refuses_to_overwrite_and_keeps_bad_input_out(run: str, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    export_model(run, str(out))
    with pytest.raises(ReverieError, match="exists"):
        export_model(run, str(out))
    bad = tmp_path / "measured.jsonl"
    bad.write_text('{"psnr_tf": 30.1}\nnot json\n')
    fresh = tmp_path / "fresh"
    with pytest.raises(ReverieError, match="not a JSON line"):
        export_model(run, str(fresh), measured=str(bad))
    assert not fresh.exists() and not any(p.name.startswith(".fresh") for p in tmp_path.iterdir())
    good = tmp_path / "good.jsonl"
    good.write_text('{"psnr_tf": 30.1}\n{"bench": "engine", "fps": 40.0}\n')
    notes = tmp_path / "notes.md"
    notes.write_text("## Bars\n\nall measured\n")
    export_model(run, str(out), measured=str(good), notes=str(notes), force=True, precision="fp32")
    card = (out / "MODEL_CARD.md").read_text()
    assert '{"bench": "engine", "fps": 40.0}' in card and "## Bars" in card
    assert {v.dtype for v in load_file(out / "model.safetensors").values()} == {torch.float32}


def test_default_name_resolves_to_the_shipped_directory(
    run: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path / "weights" / "default")
    assert not shipped.default_model_available()
    with pytest.raises(ReverieError, match="default model is not installed"):
        load_world_model("default")
    export_model(run, str(tmp_path / "weights" / "default"))
    assert shipped.default_model_available()
    assert load_world_model("default").action_names() == SPEC["names"]
    assert shipped.resolve_model(run) == run  # any other name is a path, checked to exist
    with pytest.raises(ReverieError, match="--model takes"):
        shipped.resolve_model(str(tmp_path / "runs" / "x"))


def test_cli_export_and_play_argument_errors(run: str, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["export", run, "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert "exported" in res.output and (tmp_path / "m" / "autoencoder" / "config.json").exists()
    res = runner.invoke(app, ["export", run, "--out", str(tmp_path / "m2"), "--precision", "int8"])
    assert res.exit_code != 0 and "accepted: bf16, fp32" in str(res.exception)
    res = runner.invoke(app, ["play", "--model", run, "--world", "reverie/Dungeon-v0"])
    assert res.exit_code != 0 and "not both" in str(res.exception)


def test_export_takes_a_decoder_fine_tune_but_not_another_encoder(run: str, tmp_path: Path) -> None:
    from reverie.checkpoint import load_run, save_run

    ae_run = str(Path(run).parent / "ae")
    config, state = load_run(ae_run)
    sharper = {
        k: (v + 0.01 if k.startswith("decoder.") and v.is_floating_point() else v) for k, v in state.items()
    }
    save_run(tmp_path / "ft", config=config, ema_state=sharper, card="ft\n", train_tensors={}, train_json={})
    other = {
        k: (v + 0.01 if k.startswith("encoder.") and v.is_floating_point() else v) for k, v in state.items()
    }
    save_run(tmp_path / "other", config=config, ema_state=other, card="x\n", train_tensors={}, train_json={})
    with pytest.raises(ReverieError, match="encodes differently"):
        export_model(run, str(tmp_path / "bad"), autoencoder=str(tmp_path / "other"))
    assert not (tmp_path / "bad").exists()
    export_model(run, str(tmp_path / "pkg"), autoencoder=str(tmp_path / "ft"), precision="fp32")
    shipped_ae = load_file(tmp_path / "pkg" / "autoencoder" / "model.safetensors")
    assert all(torch.equal(shipped_ae[k], sharper[k]) for k in sharper)


def test_export_ships_chosen_play_settings(run: str, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    export_model(run, str(out), play={"context_noise": 0.2, "steps": 1})
    wm = load_world_model(str(out))
    assert wm.sampler.context_noise == 0.2 and wm.sampler.steps == 1
    card = (out / "MODEL_CARD.md").read_text()
    assert "1 Euler step, context noise 0.2" in card
    # the run card's own sentence on play settings now tells the package's, not the run's
    assert "Played with 1 Euler step at context noise 0.2." in card and card.count("Played with") == 1
    with pytest.raises(ReverieError, match="steps"):
        export_model(run, str(tmp_path / "bad"), play={"steps": 0})
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ReverieError, match=r"context blur 0\.3: .* not trained with a blur input"):
        export_model(run, str(tmp_path / "bad"), play={"context_blur": 0.3})
    assert not (tmp_path / "bad").exists()


def test_export_ships_action_guidance_from_the_command_line(run: str, tmp_path: Path) -> None:
    """--guidance / --guide reach the package's play settings, its card and the rollout it plays with."""
    out = tmp_path / "guided"
    res = CliRunner().invoke(
        app, ["export", run, "--out", str(out), "--guidance", "1.5", "--guide", "action"]
    )
    assert res.exit_code == 0, res.output
    wm = load_world_model(str(out))
    assert (wm.sampler.guidance, wm.sampler.guide) == (1.5, "action")
    card = (out / "MODEL_CARD.md").read_text()
    assert "context noise 0.02, guidance 1.5 on the action." in card and card.count("Played with") == 1
    res = CliRunner().invoke(app, ["export", run, "--out", str(tmp_path / "bad"), "--guide", "keys"])
    assert res.exit_code != 0 and "accepted text, action, both" in str(res.exception)
    assert not (tmp_path / "bad").exists()


def test_the_card_sentence_on_play_settings_is_found_in_either_wording() -> None:
    """A card written before the told blur meant the model's own frames is still rewritten, not doubled."""
    from reverie.train.dynamics_task import PLAYED_WITH, played_with

    new = played_with(1, 0.1, 0.25)
    assert new == "Played with 1 Euler step at context noise 0.1 and its own frames told context blur 0.25."
    for card in (
        new,
        "Played with 1 Euler step at context noise 0.1 and context blur 0.5.",
        played_with(2, 0.02),
        played_with(1, 0.1, 0.2, 1.5, "action"),
    ):
        assert PLAYED_WITH.fullmatch(card)
