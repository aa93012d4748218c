"""Per-client budgets: token buckets for messages and bytes, and byte budgets shared by an address.

A connection's messages are counted by its own bucket; its bytes by a bucket shared by every
connection from the same address, so closing a connection that sent too much and reconnecting does
not buy a fresh budget.
"""

from __future__ import annotations

import ctypes
import sys
import time

# Bytes per second one address may send, in bursts of BYTE_BURST: a player's input is ~100 bytes at
# up to 60 per second, a reset with an image one ~1.4 MB message, so a legitimate client stays far below.
BYTES_PER_S = 1024 * 1024
BYTE_BURST = 4 * 1024 * 1024


class TokenBucket:
    """`rate` tokens per second up to `burst` (default twice the rate); `take(n)` spends n if there."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate, self.burst = rate, 2 * rate if burst is None else burst
        self.tokens, self.t = self.burst, time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now

    def take(self, n: float = 1.0) -> bool:
        self._refill()
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False

    def full(self) -> bool:
        self._refill()
        return self.tokens >= self.burst


class ByteBudgets:
    """One byte bucket per client address, kept only while it is not full (a full bucket is the
    same as a new one), so the table holds just the addresses that sent something recently."""

    def __init__(self, rate: float = BYTES_PER_S, burst: float = BYTE_BURST) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, TokenBucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, address: str, n: int) -> bool:
        """Spend `n` bytes of `address`'s budget; False when it is spent (the bytes count anyway)."""
        b = self._buckets.get(address)
        if b is None:
            if len(self._buckets) > 1024:  # prune on growth only: a full bucket carries no state
                self._buckets = {a: x for a, x in self._buckets.items() if not x.full()}
            b = self._buckets[address] = TokenBucket(self.rate, self.burst)
        if b.take(n):
            return True
        b.tokens = 0.0  # refused bytes were still received: the budget stays spent
        return False


# glibc raises its mmap threshold to the size of every big buffer it frees, so after the first ~2 MB
# WebSocket message the next ones come from the heap, and freed heap memory is kept for reuse: the
# server's RSS grew with every hostile connection (runs/harden.py, 36,000 messages over 1,500
# connections: 139 -> 244 MB). Handing the free heap back every few seconds keeps RSS near where it
# started at no per-message cost (pinning the threshold instead made every such message a fresh
# mapping, and cost the other players' frame rate more than the memory was worth).
TRIM_EVERY_S = 5.0


def trim_heap() -> bool:
    """Give the C heap's free memory back to the OS; True where the C library can (Linux, glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        ctypes.CDLL(None).malloc_trim(0)  # 1 if it released memory, 0 if there was none to release
    except (OSError, AttributeError):  # another C library (musl has no malloc_trim)
        return False
    return True
