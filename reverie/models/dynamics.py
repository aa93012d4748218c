"""A dynamics model of either family, chosen by its run config's "model" settings: the diffusion
transformer (`dit.py`) or the frame-stack convolutional candidate (`framestack.py`). Building,
loading, presets and the batched sampler dispatch here, so neither network module knows the other.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from reverie.checkpoint import check_kind, load_run
from reverie.errors import ReverieError
from reverie.load_check import build_for_weights, check_fields
from reverie.models import framestack
from reverie.models.dit import PRESETS, DiT, DiTConfig, preset
from reverie.models.framestack import FrameStack, FrameStackConfig
from reverie.models.framestack_rollout import FrameStackRollout
from reverie.models.sampler import Rollout, SamplerConfig


def load_dynamics(path: str) -> nn.Module:
    """The trained dynamics model of run directory `path` (EMA weights), in eval mode."""
    config, state = load_run(path)
    check_kind(config, "dynamics")
    settings: Any = config.get("model")
    family = settings.get("family") if isinstance(settings, dict) else None
    check_fields(FrameStackConfig if family == "framestack" else DiTConfig, settings, path)
    return build_for_weights(lambda: build_dynamics(settings), state, path).eval()


def build_dynamics(model_config: dict[str, Any]) -> nn.Module:
    """A dynamics network (untrained) from a run's "model" config: the DiT, or the frame-stack candidate."""
    if model_config.get("family") == "framestack":
        return FrameStack(FrameStackConfig.from_dict(model_config))
    return DiT(DiTConfig.from_dict(model_config))


def dynamics_config(model_config: dict[str, Any]) -> Any:
    """The typed config (DiTConfig or FrameStackConfig) of a run's "model" config."""
    if model_config.get("family") == "framestack":
        return FrameStackConfig.from_dict(model_config)
    return DiTConfig.from_dict(model_config)


def dynamics_preset(name: str, **overrides: Any) -> Any:
    """A preset of either family by name: the DiT's (tiny, small, ...) or the frame-stack's (conv-...)."""
    if name in framestack.PRESETS:
        return framestack.preset(name, **overrides)
    if name not in PRESETS:
        raise ReverieError(
            f"unknown dynamics preset {name!r}; accepted: {', '.join([*PRESETS, *framestack.PRESETS])}"
        )
    return preset(name, **overrides)


def make_rollout(model: torch.nn.Module, cfg: SamplerConfig | None = None) -> Rollout:
    """The batched sampler for a dynamics model of either family (DiT, or the frame-stack candidate)."""
    if isinstance(model, FrameStack):
        return FrameStackRollout(model, cfg)  # type: ignore[return-value]  # same interface
    return Rollout(model, cfg)  # type: ignore[arg-type]
