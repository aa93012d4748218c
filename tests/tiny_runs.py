"""Untrained runs laid out as training writes them, for tests that need a model but not a trained one."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from reverie.checkpoint import save_run
from reverie.models.autoencoder import load_autoencoder
from reverie.models.dit import DiT
from reverie.models.dit import preset as dit_preset
from reverie.models.text import get_text_encoder
from reverie.sizes import Size
from reverie.train.dynamics_task import choose_patch
from reverie.worlds.action_spec import ActionSpec


def save_untrained_run(
    out: str,
    autoencoder_run: str,
    spec: dict[str, Any],
    *,
    preset: str = "small",
    world: str | None = "reverie/Dungeon-v0",
    size: Size = Size(64, 64),
    text_encoder: str = "hash",
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
) -> None:
    """A dynamics run with random weights over `autoencoder_run`.

    Untrained weights cost the same per frame as trained ones; the config is laid out as
    `reverie train dynamics` writes it, so `ModelBackend` loads it the same way.
    """
    C, h, w = load_autoencoder(autoencoder_run).latent_shape(size.height, size.width)
    actions = ActionSpec.from_dict(spec)
    cfg = replace(
        dit_preset(preset),
        latent_channels=C,
        patch=choose_patch(h, w),
        action_type=actions.kind,
        num_actions=actions.n if actions.is_discrete else 1,
        action_dim=actions.action_dim,
        text_encoder=text_encoder,
        text_dim=get_text_encoder(text_encoder).dim,
        **dict(overrides or {}),
    )
    torch.manual_seed(seed)
    model = DiT(cfg)
    with torch.no_grad():  # adaLN-Zero starts as identity; random weights make every op do real work
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    # seed_ranges: an untrained model has seen no seeds, so eval needs no --allow-overlap for it
    data: dict[str, Any] = {
        "world": world,
        "width": size.width,
        "height": size.height,
        "action_spec": spec,
        "seed_ranges": [],
    }
    config = {
        "kind": "dynamics",
        "model": asdict(cfg),
        "data": data | {"autoencoder": str(Path(autoencoder_run).resolve())},
        "step": 0,
    }
    card = "# Untrained dynamics model\n\nRandom weights, for speed benches and tests.\n"
    Path(out).mkdir(parents=True, exist_ok=True)
    save_run(
        Path(out), config=config, ema_state=model.state_dict(), card=card, train_tensors={}, train_json={}
    )
