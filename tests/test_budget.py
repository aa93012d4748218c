"""`--minutes` is the whole command's budget: time spent before training and the final samples and
evaluation are inside it, measured on a clock the test moves (no timing on the real clock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from reverie.train.budget import Budget, Start
from reverie.train.config import TrainConfig
from reverie.train.loop import train

STEP_S, SAMPLES_S, EVAL_S, BEFORE_S = 1.0, 3.0, 5.0, 10.0


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class SlowTask:
    """A tiny model whose steps, samples and evaluation cost known seconds on `clock`."""

    name = "autoencoder"

    def __init__(self, clock: Clock) -> None:
        self.clock, self.samples, self.evals = clock, 0, 0

    def build_model(self) -> nn.Module:
        return nn.Linear(2, 1)

    def batch(self, step: int, rank: int, world_size: int) -> dict[str, torch.Tensor]:
        self.clock.t += STEP_S
        return {"x": torch.randn(4, 2)}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return model(batch["x"]).pow(2).mean(), {}

    def log_samples(self, model: nn.Module, writer: Any, step: int) -> None:
        self.clock.t += SAMPLES_S
        self.samples += 1

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        self.clock.t += EVAL_S
        self.evals += 1
        return {"mse": 0.0}

    def model_config(self) -> dict:
        return {}

    def card(self) -> str:
        return "# slow task"

    def frames_per_batch(self) -> int:
        return 4


def _run(tmp_path: Path, minutes: float) -> tuple[SlowTask, Budget, float]:
    clock = Clock()
    task = SlowTask(clock)
    start = Start(wall=clock.t - BEFORE_S, cpu=0.0)  # the command spent 10 s reading its data
    budget = Budget(minutes, 0.0, start, clock=clock, cpu_clock=lambda: 0.0)
    cfg = TrainConfig(steps=10_000, minutes=minutes, warmup_steps=1, threads=1, precision="fp32")
    train(task, cfg, tmp_path / "run", budget=budget)  # type: ignore[arg-type]
    return task, budget, clock.t - start.wall


def test_the_whole_command_fits_the_budget(tmp_path: Path, capsys: Any) -> None:
    task, budget, total = _run(tmp_path, minutes=1.0)
    assert total <= 60.0  # data, training, final samples and evaluation: all inside the minute
    # The final work is timed once before training (samples + evaluation), then done at the end.
    assert task.samples == 2 and task.evals == 2
    assert budget.reserve_wall_s >= SAMPLES_S + EVAL_S
    margin = budget.reserve_wall_s - SAMPLES_S - EVAL_S  # kept for the save and for noise
    assert total >= 60.0 - STEP_S - margin - 1e-6  # and training used the rest
    out = capsys.readouterr().out
    assert "budget 1 min for the whole command: 10 s spent before training" in out
    assert "final samples and evaluation" in out


def test_a_budget_spent_before_training_still_saves_a_run(tmp_path: Path, capsys: Any) -> None:
    task, _, _ = _run(tmp_path, minutes=0.1)  # 6 s, but 10 s went to reading the data
    assert "the budget is spent already" in capsys.readouterr().out
    assert (tmp_path / "run" / "config.json").exists() and task.evals == 2


def test_without_a_budget_nothing_is_measured_up_front(tmp_path: Path) -> None:
    clock = Clock()
    task = SlowTask(clock)
    cfg = TrainConfig(steps=3, warmup_steps=1, threads=1, precision="fp32")
    train(task, cfg, tmp_path / "run")  # type: ignore[arg-type]
    assert task.samples == 1 and task.evals == 1  # only the final ones
