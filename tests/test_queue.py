"""Admission queue: at most N play, the rest wait in order, a leaver promotes the next at once."""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path

import pytest

from reverie.serve import queue as Q
from reverie.serve.app import BackgroundServer, ServeConfig, create_app
from reverie.serve.client import PlayClient
from reverie.serve.queue import AdmissionQueue, Ticket
from reverie.serve.session_memory import Remembered


def test_queue_positions_promotion_and_expected_wait() -> None:
    async def scenario() -> None:
        q = AdmissionQueue(max_active=2, time_limit_s=60)
        told: dict[str, list[tuple[int, float]]] = {n: [] for n in "abcde"}
        tickets = {n: Ticket(on_position=lambda p, w, g, n=n: told[n].append((p, w))) for n in "abcde"}
        for n in "abcde":
            q.join(tickets[n])
        assert [t.position for t in tickets.values()] == [0, 0, 1, 2, 3]
        assert tickets["a"].admitted.is_set() and not tickets["c"].admitted.is_set()
        waits = [told[n][-1][1] for n in "cde"]
        assert 0 < waits[0] <= waits[1] <= waits[2]  # later in line, longer wait
        assert waits[2] >= waits[0] + Q.MIN_GUESS_S - 0.1  # position 3 of 2 slots: a whole round more
        q.leave(tickets["d"])  # a waiting client gives up: the line closes up
        assert tickets["e"].position == 2 and told["e"][-1][0] == 2
        q.leave(tickets["a"])  # a player leaves: the next in line plays at once
        await asyncio.wait_for(q.wait(tickets["c"]), 1)
        assert tickets["c"].position == 0 and tickets["e"].position == 1
        assert len(q.active) == 2 and len(q) == 1
        q.leave(tickets["a"])  # leaving twice is harmless
        assert len(q.active) == 2
        with pytest.raises(ValueError):
            AdmissionQueue(0)

    asyncio.run(scenario())


def _crowd(
    monkeypatch: pytest.MonkeyPatch,
    arrival_gap_s: float,
    play_s: tuple[float, float],
    remembered: Remembered | None = None,
    seed: int = 0,
    out: list[AdmissionQueue] | None = None,
) -> list[tuple[float, float, bool]]:
    """50 players on 2 slots on a simulated clock: (first expected wait, real wait, is_guess) each."""
    rng, now = random.Random(seed), [0.0]
    monkeypatch.setattr(Q.time, "monotonic", lambda: now[0])
    events = [(i * arrival_gap_s, "join", i) for i in range(50)]
    first: dict[int, tuple[float, bool]] = {}
    joined: dict[int, float] = {}
    admitted: dict[int, float] = {}

    async def scenario() -> None:
        q = AdmissionQueue(max_active=2, remembered=remembered)
        if out is not None:
            out.append(q)

        def told(i: int, position: int, wait_s: float, guess: bool) -> None:
            if position == 0:
                admitted[i] = now[0]
                events.append((now[0] + rng.uniform(*play_s), "leave", i))
            else:
                first.setdefault(i, (wait_s, guess))

        tickets = {i: Ticket(on_position=lambda p, w, g, i=i: told(i, p, w, g)) for i in range(50)}
        while events:
            events.sort()
            now[0], kind, i = events.pop(0)
            if kind == "join":
                joined[i] = now[0]
                q.join(tickets[i])
            else:
                q.leave(tickets[i])

    asyncio.run(scenario())
    return [(first[i][0], admitted[i] - joined[i], first[i][1]) for i in sorted(first)]


