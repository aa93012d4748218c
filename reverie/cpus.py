"""How many CPUs this process may run on (the default thread count everywhere), and whether the
hardware does bf16 math natively (where it does not, bf16 is emulated and slower than fp32).

`os.cpu_count()` counts the machine's CPUs, not the ones this process is allowed (`taskset`, a
container's cpuset). On 2 cores with one of them pinned away, two torch threads on one CPU spin
against each other: measured here, tiny ops then ran many times slower than on one thread.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def usable_cpus() -> int:
    """CPUs in this process's affinity mask (the machine's count where the OS does not say)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def native_bf16(device: str | torch.device = "cpu") -> bool:
    """bf16 math in hardware: a CUDA GPU that supports it, a CPU with AVX512-BF16 or AMX. Measured
    on a 2-core AMD EPYC with AVX2 only: the autoencoder encodes 15 frames/s under bf16 autocast
    against 111 in fp32, where a CPU with AVX512-BF16 runs bf16 about twice as fast as fp32."""
    import torch  # here, not above: the recorder's workers import this module and need no torch

    d = torch.device(device)
    if d.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, c, lambda: False)()) for c in checks)


def uses_bf16(precision: str, device: str | torch.device = "cpu") -> bool:
    """Whether `precision` (auto | bf16 | fp32) runs in bf16 on `device`: "auto" where it is native."""
    return precision == "bf16" or (precision == "auto" and native_bf16(device))
