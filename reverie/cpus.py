"""How many CPUs this process may run on: the default thread count everywhere.

`os.cpu_count()` counts the machine's CPUs, not the ones this process is allowed (`taskset`, a
container's cpuset). On 2 cores with one of them pinned away, two torch threads on one CPU spin
against each other: measured here, tiny ops then ran many times slower than on one thread.
"""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """CPUs in this process's affinity mask (the machine's count where the OS does not say)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)
