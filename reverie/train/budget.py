"""A training command's time budget covers the whole command: what ran before training (reading and
encoding the data), the steps, and the final samples and held-out evaluation.

The final work's cost is measured once before the first step (it also gives the run's starting
metrics), and training stops early enough to leave it that much time:

    budget = Budget(minutes=4, cpu_minutes=0, start=Start.now())   # at the command's start
    ...
    budget.measure_final(final_work)     # runs it once, keeps that much (plus a margin) in reserve
    if budget.over(): stop
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Start:
    """When a command began, on the wall clock and in this process's CPU time."""

    wall: float
    cpu: float

    @classmethod
    def now(cls) -> Start:
        return cls(time.monotonic(), time.process_time())


class Budget:
    """Wall-clock and CPU-time limits (0: none) counted from `start`."""

    def __init__(
        self,
        minutes: float,
        cpu_minutes: float,
        start: Start,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        self.wall_s, self.cpu_s = minutes * 60, cpu_minutes * 60
        self.start, self.clock, self.cpu_clock = start, clock, cpu_clock
        self.reserve_wall_s = self.reserve_cpu_s = 0.0
        self.before = (0.0, 0.0)  # (wall, CPU) seconds spent before training began

    @property
    def limited(self) -> bool:
        return self.wall_s > 0 or self.cpu_s > 0

    def spent(self) -> tuple[float, float]:
        """(wall seconds, CPU seconds) since the command began."""
        return self.clock() - self.start.wall, self.cpu_clock() - self.start.cpu

    def measure_final(self, work: Callable[[], object]) -> None:
        """Run the work that follows the last step once, and keep its cost (10% and 1 s more, for
        the save and for noise) for the end."""
        self.before = self.spent()
        wall0, cpu0 = self.clock(), self.cpu_clock()
        work()
        self.reserve_wall_s = 1.1 * (self.clock() - wall0) + 1.0
        self.reserve_cpu_s = 1.1 * (self.cpu_clock() - cpu0) + 1.0

    def over(self) -> bool:
        """True once what is left is no more than the reserve for the final work."""
        wall, cpu = self.spent()
        return (self.wall_s > 0 and wall + self.reserve_wall_s >= self.wall_s) or (
            self.cpu_s > 0 and cpu + self.reserve_cpu_s >= self.cpu_s
        )

    def plan(self) -> str:
        """One line, said before training starts: what the budget pays for."""
        wall, cpu = self.before
        parts = []
        if self.wall_s > 0:
            parts.append(
                f"budget {self.wall_s / 60:g} min for the whole command: {wall:.0f} s spent before training, "
                f"training until {max(0.0, self.wall_s - self.reserve_wall_s) / 60:.1f} min, then "
                f"{self.reserve_wall_s:.0f} s of final samples and evaluation"
            )
        if self.cpu_s > 0:
            parts.append(
                f"CPU budget {self.cpu_s / 60:g} min: {cpu:.0f} s used before training, "
                f"{self.reserve_cpu_s:.0f} s kept for final samples and evaluation"
            )
        if self.over():
            parts.append("the budget is spent already: one training step, then the final work")
        return "; ".join(parts)
