"""Admission: at most `max_active` sessions play; the rest wait in order and are told their
position and expected wait. Leaving (a disconnect, a timeout) frees the slot at once and promotes
the next in line. Runs on the event loop only, so it needs no locks."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# Until sessions have ended, the expected wait assumes a session lasts this long.
DEFAULT_SESSION_S = 120.0


@dataclass(eq=False)
class Ticket:
    """One connection's place: waiting (position >= 1) or admitted (position 0, told once)."""

    on_position: Callable[[int, float], None] = lambda position, wait_s: None
    admitted: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = 0.0
    position: int = -1


class AdmissionQueue:
    def __init__(self, max_active: int, time_limit_s: float | None = None) -> None:
        if max_active < 1:
            raise ValueError("max_active must be at least 1")
        self.max_active = max_active
        self.time_limit_s = time_limit_s
        self.active: set[Ticket] = set()
        self.waiting: deque[Ticket] = deque()
        self._mean_s = min(DEFAULT_SESSION_S, time_limit_s or math.inf)
        self._ended = 0

    def __len__(self) -> int:
        return len(self.waiting)

    def join(self, ticket: Ticket) -> None:
        """Admit now if a slot is free, else queue (and tell everyone waiting their position)."""
        if len(self.active) < self.max_active and not self.waiting:
            self._admit(ticket)
        else:
            self.waiting.append(ticket)
            self._announce()

    async def wait(self, ticket: Ticket) -> None:
        await ticket.admitted.wait()

    def leave(self, ticket: Ticket) -> None:
        """Idempotent: a ticket that played frees its slot; one that waited leaves the line."""
        if ticket in self.active:
            self.active.discard(ticket)
            dur = time.monotonic() - ticket.started
            self._ended += 1
            # Running mean that forgets: the recent crowd predicts the next wait best.
            w = max(0.1, 1.0 / self._ended)
            self._mean_s = (1 - w) * self._mean_s + w * dur
        elif ticket in self.waiting:
            self.waiting.remove(ticket)
        ticket.position = -1
        while self.waiting and len(self.active) < self.max_active:
            self._admit(self.waiting.popleft())
        self._announce()

    def expected_wait_s(self, position: int) -> float:
        """Seconds until `position` (1 = next) plays: whole rounds of slots freeing up, where the
        oldest active sessions have used part of their time already."""
        if position <= 0:
            return 0.0
        now = time.monotonic()
        remaining = sorted(max(0.0, self._mean_s - (now - t.started)) for t in self.active)
        if not remaining:
            return 0.0
        rounds, slot = divmod(position - 1, self.max_active)
        return round(remaining[min(slot, len(remaining) - 1)] + rounds * self._mean_s, 1)

    def _admit(self, ticket: Ticket) -> None:
        ticket.started = time.monotonic()
        ticket.position = 0
        self.active.add(ticket)
        ticket.admitted.set()
        ticket.on_position(0, 0.0)

    def _announce(self) -> None:
        for i, t in enumerate(self.waiting, start=1):
            t.position = i
            t.on_position(i, self.expected_wait_s(i))
