"""Untrusted model files cost nothing: config.json is checked against the weights (names, shapes,
total size) before a real model is built, files are size-capped, and every failure is one clear
ReverieError naming what is wrong, never a traceback or minutes spent building a huge model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from reverie import checkpoint as ckpt
from reverie import load_check
from reverie.errors import ReverieError
from reverie.models.autoencoder import load_autoencoder
from reverie.models.dynamics import load_dynamics
from reverie.models.shipped import SHIPPED_DIR, default_model_available
from reverie.models.world_model import load_world_model

pytestmark = pytest.mark.skipif(not default_model_available(), reason="needs the shipped model")


@pytest.fixture
def run(tmp_path: Path) -> Path:
    out = tmp_path / "model"
    shutil.copytree(SHIPPED_DIR, out)
    return out


def _edit(path: Path, section: str, **changes: Any) -> None:
    config = json.loads((path / ckpt.CONFIG_FILE).read_text())
    config[section] = {**config[section], **changes}
    (path / ckpt.CONFIG_FILE).write_text(json.dumps(config))


def test_the_shipped_model_loads_unchanged(run: Path) -> None:
    model = load_dynamics(str(run))
    _, state = ckpt.load_run(run)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_a_config_asking_for_a_huge_model_is_stopped_before_it_is_built(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[torch.device] = []
    real_init = torch.nn.Linear.__init__

    def spy(self: torch.nn.Linear, *a: Any, **k: Any) -> None:
        real_init(self, *a, **k)
        built.append(self.weight.device)

    monkeypatch.setattr(torch.nn.Linear, "__init__", spy)
    _edit(run, "model", dim=4096, depth=48, heads=32)  # ~7 GB of float32, from a 15 MB file
    with pytest.raises(ReverieError, match="far larger than its weights"):
        load_dynamics(str(run))
    assert built and all(d.type == "meta" for d in built)  # no real memory was ever asked for
    assert len(built) < 48  # and the shape-only build stopped within its first blocks


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dim": "256"}, r"model setting 'dim' is '256' \(str\); accepted: int"),
        ({"mlp_ratio": [4]}, r"'mlp_ratio' .* accepted: float"),
        ({"num_actions": 10}, r"do not fit .*act_embed.weight \(10, 256\) vs \(11, 256\)"),
        ({"depth": 5}, r"do not fit .*unexpected \['blocks.5"),
        ({"heads": 0}, r"does not describe a model \(ZeroDivisionError"),
        ({"warp": 9}, r"unknown dynamics config keys \['warp'\]; accepted"),
    ],
)
def test_bad_model_settings_are_one_clear_error(run: Path, changes: dict[str, Any], message: str) -> None:
    _edit(run, "model", **changes)
    with pytest.raises(ReverieError, match=message):
        load_dynamics(str(run))


def test_the_autoencoder_is_checked_the_same_way(run: Path) -> None:
    ae = run / "autoencoder"
    original, state = ckpt.load_run(ae)
    assert all(torch.equal(v, state[k]) for k, v in load_autoencoder(ae).state_dict().items())
    _edit(ae, "model", channels=[4096, 8192, 16384])  # its init reads its weights: built for real,
    with pytest.raises(ReverieError, match="far larger than its weights"):  # within the budget
        load_autoencoder(ae)
    _edit(ae, "model", channels=original["model"]["channels"], latent_channels=16)
    with pytest.raises(ReverieError, match="do not fit"):
        load_autoencoder(ae)
    _edit(ae, "model", channels="wide")
    with pytest.raises(ReverieError, match=r"'channels' is 'wide' \(str\); accepted: tuple"):
        load_autoencoder(ae)


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"width": "64"}, "data 'width'"), ({"height": 10**9}, "data 'height'"), ({"fps": -1}, "data 'fps'")],
)
def test_bad_data_settings_are_one_clear_error(run: Path, changes: dict[str, Any], message: str) -> None:
    _edit(run, "data", **changes)
    with pytest.raises(ReverieError, match=message):
        load_world_model(str(run))


def test_oversized_files_are_refused_before_reading(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ckpt, "MAX_MODEL_BYTES", 1024 * 1024)
    with pytest.raises(ReverieError, match=r"model.safetensors is 14 MiB; files of a run are at most 1 MiB"):
        ckpt.load_run(run)
    (run / ckpt.CONFIG_FILE).write_text(" " * (load_check.MAX_CONFIG_BYTES + 1))
    with pytest.raises(ReverieError, match=r"config\.json is 1 MiB"):
        ckpt.load_run(run)
