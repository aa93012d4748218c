"""Admission: at most `max_active` sessions play; the rest wait in order and are told their
position and expected wait. Leaving (a disconnect, a timeout) frees the slot at once and promotes
the next in line. Runs on the event loop only, so it needs no locks.

The expected wait is built from what is known: how long ended sessions lasted (a mean that forgets,
so the recent crowd predicts best) and how long the active ones have played. A server that played
before starts from the mean it remembered (serve/session_memory.py), weighed like at most
PRIOR_SESSIONS sessions so that today's crowd soon outvotes it. With neither, the wait is a guess,
and says so: each active session is assumed to be halfway through (a session seen e seconds in is
as likely to be in its first half as in its second), never past the time limit.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from reverie.serve.session_memory import Remembered

# Until a session has ended, the guessed session length is at least this: sessions that started a
# moment ago say nothing yet, and "0 s" would be a promise.
MIN_GUESS_S = 10.0
PRIOR_SESSIONS = 10  # a remembered mean counts as at most this many of today's sessions
QUEUE_REFRESH_S = 2.0  # how often the waiting are told their (changing) expected wait


@dataclass(eq=False)
class Ticket:
    """One connection's place: waiting (position >= 1) or admitted (position 0, told once).
    `on_position(position, expected_wait_s, is_guess)`."""

    on_position: Callable[[int, float, bool], None] = lambda position, wait_s, guess: None
    admitted: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = 0.0
    position: int = -1


class AdmissionQueue:
    def __init__(
        self, max_active: int, time_limit_s: float | None = None, remembered: Remembered | None = None
    ) -> None:
        if max_active < 1:
            raise ValueError("max_active must be at least 1")
        self.max_active = max_active
        self.time_limit_s = time_limit_s
        self.active: set[Ticket] = set()
        self.waiting: deque[Ticket] = deque()
        self._mean_s = 0.0  # mean length of ended sessions (meaningful once _ended > 0)
        self._ended = 0  # sessions behind _mean_s, a remembered mean counting as <= PRIOR_SESSIONS
        self._sessions = 0  # sessions behind _mean_s in all, remembered ones included
        if remembered is not None:
            self._mean_s = remembered.mean_s
            self._ended = min(remembered.sessions, PRIOR_SESSIONS)
            self._sessions = remembered.sessions

    def remembered(self) -> Remembered | None:
        """What to remember for the next start: the mean session length so far (None: none ended)."""
        return Remembered(self._mean_s, self._sessions) if self._sessions else None

    def __len__(self) -> int:
        return len(self.waiting)

    def join(self, ticket: Ticket) -> None:
        """Admit now if a slot is free, else queue (and tell everyone waiting their position)."""
        if len(self.active) < self.max_active and not self.waiting:
            self._admit(ticket)
        else:
            self.waiting.append(ticket)
            self.refresh()

    async def wait(self, ticket: Ticket) -> None:
        await ticket.admitted.wait()

    def leave(self, ticket: Ticket) -> None:
        """Idempotent: a ticket that played frees its slot; one that waited leaves the line."""
        if ticket in self.active:
            self.active.discard(ticket)
            dur = time.monotonic() - ticket.started
            self._ended += 1
            self._sessions += 1
            # Running mean that forgets: the recent crowd predicts the next wait best.
            w = max(0.1, 1.0 / self._ended)
            self._mean_s = (1 - w) * self._mean_s + w * dur
        elif ticket in self.waiting:
            self.waiting.remove(ticket)
        ticket.position = -1
        while self.waiting and len(self.active) < self.max_active:
            self._admit(self.waiting.popleft())
        self.refresh()

    def expected_wait(self, position: int) -> tuple[float, bool]:
        """(seconds until `position` (1 = next) plays, whether that is a guess): whole rounds of
        slots freeing up, where the active sessions have used part of their time already."""
        if position <= 0:
            return 0.0, False
        now = time.monotonic()
        played = [now - t.started for t in self.active]
        if not played:
            return 0.0, False
        guess = self._ended == 0
        limit = self.time_limit_s or float("inf")
        if guess:  # each active session halfway through: as long again to go
            remaining = sorted(min(max(e, MIN_GUESS_S), limit - e) for e in played)
            length = min(max(2 * sum(played) / len(played), MIN_GUESS_S), limit)
        else:
            length = min(self._mean_s, limit)
            remaining = sorted(max(0.0, length - e) for e in played)
        rounds, slot = divmod(position - 1, self.max_active)
        return round(remaining[min(slot, len(remaining) - 1)] + rounds * length, 1), guess

    def expected_wait_s(self, position: int) -> float:
        return self.expected_wait(position)[0]

    def refresh(self) -> None:
        """Tell everyone waiting their position and expected wait (also called every QUEUE_REFRESH_S,
        since the wait shrinks as the active sessions play on)."""
        for i, t in enumerate(self.waiting, start=1):
            t.position = i
            t.on_position(i, *self.expected_wait(i))

    def _admit(self, ticket: Ticket) -> None:
        ticket.started = time.monotonic()
        ticket.position = 0
        self.active.add(ticket)
        ticket.admitted.set()
        ticket.on_position(0, 0.0, False)
