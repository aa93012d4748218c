"""The world model shipped inside the package, by name. Torch-free, so `reverie play` can ask cheaply."""

from __future__ import annotations

import difflib
from pathlib import Path

from reverie.errors import ReverieError

__all__ = ["DEFAULT_MODEL", "MODEL_FORMS", "SHIPPED_DIR", "default_model_available", "resolve_model"]

DEFAULT_MODEL = "default"  # the name that means the model shipped inside the package
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "weights" / DEFAULT_MODEL


def default_model_available() -> bool:
    return (SHIPPED_DIR / "config.json").is_file() and (SHIPPED_DIR / "model.safetensors").is_file()


MODEL_FORMS = (
    "--model takes a run directory (made by `reverie train dynamics`), a model package (made by "
    "`reverie export`) or `default` (the shipped model)"
)


def resolve_model(run: str) -> str:
    """A run directory for `run`: the name "default" is the shipped model, anything else a path."""
    if run != DEFAULT_MODEL:
        _check_model_path(run)
        return run
    if not default_model_available():
        raise ReverieError(
            f"the default model is not installed ({SHIPPED_DIR} holds no weights); "
            "train one with `bash runs/default.sh`, or pass a run directory"
        )
    return str(SHIPPED_DIR)


def _check_model_path(run: str) -> None:
    """A model is a directory: say so when given a file (a weights file, a config) or a near miss."""
    path = Path(run)
    if path.is_dir():
        return
    if path.is_file():
        parent = path.parent if (path.parent / "config.json").is_file() else None
        hint = f"; its folder {parent} looks like one: --model {parent}" if parent else ""
        raise ReverieError(f"{run} is a file, not a model{hint}. {MODEL_FORMS}")
    near = difflib.get_close_matches(run.lower(), [DEFAULT_MODEL], n=1, cutoff=0.6)
    hint = f"; did you mean `{DEFAULT_MODEL}` (the shipped model)?" if near else ""
    raise ReverieError(f"no model at {run}: nothing is there{hint or '.'} {MODEL_FORMS}")
