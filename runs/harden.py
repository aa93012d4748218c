"""Hostile-client and crash measurements of the server, the recorder and the training loop.

    OMP_NUM_THREADS=1 .venv/bin/python runs/harden.py --json                  # everything (~10 minutes)
    OMP_NUM_THREADS=1 .venv/bin/python runs/harden.py --only fuzz --messages 20000 --json

fuzz: `reverie play --world reverie/Dungeon-v0` runs as its own process; one good player plays from
127.0.0.1 while hostile connections from 127.0.0.2 send every kind of bad message (random bytes and
unicode, broken and deeply nested JSON, ~2 MB JSON, integers like 10**400 in a ping's t and in an
axis, NaN, wrong types, unknown types, oversized reset images, floods past the rate limit), opening a
new connection whenever the server closes one. Measured: the good player's frames per second before
and during the fuzz, tracebacks in the server's output, the server's RSS before and after, /health.

queue: a server with 2 slots and 50 clients arriving within a few seconds, each playing 2-8 s (--play): every
client must play, and each queued client's first expected wait is compared with the wait it had. Twice:
on a server that never played (its first waits are guesses, marked so), then on the same server
restarted, which starts from the session lengths it remembered (`play --session-memory`).

kill: `reverie record -j 2` and `reverie train autoencoder` are killed with SIGKILL at random moments,
10 times each: leftover processes and temp files are counted, the store must open with whole
episodes only, and a training run resumed after every kill must end with the same weights, bit for
bit, as one that was never killed. These are measurements, not tests: the unit tests (tests/test_fuzz.py,
tests/test_hostile_clients.py, tests/test_run_leftovers.py, tests/test_record_workers.py) check the
behaviour itself on every run of the suite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from reverie.data.store import EpisodeStore
from reverie.serve.client import PlayClient

REVERIE = str(Path(sys.executable).with_name("reverie"))
WORLD = "reverie/Dungeon-v0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(args: list[str], out: int) -> tuple[subprocess.Popen[bytes], str]:
    """`reverie play --world WORLD ARGS` on a free port, its output to `out`; returns once /health answers."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([REVERIE, "play", "--world", WORLD, "--port", str(port), *args],
                              stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    for _ in range(300):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    return server, url


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def hostile_message(rng: random.Random) -> str | bytes:
    """One bad (or now and then good) client message; every case the server must survive."""
    # The ~2 MB messages (kinds 3 and 10) are 1 in 25 each: every one costs a WebSocket frame at the
    # size cap, and the per-address byte budget closes the connection after a few of them.
    kind = rng.choice((3, 10)) if rng.random() < 0.08 else rng.choice((0, 1, 2, 4, 5, 6, 7, 8, 9, 11, 12, 13))
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 600))
    if kind == 1:
        return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(1, 200)))
    if kind == 2:
        return '{"type": "input", "seq": 1, "keys": ["w"'  # cut off
    if kind == 3:
        return '{"type":"input","seq":1,"keys":[' + "1," * 1_000_000 + "1]}"  # ~2 MB of JSON
    if kind == 4:
        return "[" * rng.choice((1000, 100_000))  # deep nesting
    if kind == 5:
        return '{"type": "ping", "t": 1' + "0" * 400 + "}"  # 10**400
    if kind == 6:
        return '{"type": "input", "seq": 2, "axes": {"forward": 1' + "0" * 400 + "}}"
    if kind == 7:
        return '{"type": "input", "seq": 3, "axes": {"turn": NaN, "side": Infinity}}'
    if kind == 8:
        return json.dumps({"type": rng.choice(["input", "reset", "pause", "views", "hello"]),
                           "seq": rng.choice([None, -1, 2**70, "x", [], {}]), "keys": rng.choice([5, "w", [[1]], None]),
                           "views": rng.choice([7, ["nope"], None]), "paused": rng.choice([3, "yes"])})  # fmt: skip
    if kind == 9:
        return json.dumps({"type": rng.choice(["admin", "", "x" * 64, 7])})
    if kind == 10:
        return json.dumps({"type": "reset", "seq": 4, "image": "A" * (2 * 1024 * 1024 - 64)})
    if kind == 11:
        return json.dumps({"type": "reset", "seq": 5, "prompt": "p" * 10_000})
    return json.dumps({"type": "input", "seq": rng.randrange(1, 1000), "keys": [rng.choice("wasdqe")]})


