"""Two CPU processes (gloo) run the same training loop as one: parameters stay identical on every rank.

Both kinds of model: the autoencoder, and the dynamics model, whose loss calls it twice a step (the
play layout and diffusion forcing) and never uses its box-action null embedding.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from reverie.models.autoencoder import PRESETS
from reverie.models.flow import FlowConfig
from reverie.train.autoencoder_task import AutoencoderTask
from reverie.train.config import TrainConfig
from reverie.train.dynamics_task import DynamicsTask, LatentClips
from reverie.train.task import unwrap


class RecordingTask(AutoencoderTask):
    """Keeps the trained module and each rank's batches, to compare ranks after training."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.model: torch.nn.Module | None = None
        self.seen: list[torch.Tensor] = []

    def loss(self, model, batch):  # type: ignore[no-untyped-def]
        self.model = unwrap(model)
        self.seen.append(batch["obs"].float().mean().reshape(1))
        return super().loss(model, batch)


class RecordingDynamics(DynamicsTask):
    """The same for the dynamics task (its batches are latent windows; `_task` sets the records)."""

    model: torch.nn.Module | None
    seen: list[torch.Tensor]

    def loss(self, model, batch):  # type: ignore[no-untyped-def]
        self.model = unwrap(model)
        self.seen.append(batch["z"].float().mean().reshape(1))
        return super().loss(model, batch)


def _task(kind: str, cfg: TrainConfig) -> RecordingTask | RecordingDynamics:
    if kind == "autoencoder":
        frames = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
        return cast(
            RecordingTask, RecordingTask.from_frames(frames, PRESETS["tiny"], cfg, val_frames=frames[:2])
        )
    g = torch.Generator().manual_seed(0)
    clips = LatentClips(
        z=torch.randn(64, 4, 4, 4, generator=g),
        act=torch.randint(0, 9, (64,), generator=g),
        cap=torch.zeros(64, dtype=torch.long),
        captions=["a stone corridor"],
        lengths=[64],
    )
    flow = FlowConfig(p_play=0.5)  # two windows in the play layout and two forced: two model calls a step
    spec = {"type": "discrete", "n": 9}
    task = cast(
        RecordingDynamics,
        RecordingDynamics.from_latents(clips, None, spec, "tiny", 0, 5, batch_size=4, flow=flow),
    )
    task.model, task.seen = None, []
    return task


def _worker(rank: int, world: int, port: int, out: str, kind: str) -> None:
    from reverie.train.loop import train

    os.environ.update(
        {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(world)}
    )
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    cfg = TrainConfig(steps=4, batch_size=4, warmup_steps=1, threads=1, device="cpu", log_every=1)
    task = _task(kind, cfg)
    train(task, cfg, Path(out) / "run")
    assert task.model is not None
    state = {k: v.detach().contiguous() for k, v in task.model.state_dict().items()}
    state["seen"] = torch.cat(task.seen)
    save_file(state, str(Path(out) / f"rank{rank}.safetensors"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("kind", ["autoencoder", "dynamics"])
def test_two_processes_keep_identical_parameters(tmp_path: Path, kind: str) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), kind), nprocs=2, join=True)
    r0 = load_file(str(tmp_path / "rank0.safetensors"))
    r1 = load_file(str(tmp_path / "rank1.safetensors"))
    seen0, seen1 = r0.pop("seen"), r1.pop("seen")
    assert not torch.equal(seen0, seen1)  # each rank trained on its own batches ...
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k  # ... and the averaged gradients kept the weights equal
    torch.manual_seed(0)
    fresh = _task(kind, TrainConfig()).build_model().state_dict()
    assert any(not torch.equal(fresh[k], r0[k]) for k in fresh)  # it did train
    config = (tmp_path / "run" / "config.json").read_text()
    assert "- processes: 2" in (tmp_path / "run" / "MODEL_CARD.md").read_text() and '"step": 4' in config