def test_expected_waits_are_measured_once_a_session_ended_and_say_when_they_guess(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits = _crowd(monkeypatch, arrival_gap_s=0.5, play_s=(2.0, 4.0))
    guesses = [g for _, _, g in waits]
    first_measured = guesses.index(False)
    assert first_measured > 0 and not any(guesses[first_measured:])  # guesses only before any end
    measured = [(w, real) for w, real, g in waits if not g]
    within_2x = sum(real / 2 <= w <= 2 * real for w, real in measured)
    assert within_2x >= 0.8 * len(measured), measured
    # Before anything ended, a guess is a few rounds of a short session, not minutes per round.
    for w, real, g in waits[:first_measured]:
        assert g and w <= 4 * Q.MIN_GUESS_S and w <= 10 * real


def test_a_remembered_session_length_makes_the_first_waits_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    # Long sessions (20-60 s) all arriving at once: with nothing known, the first waits are guesses
    # and far too short; a server that remembers the last crowd tells each its wait within 2x.
    first_crowd: list[AdmissionQueue] = []
    cold = _crowd(monkeypatch, arrival_gap_s=0.1, play_s=(20.0, 60.0), out=first_crowd)
    assert cold[0][2] and sum(real / 2 <= w <= 2 * real for w, real, _ in cold) < len(cold) / 2
    remembered = first_crowd[0].remembered()
    assert remembered is not None and remembered.sessions == 50 and 30 < remembered.mean_s < 50
    warm = _crowd(monkeypatch, arrival_gap_s=0.1, play_s=(20.0, 60.0), remembered=remembered, seed=1)
    assert not any(g for _, _, g in warm)  # measured on earlier sessions, not a guess
    assert all(real / 2 <= w <= 2 * real for w, real, _ in warm if real > 5), warm
    # The memory counts as at most PRIOR_SESSIONS of today's sessions: a new crowd soon outvotes it.
    q = AdmissionQueue(1, remembered=Remembered(mean_s=1000.0, sessions=10_000))
    now = [0.0]
    monkeypatch.setattr(Q.time, "monotonic", lambda: now[0])
    for _ in range(30):
        t = Ticket()
        q.join(t)
        now[0] += 5.0
        q.leave(t)
    left = q.remembered()
    assert left is not None and left.sessions == 10_030 and left.mean_s < 60


def test_the_server_remembers_session_lengths_across_restarts(tmp_path: Path) -> None:
    memory = tmp_path / "cache" / "sessions.json"
    cfg = ServeConfig(world="reverie/Dungeon-v0", size="32x32", max_sessions=1, session_memory=str(memory))
    with BackgroundServer(create_app(cfg)) as url, PlayClient(url) as a:
        a.start(seed=1)
        a.next_frame()
        time.sleep(0.5)
    saved = json.loads(memory.read_text())["entries"]["reverie/Dungeon-v0"]
    assert saved["sessions"] == 1 and 0.4 < saved["mean_s"] < 30
    assert not [p for p in memory.parent.iterdir() if p.name != "sessions.json"]  # no temp files left
    with BackgroundServer(create_app(cfg)) as url, PlayClient(url) as a, PlayClient(url) as b:
        a.start(seed=1)
        b.wait_for("hello")
        b.send({"type": "hello"})
        pos = b.wait_for("queue")
        assert pos["wait_is_guess"] is False and 0 < pos["expected_wait_s"] <= saved["mean_s"] + 0.1


def test_more_clients_than_slots_over_the_wire() -> None:
    app = create_app(ServeConfig(world="reverie/Dungeon-v0", size="32x32", max_sessions=1))
    srv = app.state.reverie
    with BackgroundServer(app) as url, PlayClient(url) as a:
        a.start(seed=1)
        a.next_frame()
        with PlayClient(url) as b, PlayClient(url) as c:
            b.wait_for("hello")
            b.send({"type": "hello", "seed": 2})
            assert b.wait_for("queue")["position"] == 1
            c.wait_for("hello")
            c.send({"type": "hello"})
            pos = c.wait_for("queue")
            assert pos["position"] == 2 and pos["max_sessions"] == 1 and pos["expected_wait_s"] > 0
            assert pos["wait_is_guess"] is True  # no session has ended yet
            b.send({"type": "input", "seq": 1, "keys": ["w"]})  # input while waiting is ignored
            assert len(srv.queue.active) == 1 and len(srv.queue) == 2
            a.close()  # a disconnect frees the slot at once
            info = b.wait_for("session", timeout=10)
            assert info["seed"] == 2
            b.next_frame()
            assert c.wait_for("queue")["position"] == 1
        deadline = time.monotonic() + 10
        while (srv.queue.active or len(srv.queue)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not srv.queue.active and len(srv.queue) == 0  # every slot came back


def test_time_limit_ends_a_session_and_admits_the_next() -> None:
    app = create_app(ServeConfig(world="reverie/Dungeon-v0", size="32x32", max_sessions=1, time_limit_s=1.5))
    with BackgroundServer(app) as url, PlayClient(url) as a, PlayClient(url) as b:
        a.start()
        b.wait_for("hello")
        b.send({"type": "hello"})
        assert b.wait_for("queue")["position"] == 1
        assert a.wait_for("end", timeout=15)["code"] == "time_limit"
        b.wait_for("session", timeout=15)