def _hostile(url: str, n: int, seed: int, counts: dict[str, int], stop: threading.Event) -> None:
    """Send n hostile messages from 127.0.0.2, reconnecting whenever the server closes the socket."""
    rng = random.Random(seed)
    ws_url = url.replace("http://", "ws://") + "/ws"
    sent = 0
    while sent < n and not stop.is_set():
        try:
            with connect(ws_url, source_address=("127.0.0.2", 0), max_size=None, open_timeout=10) as ws:
                counts["connections"] += 1
                while sent < n:
                    ws.send(hostile_message(rng))
                    sent += 1
                    counts["sent"] += 1
                    if sent % 50 == 0:  # drain what the server answered
                        try:
                            while True:
                                ws.recv(timeout=0)
                        except TimeoutError:
                            pass
        except (WebSocketException, OSError, TimeoutError):
            counts["closed"] += 1
            time.sleep(0.05)


def _fps(client: PlayClient, seconds: float) -> float:
    t0, n = time.monotonic(), 0
    while time.monotonic() - t0 < seconds:
        client.next_frame(timeout=10)
        n += 1
        if n % 5 == 0:
            client.send_input(keys=["w", "a"])
    return n / (time.monotonic() - t0)


def run_fuzz(messages: int, connections: int) -> dict[str, Any]:
    fd, log = tempfile.mkstemp(suffix=".log")
    server, url = _serve(["--max-sessions", "8", "--session-memory", "none"], fd)
    os.close(fd)
    try:
        with PlayClient(url) as good:
            good.start(seed=1)
            _fps(good, 3.0)  # warm up
            rss0 = _rss_mb(server.pid)
            before = _fps(good, 10.0)
            counts = {"sent": 0, "connections": 0, "closed": 0}
            stop = threading.Event()
            per = -(-messages // connections)
            threads = [threading.Thread(target=_hostile, args=(url, per, i, counts, stop), daemon=True)
                       for i in range(connections)]  # fmt: skip
            t0 = time.monotonic()
            for t in threads:
                t.start()
            during, windows = [], 0
            while any(t.is_alive() for t in threads) and time.monotonic() - t0 < 600:
                during.append(_fps(good, 5.0))
                windows += 1
            stop.set()
            fuzz_s = time.monotonic() - t0
            _fps(good, 10.0)  # settle, and read the frames that queued while nobody read
            after = _fps(good, 5.0)
            rss1 = _rss_mb(server.pid)
            health = httpx.get(url + "/health", timeout=5).json().get("status")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    text = Path(log).read_text(errors="replace")
    os.unlink(log)
    sent = counts["sent"]
    mean_during = sum(during) / max(1, len(during))
    return {
        "part": "fuzz", "messages": sent, "hostile_connections_opened": counts["connections"],
        "closed_by_server": counts["closed"], "fuzz_s": round(fuzz_s, 1),
        "fps_before": round(before, 1), "fps_during": round(mean_during, 1),
        "fps_during_worst_5s": round(min(during, default=0.0), 1), "fps_after": round(after, 1),
        "fps_ratio": round(mean_during / before, 3), "tracebacks": text.count("Traceback"),
        "server_log_lines": len(text.splitlines()), "rss_mb_before": round(rss0, 1),
        "rss_mb_after": round(rss1, 1), "rss_ratio": round(rss1 / rss0, 3), "health_after": health,
        "bars": {"messages>=10000": sent >= 10_000, "fps_ratio>=0.9": mean_during >= 0.9 * before,
                 "no_tracebacks": "Traceback" not in text, "rss_within_10%": rss1 <= 1.1 * rss0,
                 "healthy": health == "ok"},
    }  # fmt: skip


def _queue_client(
    url: str, i: int, rng: random.Random, play_s: tuple[float, float], out: list[dict[str, Any]]
) -> None:
    """Arrive, take a slot or wait for one, play a random while, leave; note the first estimate."""
    row: dict[str, Any] = {"client": i}
    try:
        with PlayClient(url, timeout=600) as c:
            c.wait_for("hello")
            t0 = time.monotonic()
            c.send({"type": "hello", "seed": i})
            while True:
                m = c.recv()
                if isinstance(m, dict) and m["type"] == "queue" and "first_estimate_s" not in row:
                    row |= {"first_estimate_s": m["expected_wait_s"], "guess": m.get("wait_is_guess"),
                            "position": m["position"]}  # fmt: skip
                if isinstance(m, dict) and m["type"] == "session":
                    break
            row["waited_s"] = time.monotonic() - t0
            end = time.monotonic() + rng.uniform(*play_s)
            while time.monotonic() < end:
                c.next_frame()
            row["played"] = True
    except Exception as e:  # a client that fails is counted, not fatal
        row["error"] = repr(e)
    out.append(row)


def run_queue(clients: int, play_s: tuple[float, float], slots: int = 2) -> list[dict[str, Any]]:
    """Two crowds: one on a server that never played (its first waits are guesses, and say so), then
    one on the same server restarted, which remembers how long the first crowd's sessions lasted."""
    with tempfile.TemporaryDirectory() as tmp:
        memory = Path(tmp) / "sessions.json"
        return [_queue_crowd(clients, play_s, slots, memory, start) for start in ("new", "restarted")]


def _queue_crowd(
    clients: int, play_s: tuple[float, float], slots: int, memory: Path, start: str
) -> dict[str, Any]:
    args = ["--max-sessions", str(slots), "--max-per-address", str(clients + 8), "--size", "32x32",
            "--session-memory", str(memory)]  # fmt: skip
    server, url = _serve(args, subprocess.DEVNULL)
    rows: list[dict[str, Any]] = []
    try:
        rng = random.Random(0)
        threads = []
        for i in range(clients):
            threads.append(
                threading.Thread(target=_queue_client, args=(url, i, random.Random(i), play_s, rows))
            )
            threads[-1].start()
            time.sleep(rng.uniform(0.0, 0.2))  # all arrive within a few seconds
        for t in threads:
            t.join(timeout=900)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    queued = [r for r in rows if "first_estimate_s" in r and r.get("waited_s", 0) > 0.5]
    ratios = sorted(r["first_estimate_s"] / r["waited_s"] for r in queued)
    measured = [r["first_estimate_s"] / r["waited_s"] for r in queued if not r["guess"]]
    within = [0.5 <= x <= 2.0 for x in ratios]
    return {
        "part": "queue", "server": start, "clients": clients, "slots": slots, "play_s": list(play_s), "played": sum(bool(r.get("played")) for r in rows),
        "errors": [r["error"] for r in rows if "error" in r][:5], "queued": len(queued),
        "first_estimate_over_real_wait": {"min": round(ratios[0], 2) if ratios else None,
                                          "median": round(ratios[len(ratios) // 2], 2) if ratios else None,
                                          "max": round(ratios[-1], 2) if ratios else None},
        "within_2x": f"{sum(within)}/{len(within)}", "guesses": sum(bool(r["guess"]) for r in queued),
        "within_2x_measured": f"{sum(0.5 <= x <= 2.0 for x in measured)}/{len(measured)}",
        "bars": {"all_played": all(r.get("played") for r in rows) and len(rows) == clients,
                 "first_estimates_within_2x": bool(within) and all(within)},
    }  # fmt: skip


def _children(pid: int) -> list[int]:
    """Every descendant of pid, read from /proc (the workers a kill must take down with it)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            kids = (task / "children").read_text().split() if (task / "children").exists() else []
            out += [int(k) for k in kids]
            todo += [int(k) for k in kids]
    return out


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(p)
    return alive


def _kill_later(proc: subprocess.Popen[bytes], rng: random.Random, lo: float, hi: float) -> list[int]:
    time.sleep(rng.uniform(lo, hi))
    kids = _children(proc.pid)
    proc.kill()
    proc.wait()
    return kids


def run_kill(kills: int, seed: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="reverie-harden-"))
    store = work / "data"
    orphans, rec_done = 0, 0
    for i in range(kills):  # record -j 2, killed mid-episode
        cmd = [REVERIE, "record", "--world", WORLD, "--episodes", "6", "--steps", "300", "--size", "32x32",
               "--seed", str(1000 * i), "--out", str(store), "-j", "2", "-q"]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kids = _kill_later(proc, rng, 1.5, 6.0)
        time.sleep(3.0)
        orphans += len(_alive(kids))
        rec_done += proc.returncode == 0
    final = subprocess.run([REVERIE, "record", "--world", WORLD, "--episodes", "1", "--steps", "50", "--size",
                            "32x32", "--seed", "99999", "--out", str(store), "-q"], capture_output=True)  # fmt: skip
    lengths = [int(n) for n in EpisodeStore.open(store).lengths]  # opening checks the store
    tmp_left = sorted(p.name for p in (store / ".tmp").glob("*")) if (store / ".tmp").exists() else []
    record = {
        "kills": kills, "orphan_workers": orphans, "episodes": len(lengths),
        "partial_episodes": sum(n not in (300, 50) for n in lengths), "tmp_left_after_next_write": tmp_left,
        "next_record_ok": final.returncode == 0, "finished_before_the_kill": rec_done,
    }  # fmt: skip

    # train autoencoder: an uninterrupted run, then the same run killed `kills` times and resumed
    args = ["--data", str(store), "--preset", "tiny", "--steps", "1500", "--set", "batch_size=8",
            "--set", "checkpoint_minutes=0.03", "--set", "threads=1"]  # fmt: skip
    ref, run = work / "ref", work / "run"
    subprocess.run(
        [REVERIE, "train", "autoencoder", *args, "--out", str(ref)], capture_output=True, check=True
    )
    temps_seen, killed = 0, 0
    for _ in range(kills):
        resume = ["--resume"] if (run / "config.json").exists() else []
        proc = subprocess.Popen([REVERIE, "train", "autoencoder", *args, "--out", str(run), *resume],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        kids = _kill_later(proc, rng, 4.0, 12.0)
        killed += proc.returncode != 0
        orphans += len(_alive(kids))
        temps_seen += len(list(run.glob(".*.tmp")))
        log = run / "log.jsonl"
        if log.exists():
            steps = [json.loads(x)["step"] for x in log.read_text().splitlines() if x.strip()]
            if len(steps) != len(set(steps)):
                record["duplicated_log_steps"] = True
    resume = ["--resume"] if (run / "config.json").exists() else []
    subprocess.run(
        [REVERIE, "train", "autoencoder", *args, "--out", str(run), *resume], capture_output=True, check=True
    )
    from safetensors.torch import load_file

    a, b = load_file(ref / "model.safetensors"), load_file(run / "model.safetensors")
    exact = a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)
    steps = [json.loads(x)["step"] for x in (run / "log.jsonl").read_text().splitlines() if x.strip()]
    train = {
        "kills": kills, "killed_mid_run": killed, "temps_left_by_kills": temps_seen,
        "temps_left_at_end": len(list(run.glob(".*.tmp"))), "exact_resume": exact,
        "log_steps_unique": len(steps) == len(set(steps)),
    }  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    return {
        "part": "kill", "record": record, "train": train, "orphan_processes": orphans,
        "bars": {"no_orphans": orphans == 0, "store_whole": record["partial_episodes"] == 0 and not tmp_left,
                 "no_temps_at_end": train["temps_left_at_end"] == 0, "exact_resume": exact,
                 "log_steps_unique": train["log_steps_unique"]},
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="fuzz,queue,kill", help="comma-separated parts: fuzz, queue, kill")
    ap.add_argument("--clients", type=int, default=50, help="clients of the queue run (2 play at once)")
    ap.add_argument("--play", type=float, nargs=2, default=(2.0, 8.0), metavar=("MIN", "MAX"),
                    help="seconds each queue client plays (uniform); players' real sessions are minutes")  # fmt: skip
    ap.add_argument("--messages", type=int, default=12_000, help="hostile messages in the fuzz")
    ap.add_argument("--connections", type=int, default=4, help="hostile connections sending at once")
    ap.add_argument("--kills", type=int, default=10, help="SIGKILLs of record and of train, each")
    ap.add_argument("--json", action="store_true", help="one JSON line per part (default: indented)")
    a = ap.parse_args()
    parts = {"fuzz": lambda: [run_fuzz(a.messages, a.connections)], "queue": lambda: run_queue(a.clients, tuple(a.play)),
             "kill": lambda: [run_kill(a.kills)]}  # fmt: skip
    for name in a.only.split(","):
        if name not in parts:
            ap.error(f"unknown part {name!r}: accepted: {', '.join(parts)}")
        for r in parts[name]():
            print(json.dumps(r) if a.json else json.dumps(r, indent=1), flush=True)


if __name__ == "__main__":
    main()
