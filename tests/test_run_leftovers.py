"""What a killed training run leaves behind: temp files of an interrupted save are removed (or, when
the kill came inside the rename window, the save is finished), a complete checkpoint is never
touched, and a fresh run after a kill starts a fresh log.jsonl."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from reverie import checkpoint as ckpt
from reverie.models.autoencoder import PRESETS
from reverie.train.autoencoder_task import AutoencoderTask
from reverie.train.config import TrainConfig
from reverie.train.loop import LOG_FILE, train

CFG = TrainConfig(steps=4, batch_size=4, warmup_steps=1, precision="fp32", log_every=1, threads=1)


def _task() -> AutoencoderTask:
    rng = np.random.default_rng(0)
    frames = np.repeat(np.repeat(rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8), 4, 1), 4, 2)
    return AutoencoderTask.from_frames(frames, PRESETS["tiny"], CFG, val_frames=frames[:4])


def _files(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != LOG_FILE}


def _steps(run: Path) -> list[int]:
    return [json.loads(ln)["step"] for ln in (run / LOG_FILE).read_text().splitlines()]


def test_temps_of_a_killed_save_are_removed_and_the_checkpoint_kept(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_task(), CFG, run)
    before = _files(run)
    # A kill while the next save wrote its temps: partial files, no final file of that save.
    for name in ckpt.CHECKPOINT_FILES[:3]:
        (run / f".{name}.{'ab' * 16}.tmp").write_bytes(b"partial")
    (run / "notes.tmp").write_text("not ours")  # anything else is left alone
    removed = ckpt.clean_stale_temps(run)
    assert sorted(p.name for p in removed) == sorted(
        f".{n}.{'ab' * 16}.tmp" for n in ckpt.CHECKPOINT_FILES[:3]
    )
    assert _files(run) == {**before, "notes.tmp": b"not ours"}  # the complete checkpoint, untouched
    config, _ = ckpt.load_run(run)
    ckpt.load_train_state(run, config)


def test_a_kill_inside_the_rename_window_is_finished(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    train(_task(), CFG, old)
    shutil.copytree(old, new)
    train(_task(), TrainConfig(**{**CFG.__dict__, "steps": 6}), new, resume=True)
    new_id = json.loads((new / ckpt.CONFIG_FILE).read_text())["save_id"]
    # What a kill after the first two renames leaves: the new save's first two files in place,
    # the rest still under their temp names, next to the old save's files.
    killed = tmp_path / "killed"
    shutil.copytree(old, killed)
    for i, name in enumerate(ckpt.CHECKPOINT_FILES):
        target = killed / (name if i < 2 else f".{name}.{new_id}.tmp")
        shutil.copy(new / name, target)
    ckpt.clean_stale_temps(killed)
    assert _files(killed) == _files(new)
    config, state = ckpt.load_run(killed)
    assert config["step"] == 6 and config["save_id"] == new_id
    ckpt.load_train_state(killed, config)
    assert all(torch.equal(v, ckpt.load_run(new)[1][k]) for k, v in state.items())


def test_training_starts_by_cleaning_temps(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    stale = run / f".{ckpt.MODEL_FILE}.{'cd' * 16}.tmp"
    stale.write_bytes(b"a first save killed mid-write")
    train(_task(), CFG, run)
    assert not stale.exists() and not list(run.glob(".*.tmp"))


def test_a_fresh_run_after_a_kill_starts_a_fresh_log(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    # A run killed before its first checkpoint: log lines (the last cut off), no checkpoint.
    (run / LOG_FILE).write_text('{"step": 1, "loss": 9}\n{"step": 2, "loss": 8}\n{"step": 3, "lo')
    train(_task(), CFG, run)
    assert _steps(run) == [1, 2, 3, 4]


def test_resume_drops_a_log_line_cut_off_by_a_kill(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_task(), CFG, run)
    with open(run / LOG_FILE, "a") as f:
        f.write('{"step": 5, "loss": 1}\n{"step": 6, "lo')  # written after the checkpoint, then killed
    train(_task(), TrainConfig(**{**CFG.__dict__, "steps": 6}), run, resume=True)
    assert _steps(run) == [1, 2, 3, 4, 5, 6]
