"""Two CPU processes (gloo) run the same training loop as one: parameters stay identical on every rank."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from reverie.models.autoencoder import PRESETS
from reverie.train.autoencoder_task import AutoencoderTask
from reverie.train.config import TrainConfig
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


def _worker(rank: int, world: int, port: int, out: str) -> None:
    from reverie.train.loop import train

    os.environ.update(
        {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(world)}
    )
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    frames = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    cfg = TrainConfig(steps=4, batch_size=4, warmup_steps=1, threads=1, device="cpu", log_every=1)
    task = RecordingTask.from_frames(frames, PRESETS["tiny"], cfg, val_frames=frames[:2])
    train(task, cfg, Path(out) / "run")
    assert task.model is not None
    state = {k: v.detach().contiguous() for k, v in task.model.state_dict().items()}
    state["seen"] = torch.cat(task.seen)
    save_file(state, str(Path(out) / f"rank{rank}.safetensors"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_processes_keep_identical_parameters(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = load_file(str(tmp_path / "rank0.safetensors"))
    r1 = load_file(str(tmp_path / "rank1.safetensors"))
    seen0, seen1 = r0.pop("seen"), r1.pop("seen")
    assert not torch.equal(seen0, seen1)  # each rank trained on its own batches ...
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k  # ... and the averaged gradients kept the weights equal
    init = RecordingTask.from_frames(np.zeros((1, 32, 32, 3), np.uint8), PRESETS["tiny"], TrainConfig())
    torch.manual_seed(0)
    fresh = init.build_model().state_dict()
    assert not torch.equal(fresh["encoder.conv_in.weight"], r0["encoder.conv_in.weight"])  # it did train
    config = (tmp_path / "run" / "config.json").read_text()
    assert "- processes: 2" in (tmp_path / "run" / "MODEL_CARD.md").read_text() and '"step": 4' in config
