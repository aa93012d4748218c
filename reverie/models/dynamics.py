"""The dynamics model of a run: building, loading, presets and the batched sampler, from its run
config's "model" settings. The one family is the diffusion transformer (`dit.py`); callers go through
here, so the network module stays free of run files and sampler choices.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from reverie.checkpoint import check_kind, load_run
from reverie.errors import ReverieError
from reverie.load_check import build_for_weights, check_fields
from reverie.models.dit import DiT, DiTConfig, preset
from reverie.models.sampler import Rollout, SamplerConfig


def load_dynamics(path: str) -> nn.Module:
    """The trained dynamics model of run directory `path` (EMA weights), in eval mode."""
    config, state = load_run(path)
    check_kind(config, "dynamics")
    settings: Any = config.get("model")
    if isinstance(settings, dict) and settings.get("family", "dit") != "dit":
        raise ReverieError(
            f"{path}: a dynamics model of family {settings['family']!r}; this reverie loads the diffusion "
            "transformer only (the frame-stack candidate was removed after the bake-off, docs/bakeoff.md)"
        )
    check_fields(DiTConfig, settings, path)
    return build_for_weights(lambda: build_dynamics(settings), state, path).eval()


def build_dynamics(model_config: dict[str, Any]) -> nn.Module:
    """A dynamics network (untrained) from a run's "model" config."""
    return DiT(DiTConfig.from_dict(model_config))


def dynamics_config(model_config: dict[str, Any]) -> DiTConfig:
    """The typed config of a run's "model" config."""
    return DiTConfig.from_dict(model_config)


def dynamics_preset(name: str, **overrides: Any) -> DiTConfig:
    """A preset by name (tiny, small, ...); an unknown name is refused with the accepted ones."""
    return preset(name, **overrides)


def make_rollout(model: torch.nn.Module, cfg: SamplerConfig | None = None) -> Rollout:
    """The batched sampler for a dynamics model."""
    return Rollout(model, cfg)  # type: ignore[arg-type]
