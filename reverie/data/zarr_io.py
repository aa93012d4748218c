"""One episode as one zarr v3 group on disk: lossless uint8 frames, zstd with checksums.

Layout of `NNNNNN.zarr/`: arrays obs (T, H, W, 3) uint8, act (T,) int64 or (T, D) float32 (absent
for video), rew (T,) float32, term / trunc (T,) bool, cap (T,) int32 indices into the deduplicated
`caption_table` kept in the group attributes beside `length` and `meta`.

Every chunk is written, even an all-zero one (zarr would otherwise skip it and silently read zeros
back if a chunk file went missing), and zstd carries a content checksum, so a damaged or missing
chunk is an error naming its file rather than wrong frames.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import numpy as np

from reverie.data.episode import Episode, check_episode
from reverie.errors import ReverieError
from reverie.worlds.action_spec import ActionSpec

EPISODE_FORMAT = 1
FRAMES_PER_CHUNK = 64  # 64 frames of 64x64 = 768 KiB raw: big enough for zstd, small enough to seek


def _codecs() -> Any:
    from zarr.codecs import ZstdCodec

    return ZstdCodec(level=3, checksum=True)


def write_episode(path: str, ep: Episode) -> None:
    """Write `ep` as a new zarr group at `path` (which must not exist). Not atomic by itself."""
    import zarr

    table: dict[str, int] = {}
    cap = np.array([table.setdefault(c, len(table)) for c in ep.captions], np.int32)
    attrs: dict[str, Any] = {
        "reverie_episode": EPISODE_FORMAT,
        "length": len(ep),
        "caption_table": list(table),
        "meta": ep.meta,
    }
    g = zarr.open_group(path, mode="w-", attributes=attrs)
    arrays: dict[str, np.ndarray] = {
        "obs": ep.obs,
        "rew": ep.rew,
        "term": ep.term,
        "trunc": ep.trunc,
        "cap": cap,
    }
    if ep.act is not None:
        arrays["act"] = ep.act
    for name, a in arrays.items():
        z = g.create_array(
            name,
            shape=a.shape,
            dtype=a.dtype,
            chunks=(FRAMES_PER_CHUNK, *a.shape[1:]) if name == "obs" else a.shape,
            compressors=_codecs(),
            fill_value=0,
            config={"write_empty_chunks": True},
        )
        z[...] = a


def read_attrs(path: str) -> dict[str, Any]:
    """The group attributes (length, meta, caption_table) without opening the arrays."""
    meta_file = os.path.join(path, "zarr.json")
    try:
        with open(meta_file, encoding="utf-8") as f:
            attrs = json.load(f)["attributes"]
        if not isinstance(attrs, dict):
            raise TypeError("attributes is not an object")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ReverieError(f"{meta_file}: episode metadata is missing or unreadable ({e})") from e
    missing = [k for k in ("reverie_episode", "length", "caption_table", "meta") if k not in attrs]
    if missing:
        raise ReverieError(f"{meta_file}: episode metadata lacks {', '.join(missing)}")
    if attrs["reverie_episode"] > EPISODE_FORMAT:
        raise ReverieError(
            f"{meta_file}: episode format {attrs['reverie_episode']} is newer than this reverie "
            f"(reads up to {EPISODE_FORMAT}); upgrade reverie"
        )
    return attrs


def _chunk_file(path: str, name: str, k: int, ndim: int) -> str:
    # zarr v3 default chunk keys: "c/<i>/<j>/...", one index per dimension; we chunk only along T.
    return os.path.join(path, name, "c", str(k), *["0"] * (ndim - 1))


def _check_array(
    path: str, name: str, z: Any, dtype: np.dtype, shape: tuple[int, ...], lo: int, hi: int
) -> None:
    where = os.path.join(path, name)
    if z.dtype != dtype or tuple(z.shape) != shape:
        raise ReverieError(
            f"{where}: expected {np.dtype(dtype).name} {shape}, found {z.dtype} {tuple(z.shape)}"
        )
    c0 = z.chunks[0]
    for k in range(lo // c0, -(-hi // c0)):
        f = _chunk_file(path, name, k, len(shape))
        if not os.path.isfile(f):
            raise ReverieError(f"{f}: chunk file is missing (episode damaged)")


async def _read_all(path: str, names: list[str], lo: int, hi: int) -> tuple[list[Any], list[np.ndarray]]:
    import zarr.api.asynchronous as za

    g = await za.open_group(path, mode="r")
    arrays: list[Any] = list(await asyncio.gather(*(g.getitem(n) for n in names)))
    data = await asyncio.gather(*(a.getitem(slice(lo, hi)) for a in arrays))
    return arrays, [np.asarray(d) for d in data]


def _diagnose(path: str, name: str, dtype: np.dtype, shape: tuple[int, ...], lo: int, hi: int) -> None:
    """Slow path after a failed read: raise a ReverieError naming the missing or corrupt file."""
    import zarr

    where = os.path.join(path, name)
    try:
        z: Any = zarr.open_group(path, mode="r")[name]
    except KeyError as e:
        raise ReverieError(f"{where}: array is missing from the episode") from e
    except Exception as e:
        raise ReverieError(f"{path}: not a readable zarr group ({e})") from e
    _check_array(path, name, z, dtype, shape, lo, hi)
    c0 = z.chunks[0]
    for k in range(lo // c0, -(-hi // c0)):
        try:
            z[k * c0 : (k + 1) * c0]
        except Exception as e:
            raise ReverieError(
                f"{_chunk_file(path, name, k, len(shape))}: chunk is corrupt ({type(e).__name__}: {e})"
            ) from e


def read_episode(
    path: str,
    *,
    width: int,
    height: int,
    action_spec: ActionSpec | dict[str, Any],
    frames: slice | None = None,
) -> Episode:
    """Read and validate one episode (or the frames `frames` of it); errors name the bad file."""
    from zarr.core.sync import sync

    attrs = read_attrs(path)
    T = int(attrs["length"])
    lo, hi = (0, T) if frames is None else frames.indices(T)[:2]
    hi = max(lo, hi)
    expect: dict[str, tuple[np.dtype, tuple[int, ...]]] = {"obs": (np.dtype(np.uint8), (T, height, width, 3))}
    spec = ActionSpec.of(action_spec)
    if spec.is_discrete:
        expect["act"] = (np.dtype(np.int64), (T,))
    elif spec.is_box:
        expect["act"] = (np.dtype(np.float32), (T, spec.action_dim))
    for name, dtype in (("rew", np.float32), ("term", np.bool_), ("trunc", np.bool_), ("cap", np.int32)):
        expect[name] = (np.dtype(dtype), (T,))
    names = list(expect)
    # One round trip through zarr's event loop for all arrays: per-call overhead, not zstd,
    # dominates reading short episodes.
    try:
        arrays, data = sync(_read_all(path, names, lo, hi))
    except Exception:
        for name in names:
            _diagnose(path, name, *expect[name], lo, hi)
        raise ReverieError(f"{path}: episode is unreadable") from None
    for name, z in zip(names, arrays):
        _check_array(path, name, z, *expect[name], lo, hi)
    got = dict(zip(names, data))
    cap, table = got["cap"], attrs["caption_table"]
    if hi > lo and (cap.min() < 0 or cap.max() >= len(table)):
        raise ReverieError(f"{os.path.join(path, 'cap')}: caption index outside the caption table")
    captions = [table[i] for i in cap.tolist()]
    ep = Episode(got["obs"], got.get("act"), got["rew"], got["term"], got["trunc"], captions, attrs["meta"])
    if hi > lo:
        check_episode(ep, width=width, height=height, action_spec=spec, where=path)
    return ep


def fsync_tree(path: str) -> None:
    """fsync every file and directory under `path` (children first), so a rename publishes whole data."""
    for root, _dirs, files in os.walk(path, topdown=False):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(root)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
