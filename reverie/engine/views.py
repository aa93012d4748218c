"""`make_backends`: the backends behind a player's views, above both kinds of backend it chooses from."""

from __future__ import annotations

import contextlib
from typing import Any

from reverie.engine.backends import Backend, SimulatorBackend
from reverie.errors import ReverieError
from reverie.sizes import Size


def make_backends(
    model: str | None,
    world: str,
    size: Size | str,
    continuous: bool = False,
    model_cfg: Any = None,
) -> dict[str, Backend]:
    """The views a player can watch: "dream" (what is played) and, where a simulator exists, "real".

    Without a model both views are the simulator. With a model (a dynamics run dir) "dream" is the
    `ModelBackend` (its world, size and actions come from the run, not from `world`/`size`) and
    "real" is the simulator of the world it learned, when that world exists here (plain video: none).
    `model_cfg` is a `reverie.engine.model_backend.ModelConfig` (steps, threads).
    """
    if model is not None:
        from reverie.engine.model_backend import ModelBackend

        try:
            dream = ModelBackend(model, model_cfg)
        except ReverieError as e:  # say which option was wrong: the run path is the user's input
            raise ReverieError(f"--model {model}: {e}") from e
        views: dict[str, Backend] = {"dream": dream}
        if dream.world != "video":
            # the model's world may not be installed here: then the dream plays alone
            with contextlib.suppress(Exception):
                views["real"] = SimulatorBackend(dream.world, dream.size, dream.actions.is_box)
        return views
    return {
        "dream": SimulatorBackend(world, size, continuous),
        "real": SimulatorBackend(world, size, continuous),
    }
