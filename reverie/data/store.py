"""The on-disk episode store: a directory of zarr episodes plus one JSON file of store metadata.

    DIR/reverie_store.json     world, action spec, width, height, fps, version, created, format
    DIR/episodes/000000.zarr   one zarr v3 group per episode (see zarr_io.py)
    DIR/.tmp/                  episodes being written; stale entries are removed by the next writer

Appending is crash-safe without any index file to keep in sync: an episode is written into .tmp,
fsynced, then renamed into episodes/ (a directory rename is atomic), and the store's contents are
whatever episodes/ lists. A kill -9 at any moment leaves every visible episode complete.

Example:
    store = EpisodeStore.create("runs/out/dungeon", world="reverie/Dungeon-v0",
                                action_spec=spec, size=Size(64, 64), fps=30.0)
    store.append(episode)
    ep = EpisodeStore.open("runs/out/dungeon")[0]
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np

from reverie.data.episode import Episode, check_action_spec, check_episode
from reverie.data.zarr_io import fsync_dir, fsync_tree, read_attrs, read_episode, write_episode
from reverie.errors import ReverieError
from reverie.sizes import Size, parse_size
from reverie.worlds.action_spec import ActionSpec

__all__ = ["STORE_FILE", "Episode", "EpisodeStore", "is_store"]

STORE_FILE = "reverie_store.json"
STORE_FORMAT = 1
_EPISODE = re.compile(r"^(\d{6,})\.zarr$")
_REQUIRED = ("reverie_store", "world", "action_spec", "width", "height", "fps", "version", "created")


def is_store(path: str | os.PathLike[str]) -> bool:
    return os.path.isfile(os.path.join(path, STORE_FILE))


def _jsonable(obj: Any) -> Any:
    """obj as it reads back from JSON (tuples become lists), so specs compare equal after a round trip."""
    try:
        return json.loads(json.dumps(obj))
    except TypeError as e:
        raise ReverieError(f"not JSON-able: {e}") from e


def write_file_atomic(path: str, data: bytes) -> None:
    """Write `data` to a temporary name beside `path`, fsync it, rename it over `path`: a reader sees
    the old file or the new one, never part of one."""
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    fsync_dir(os.path.dirname(path) or ".")


def _write_json_atomic(path: str, obj: Any) -> None:
    write_file_atomic(path, json.dumps(obj, indent=1).encode())


class EpisodeStore:
    """Episodes of one world at one size and action spec; `store[i]` reads and validates episode i."""

    def __init__(self, path: str, meta: dict[str, Any]) -> None:
        self.path = path
        self._meta = meta
        self.action_spec: dict[str, Any] = meta["action_spec"]  # the JSON form, as stored
        self.spec = ActionSpec.from_dict(self.action_spec)  # typed
        self.size = Size(int(meta["width"]), int(meta["height"]))
        self._names: list[str] = []
        self._lengths: list[int] = []
        self._seeds: list[int | None] = []
        self.refresh()

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        world: str,
        action_spec: dict[str, Any],
        size: Size | str,
        fps: float,
        **meta: Any,
    ) -> EpisodeStore:
        """Make a new, empty store in `path` (absent or an empty directory); never overwrites."""
        import reverie

        path = os.fspath(path)
        if is_store(path):
            raise ReverieError(
                f"{path} already holds an episode store; open it to append (EpisodeStore.open)"
            )
        if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
            raise ReverieError(
                f"{path} exists and is not an empty directory nor an episode store; refusing to overwrite it: "
                "choose a new or empty directory"
            )
        size = parse_size(size)
        if not (isinstance(fps, int | float) and fps > 0):
            raise ReverieError(f"bad fps {fps!r}: expected a positive number of frames per second")
        store_meta = {
            "reverie_store": STORE_FORMAT,
            "world": world,
            "action_spec": check_action_spec(_jsonable(action_spec)),
            "width": size.width,
            "height": size.height,
            "fps": float(fps),
            "version": reverie.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **meta,
        }
        try:
            json.dumps(store_meta)
        except TypeError as e:
            raise ReverieError(f"store metadata must be JSON-able: {e}") from e
        try:
            os.makedirs(path, exist_ok=True)
            _write_json_atomic(os.path.join(path, STORE_FILE), store_meta)
        except OSError as e:
            raise ReverieError(f"could not create an episode store in {path}: {e.strerror or e}") from e
        return cls(path, store_meta)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> EpisodeStore:
        """Open an existing store; errors name the file that is missing or malformed."""
        path = os.fspath(path)
        meta_file = os.path.join(path, STORE_FILE)
        if not os.path.isdir(path):
            raise ReverieError(f"{path}: no such episode store (record one with `reverie record`)")
        try:
            with open(meta_file, encoding="utf-8") as f:
                meta = json.load(f)
        except FileNotFoundError as e:
            raise ReverieError(f"{path} is not an episode store: {STORE_FILE} is missing") from e
        except (OSError, ValueError) as e:
            raise ReverieError(f"{meta_file}: unreadable store metadata ({e})") from e
        if not isinstance(meta, dict):
            raise ReverieError(f"{meta_file}: store metadata must be a JSON object")
        missing = [k for k in _REQUIRED if k not in meta]
        if missing:
            raise ReverieError(f"{meta_file}: store metadata lacks {', '.join(missing)}")
        if meta["reverie_store"] > STORE_FORMAT:
            raise ReverieError(
                f"{meta_file}: store format {meta['reverie_store']} is newer than this reverie"
            )
        try:
            check_action_spec(meta["action_spec"])
            parse_size((meta["width"], meta["height"]))
        except ReverieError as e:
            raise ReverieError(f"{meta_file}: {e}") from e
        return cls(path, meta)

    def refresh(self) -> None:
        """Re-list episodes/ (another process may have appended)."""
        ep_dir = os.path.join(self.path, "episodes")
        names = sorted(
            (n for n in (os.listdir(ep_dir) if os.path.isdir(ep_dir) else []) if _EPISODE.match(n)),
            key=lambda n: int(n.split(".")[0]),
        )
        known = dict(zip(self._names, zip(self._lengths, self._seeds)))
        lengths, seeds = [], []
        for n in names:
            if n not in known:
                attrs = read_attrs(os.path.join(ep_dir, n))
                seed = attrs["meta"].get("seed") if isinstance(attrs["meta"], dict) else None
                known[n] = (int(attrs["length"]), seed)
            lengths.append(known[n][0])
            seeds.append(known[n][1])
        self._names, self._lengths, self._seeds = names, lengths, seeds

    # -- reading -------------------------------------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        return dict(self._meta)

    @property
    def world(self) -> str:
        return str(self._meta["world"])

    @property
    def fps(self) -> float:
        return float(self._meta["fps"])

    @property
    def lengths(self) -> np.ndarray:
        return np.array(self._lengths, np.int64)

    @property
    def seeds(self) -> list[int | None]:
        """Seed of each episode (None for episodes without one, e.g. imported video)."""
        return list(self._seeds)

    def __len__(self) -> int:
        return len(self._names)

    def episode_path(self, i: int) -> str:
        if not -len(self) <= i < len(self):
            raise IndexError(f"episode {i} out of range: the store at {self.path} has {len(self)} episodes")
        return os.path.join(self.path, "episodes", self._names[i])

    def read(self, i: int, frames: slice | None = None) -> Episode:
        """Episode i, or only its frames `frames` (a slice along T)."""
        return read_episode(
            self.episode_path(i),
            width=self.size.width,
            height=self.size.height,
            action_spec=self.spec,
            frames=frames,
        )

    def __getitem__(self, i: int) -> Episode:
        return self.read(i)

    def __iter__(self) -> Iterator[Episode]:
        for i in range(len(self)):
            yield self.read(i)

    # -- writing -------------------------------------------------------------------------------
    def check_compatible(self, *, world: str, action_spec: dict[str, Any], size: Size) -> None:
        """Refuse to append data of another world, action spec or size."""
        ours = (self.world, self.action_spec, self.size)
        theirs = (world, _jsonable(action_spec), size)
        for what, a, b in zip(("world", "action spec", "size"), ours, theirs):
            if a != b:
                raise ReverieError(f"{self.path} holds {what} {a}, not {b}; record into another directory")

    def check_new_seeds(self, seeds: Sequence[int]) -> None:
        overlap = sorted(set(seeds) & {s for s in self._seeds if s is not None})
        if overlap:
            shown = ", ".join(map(str, overlap[:10])) + (" ..." if len(overlap) > 10 else "")
            free = max((s for s in self._seeds if s is not None), default=-1) + 1
            raise ReverieError(
                f"{self.path} already holds episodes with seeds {shown} ({len(overlap)} overlapping); "
                f"choose seeds that are not recorded yet, e.g. --seed {free}"
            )

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        # flock is released by the kernel when a writer dies, so a kill -9 never leaves it stuck.
        with open(os.path.join(self.path, ".lock"), "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def append(self, ep: Episode) -> int:
        """Write `ep` as the next episode, atomically; returns its index."""
        check_episode(
            ep, width=self.size.width, height=self.size.height, action_spec=self.spec, where="episode"
        )
        try:
            json.dumps(ep.meta)
        except TypeError as e:
            raise ReverieError(f"episode meta must be JSON-able: {e}") from e
        with self._write_lock():
            self.refresh()
            if ep.meta.get("seed") is not None:
                self.check_new_seeds([ep.meta["seed"]])
            tmp_root = os.path.join(self.path, ".tmp")
            # Holding the lock, anything in .tmp belongs to a writer that died: clean it.
            shutil.rmtree(tmp_root, ignore_errors=True)
            ep_dir = os.path.join(self.path, "episodes")
            tmp = os.path.join(tmp_root, uuid.uuid4().hex + ".zarr")
            index = int(self._names[-1].split(".")[0]) + 1 if self._names else 0
            name = f"{index:06d}.zarr"
            try:
                os.makedirs(tmp_root, exist_ok=True)
                os.makedirs(ep_dir, exist_ok=True)
                write_episode(tmp, ep)
                fsync_tree(tmp)
                os.rename(tmp, os.path.join(ep_dir, name))
            except OSError as e:
                shutil.rmtree(tmp, ignore_errors=True)
                raise ReverieError(
                    f"could not write an episode into {self.path}: {e.strerror or e} "
                    "(disk full?); the store is unchanged and still valid"
                ) from e
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            with suppress(OSError):  # the episode is already visible; this only hastens durability
                fsync_dir(ep_dir)
                os.rmdir(tmp_root)
            self._names.append(name)
            self._lengths.append(len(ep))
            self._seeds.append(ep.meta.get("seed"))
        return len(self._names) - 1
