"""Real start walks in a helper process, away from the clock thread's GIL.

A dream with no image and no prompt starts from a short seeded walk of the real world
(`backends.start_walk`). The walk's reset is mostly Python and small numpy calls (the Dungeon bakes
its textures and light for each seed: 0.3-0.5 s on one core), and on the engine's reset thread it held
the GIL against the clock thread, whose tick is hundreds of small torch calls: every join lifted the
other players' tick times for the half second it took. A `StartWalker` runs the walks in one helper
process instead: `python -m reverie.engine.start_walks WORLD WxH CONTINUOUS`, one JSON request line
per walk on its stdin, a JSON header line plus the frames (.npy bytes) on its stdout.

A plain subprocess rather than multiprocessing: spawn re-runs the user's main script in the child
(a script without a `__main__` guard would start itself again), and fork copies a process whose
threads may hold locks. The helper builds its world as soon as it starts (its imports and the env,
~1 s, are not the first player's wait), and exits when its stdin closes: with its parent.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
from typing import IO, Any

import numpy as np

from reverie.errors import ReverieError
from reverie.sizes import Size, parse_size


class StartWalker:
    """Start walks of one world, computed in a helper process (one walk at a time)."""

    def __init__(self, world: str, size: Size, continuous: bool) -> None:
        self.continuous = continuous
        self._lock = threading.Lock()
        args = [sys.executable, "-m", "reverie.engine.start_walks", world, f"{size.width}x{size.height}"]
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [*args, "box" if continuous else "discrete"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # a world's import chatter; errors come back in the header
        )

    def walk(self, seed: int) -> tuple[list[np.ndarray], list[Any], str | None]:
        """(frames, actions that led to them, the world's caption of the last frame or None) of the
        seeded start walk. Raises ReverieError with what building the world raised (a world not
        installed here), or BrokenPipeError when the helper is gone (closed, killed)."""
        with self._lock:
            proc = self._proc
            if proc is None or proc.stdin is None or proc.stdout is None:
                raise BrokenPipeError("the start walker is closed")
            try:
                proc.stdin.write(json.dumps({"seed": int(seed)}).encode() + b"\n")
                proc.stdin.flush()
                head_line = proc.stdout.readline()
                if not head_line:
                    raise BrokenPipeError("the start-walk helper exited")
                head = json.loads(head_line)
                payload = _read_exactly(proc.stdout, int(head.get("bytes", 0)))
            except (OSError, ValueError) as e:
                self._close_locked()
                raise BrokenPipeError(f"the start-walk helper failed: {e}") from e
        if not head.get("ok"):
            raise ReverieError(head.get("error", "the start walk failed"))
        frames = list(np.load(io.BytesIO(payload)))
        acts = [np.asarray(a, np.float32) if self.continuous else int(a) for a in head["acts"]]
        caption = head.get("caption")
        return frames, acts, caption if isinstance(caption, str) else None  # the helper's JSON

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # the helper's signal to exit
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _read_exactly(f: IO[bytes], n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = f.read(left)
        if not chunk:
            raise OSError(f"the start-walk helper stopped {left} bytes short")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _serve(world: str, size: Size, continuous: bool, requests: IO[bytes], out: IO[bytes]) -> None:
    """The helper's loop: one walk per request line until its input closes."""
    from reverie.engine.backends import make_env, start_walk

    env, error = None, None
    try:
        env = make_env(world, size, continuous=continuous)  # now, before the first player asks
    except Exception as e:  # reported with every request: the backend then walks no more
        error = f"cannot build {world} for start walks: {type(e).__name__}: {e}"
    for line in requests:
        payload = b""
        if env is None:
            head: dict[str, Any] = {"ok": False, "error": error}
        else:
            try:
                frames, acts, caption = start_walk(env, int(json.loads(line)["seed"]), size)
                buf = io.BytesIO()
                np.save(buf, np.stack(frames))
                payload = buf.getvalue()
                head = {
                    "ok": True, "acts": [np.asarray(a).tolist() for a in acts], "bytes": len(payload),
                    "caption": caption,
                }  # fmt: skip
            except Exception as e:
                head = {"ok": False, "error": f"start walk failed: {type(e).__name__}: {e}"}
        out.write(json.dumps(head).encode() + b"\n" + payload)
        out.flush()


def main(argv: list[str]) -> None:
    world, size, kind = argv[0], parse_size(argv[1]), argv[2]
    out = os.fdopen(os.dup(1), "wb")  # the protocol's own copy of stdout ...
    os.dup2(2, 1)  # ... and anything else printed (a library's banner) goes to stderr
    sys.stdout = sys.stderr
    _serve(world, size, kind == "box", sys.stdin.buffer, out)


if __name__ == "__main__":
    main(sys.argv[1:])
