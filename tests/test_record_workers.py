"""`record -j N` workers die with their parent: a kill -9 of the recorder leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

# The parent: a pool from record's own factory, two workers busy for an hour, their pids printed.
PARENT = """
import os, sys, time
from reverie.data.record import worker_pool
pool = worker_pool(2)
futures = [pool.submit(time.sleep, 3600) for _ in range(2)]
time.sleep(0.5)
while len(pool._processes) < 2:
    time.sleep(0.05)
print(" ".join(str(p) for p in pool._processes), flush=True)
time.sleep(3600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process state from /proc")
def test_workers_exit_when_the_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        workers = [int(p) for p in parent.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(w) for w in workers)
    finally:
        parent.send_signal(signal.SIGKILL)  # no cleanup runs: only the workers' own watch can act
        parent.wait()
    deadline = time.monotonic() + 60  # a bound so a regression fails instead of hanging
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [w for w in workers if _alive(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    assert not left, f"workers {left} outlived their parent"
