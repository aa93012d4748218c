"""`--model` is the same everywhere: left out, it is the shipped model; given a file or a near miss
of `default`, the error says what it takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from reverie.cli import app
from reverie.errors import ReverieError
from reverie.models.shipped import SHIPPED_DIR, resolve_model


class _Loaded(Exception):
    """Raised by the stand-in loader: the command got as far as loading this model."""


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []

    def fake_load(run: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(run)
        raise _Loaded(run)

    monkeypatch.setattr("reverie.models.world_model.load_world_model", fake_load)
    return seen


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "--frames", "2"],
        ["extend", "CLIP", "--frames", "2"],
        ["fill", "CLIP", "--missing", "1-2"],
        ["interpolate", "CLIP"],
    ],
)
def test_generation_commands_default_to_the_shipped_model(
    argv: list[str], loaded: list[str], tmp_path: Path
) -> None:
    argv = [str(tmp_path / "clip.mp4") if a == "CLIP" else a for a in argv]
    res = CliRunner().invoke(app, [*argv, "--out", str(tmp_path / "out.mp4")])
    assert isinstance(res.exception, _Loaded), res.output
    assert loaded == ["default"]


def test_bench_engine_defaults_to_the_shipped_model(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def fake_backend(run: str, cfg: Any = None) -> Any:
        seen.append(run)
        raise _Loaded(run)

    monkeypatch.setattr("reverie.engine.model_backend.ModelBackend", fake_backend)
    res = CliRunner().invoke(app, ["bench", "engine", "--frames", "10", "--json"])
    assert isinstance(res.exception, _Loaded) and seen == ["default"]
    res = CliRunner().invoke(app, ["bench", "engine", "--model", "default", "--world", "reverie/Dungeon-v0"])
    assert isinstance(res.exception, ReverieError) and "not both" in str(res.exception)


def test_a_weights_file_is_not_a_model_and_the_error_names_its_folder() -> None:
    weights = SHIPPED_DIR / "model.safetensors"
    with pytest.raises(ReverieError) as e:
        resolve_model(str(weights))
    msg = str(e.value)
    assert "is a file, not a model" in msg and f"--model {SHIPPED_DIR}" in msg
    assert "run directory" in msg and "model package" in msg and "`default`" in msg


@pytest.mark.parametrize("near", ["defualt", "Default", "deafult", "defaults"])
def test_near_misses_of_default_suggest_it(
    near: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ReverieError, match="did you mean `default`"):
        resolve_model(near)


def test_a_missing_path_says_what_model_takes(tmp_path: Path) -> None:
    with pytest.raises(ReverieError) as e:
        resolve_model(str(tmp_path / "runs" / "dyn"))
    assert "nothing is there." in str(e.value) and "did you mean" not in str(e.value)
    assert "--model takes a run directory" in str(e.value)
    assert resolve_model(str(tmp_path)) == str(tmp_path)  # a directory is handed on to the loader
