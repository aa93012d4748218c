"""`record -j N` workers die with their parent: a kill -9 of the recorder leaves no process behind.

The recorder itself is killed (not a pool built by the test), so a recorder that stops using the
pool factory whose workers watch their parent fails here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def _workers(pid: int) -> list[int]:
    """The recorder's pool workers (spawned interpreters running spawn_main)."""
    found = []
    for k in _descendants(pid):
        try:
            if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes():
                found.append(k)
        except OSError:
            pass
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads process state from /proc")
def test_workers_exit_when_the_recorder_is_killed(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "reverie", "record", "--world", "reverie/Dungeon-v0", "--episodes", "40",
           "--steps", "500", "--size", "32x32", "--out", str(tmp_path / "data"), "-j", "2", "-q"]  # fmt: skip
    rec = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(_workers(rec.pid)) < 2 and rec.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # the workers are recording, past their start-up
        everyone = _descendants(rec.pid)
        assert len(_workers(rec.pid)) == 2, "the recorder never started its two workers"
    finally:
        rec.send_signal(signal.SIGKILL)  # no cleanup runs: only the workers' own watch can act
        rec.wait()
    deadline = time.monotonic() + 60  # a bound so a regression fails instead of hanging
    while any(_alive(p) for p in everyone) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [p for p in everyone if _alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, f"processes {left} outlived the recorder"
