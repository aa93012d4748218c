"""The world model shipped inside the package, by name. Torch-free, so `reverie play` can ask cheaply."""

from __future__ import annotations

from pathlib import Path

from reverie.errors import ReverieError

__all__ = ["DEFAULT_MODEL", "SHIPPED_DIR", "default_model_available", "resolve_model"]

DEFAULT_MODEL = "default"  # the name that means the model shipped inside the package
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "weights" / DEFAULT_MODEL


def default_model_available() -> bool:
    return (SHIPPED_DIR / "config.json").is_file() and (SHIPPED_DIR / "model.safetensors").is_file()


def resolve_model(run: str) -> str:
    """A run directory for `run`: the name "default" is the shipped model, anything else a path."""
    if run != DEFAULT_MODEL:
        return run
    if not default_model_available():
        raise ReverieError(
            f"the default model is not installed ({SHIPPED_DIR} holds no weights); "
            "train one with `bash runs/default.sh`, or pass a run directory"
        )
    return str(SHIPPED_DIR)
