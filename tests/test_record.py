"""Recording: the episode convention, worker-count independence, and the record/data commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import gymnasium
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from reverie.cli import app
from reverie.data.record import RecordConfig, record, record_episode
from reverie.data.store import EpisodeStore
from reverie.errors import ReverieError
from reverie.sizes import Size

SPEC = {"type": "discrete", "n": 4, "names": ["noop", "a", "b", "c"]}


class CountingEnv(gymnasium.Env):
    """Each frame is filled with 10 * (the action that led to it); ends after `limit` steps."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.action_space = gymnasium.spaces.Discrete(4)

    def _frame(self, a: int) -> np.ndarray:
        return np.full((8, 8, 3), 10 * a, np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        self.t = 0
        return self._frame(0), {"caption": f"start {seed}"}

    def step(self, action: Any) -> Any:
        self.t += 1
        return (
            self._frame(int(action)),
            float(action),
            self.t == self.limit,
            False,
            {"caption": f"after {action}"},
        )


class CyclePolicy:
    def reset(self, seed: int | None) -> None:
        self.k = 0

    def __call__(self, obs: Any, info: dict[str, Any]) -> int:
        self.k += 1
        return 1 + self.k % 3


def test_record_episode_follows_the_convention() -> None:
    ep = record_episode(
        CountingEnv(limit=100), CyclePolicy(), SPEC, seed=7, steps=12, meta={"policy": "cycle"}
    )
    assert len(ep) == 12 and ep.meta == {"seed": 7, "policy": "cycle"}
    assert ep.act is not None and ep.act.dtype == np.int64 and ep.act[0] == 0
    assert np.array_equal(ep.obs[:, 0, 0, 0], 10 * ep.act)  # act[i] led to obs[i]
    assert ep.rew[0] == 0 and np.array_equal(ep.rew[1:], ep.act[1:].astype(np.float32))
    assert ep.captions[0] == "start 7" and ep.captions[3] == f"after {ep.act[3]}"
    short = record_episode(CountingEnv(limit=5), CyclePolicy(), SPEC, seed=0, steps=12)
    assert len(short) == 6 and short.term.tolist() == [False] * 5 + [True]


def _pygame_or_skip() -> None:
    pytest.importorskip("pygame")  # CartPole renders with pygame


def test_worker_count_does_not_change_the_data(tmp_path: Path) -> None:
    _pygame_or_skip()
    cfg = RecordConfig("CartPole-v1", Size(24, 24), episodes=4, steps=25, seed=10, policy="random")
    one = record(cfg, str(tmp_path / "one"), progress=False)
    cfg.workers = 2
    two = record(cfg, str(tmp_path / "two"), progress=False)
    assert one.seeds == two.seeds == [10, 11, 12, 13]
    assert one.lengths.tolist() == two.lengths.tolist()
    for i in range(4):
        a, b = one[i], two[i]
        assert np.array_equal(a.obs, b.obs) and np.array_equal(a.act, b.act) and a.captions == b.captions  # type: ignore[arg-type]
    assert not np.array_equal(one[0].obs[-1], one[1].obs[-1])  # seeds matter


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_record_info_show_cli(tmp_path: Path) -> None:
    _pygame_or_skip()
    out = str(tmp_path / "cp")
    r = run("record", "--world", "CartPole-v1", "-n", "3", "-t", "20", "--size", "32x24", "--seed", "5",
            "--policy", "random", "--out", out, "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    store = EpisodeStore.open(out)
    assert store.seeds == [5, 6, 7] and store.size == Size(32, 24) and store.meta["policy"] == "random"
    assert store[0].meta["policy_info"]["policy"] == "random"

    # Appending seeds already recorded is refused before anything is written.
    r = run(
        "record",
        "--world",
        "CartPole-v1",
        "-n",
        "2",
        "-t",
        "20",
        "--size",
        "32x24",
        "--seed",
        "7",
        "--out",
        out,
        "-q",
    )
    assert isinstance(r.exception, ReverieError) and "seeds 7" in str(r.exception)
    assert len(EpisodeStore.open(out)) == 3
    r = run(
        "record",
        "--world",
        "CartPole-v1",
        "-n",
        "1",
        "-t",
        "20",
        "--size",
        "48x24",
        "--seed",
        "8",
        "--out",
        out,
        "-q",
    )
    assert isinstance(r.exception, ReverieError) and "size" in str(r.exception)
    r = run("record", "--world", "CartPole-v1", "-n", "1", "-t", "20", "--size", "32x24", "--seed", "8",
            "--policy", "random", "--out", out, "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert EpisodeStore.open(out).seeds == [5, 6, 7, 8]

    r = run("data", "info", out, "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["episodes"] == 4 and info["frames"] == int(store.lengths.sum()) + len(
        EpisodeStore.open(out)[3]
    )
    assert info["seeds"] == "5-8" and info["world"] == "CartPole-v1" and info["size"] == "32x24"
    assert sum(info["actions"]["histogram"].values()) == info["frames"]
    assert info["captions"]["examples"]
    r = run("data", "info", out)
    assert r.exit_code == 0 and "CartPole-v1" in r.output

    r = run("data", "show", out, "--out", str(tmp_path / "sheet.png"), "--frames", "4")
    assert r.exit_code == 0, r.output
    sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
    assert sheet.shape[1] == 4 * (32 * 2 + 2) + 2 and sheet.std() > 10
    r = run("data", "show", out, "--out", str(tmp_path / "clip.mp4"), "--episodes", "2")
    assert r.exit_code == 0, r.output
    with av.open(str(tmp_path / "clip.mp4")) as c:
        n = sum(1 for _ in c.decode(video=0))
    lengths = EpisodeStore.open(out).lengths
    assert n == lengths[0] + lengths[3]  # episodes spread over the store: first and last


def test_record_refuses_foreign_dirs_and_leaves_nothing_on_bad_input(tmp_path: Path) -> None:
    d = tmp_path / "notes"
    d.mkdir()
    (d / "todo.txt").write_text("mine")
    r = run("record", "--world", "CartPole-v1", "-n", "1", "-t", "5", "--out", str(d), "-q")
    assert isinstance(r.exception, ReverieError) and "refusing to overwrite" in str(r.exception)
    assert [p.name for p in d.iterdir()] == ["todo.txt"]
    r = run("record", "--world", "NoSuchWorld-v9", "-n", "1", "-t", "5", "--out", str(tmp_path / "x"), "-q")
    assert isinstance(r.exception, ReverieError) and "unknown world" in str(r.exception)
    assert not (tmp_path / "x").exists()
    r = run(
        "record",
        "--world",
        "CartPole-v1",
        "--policy",
        "sleepy",
        "-n",
        "1",
        "-t",
        "5",
        "--out",
        str(tmp_path / "y"),
        "-q",
    )
    assert isinstance(r.exception, ReverieError) and "unknown policy" in str(r.exception)
    assert not (tmp_path / "y").exists()


def test_record_builtin_world(tmp_path: Path) -> None:
    cfg = RecordConfig("reverie/Dungeon-v0", Size(32, 32), episodes=2, steps=15, seed=0)
    store = record(cfg, str(tmp_path / "d"), progress=False)
    assert store.lengths.tolist() == [15, 15]
    ep = store[1]
    assert ep.act is not None and ep.act[0] == 0 and all(ep.captions)


def test_failed_first_episode_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _pygame_or_skip()
    import reverie.data.record as rec

    def broken(args: Any) -> Any:
        raise RuntimeError("world crashed")

    monkeypatch.setattr(rec, "_record_one", broken)
    cfg = RecordConfig("CartPole-v1", Size(24, 24), episodes=2, steps=5, policy="random")
    with pytest.raises(RuntimeError, match="world crashed"):
        record(cfg, str(tmp_path / "new"), progress=False)
    assert not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuntimeError):
        record(cfg, str(tmp_path / "empty"), progress=False)
    assert list((tmp_path / "empty").iterdir()) == []


@pytest.mark.slow
def test_sigkilled_record_command_keeps_complete_episodes(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "k"
    cmd = [sys.executable, "-m", "reverie", "record", "--world", "reverie/Dungeon-v0", "-n", "500", "-t", "30",
           "-j", "2", "-q", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (out / "episodes").is_dir() or len(os.listdir(out / "episodes")) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, "recorder did not get going"
            time.sleep(0.05)
        time.sleep(np.random.default_rng().uniform(0, 0.5))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the recorder and its workers, mid-episode
        proc.wait()
    store = EpisodeStore.open(out)
    n = len(store)
    assert n >= 3 and store.seeds == list(range(n))
    for i in range(n):
        assert len(store[i]) == 30
    r = run(
        "record",
        "--world",
        "reverie/Dungeon-v0",
        "-n",
        "1",
        "-t",
        "30",
        "--seed",
        str(n),
        "--out",
        str(out),
        "-q",
    )
    assert r.exit_code == 0, r.output
    assert EpisodeStore.open(out).seeds == list(range(n + 1))
