"""Extra action streams of a store: actions written after recording (e.g. latent actions inferred from
the frames), kept beside the recorded ones, which are never touched.

    DIR/streams/NAME.npz    spec (JSON), episode names, lengths, act (sum of lengths,) int64

One file per stream, written to a temporary name and renamed over the old one, so a labelling that is
interrupted leaves the store exactly as it was. A stream covers the episodes that existed when it was
written; reading it after more episodes were appended is refused (label again).
"""

from __future__ import annotations

import io
import json
import os
import re
from typing import Any

import numpy as np

from reverie.data.store import EpisodeStore, write_file_atomic
from reverie.errors import ReverieError
from reverie.worlds.action_spec import ActionSpec

RECORDED = "recorded"  # the name of the actions recorded with the frames
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def stream_path(store: EpisodeStore, name: str) -> str:
    if name == RECORDED or not _NAME.match(name):
        raise ReverieError(
            f"bad action stream name {name!r}: lower-case letters, digits, '-' and '_', not {RECORDED!r}"
        )
    return os.path.join(store.path, "streams", f"{name}.npz")


def list_streams(store: EpisodeStore) -> list[str]:
    """Names of the store's extra action streams (the recorded actions are not one of them)."""
    d = os.path.join(store.path, "streams")
    names = os.listdir(d) if os.path.isdir(d) else []
    return sorted(n[: -len(".npz")] for n in names if n.endswith(".npz") and _NAME.match(n[: -len(".npz")]))


def write_stream(store: EpisodeStore, name: str, spec: dict[str, Any], act: list[np.ndarray]) -> str:
    """Write one discrete action per frame of every episode as stream `name`, atomically; its path."""
    path = stream_path(store, name)
    typed = ActionSpec.from_dict(spec)
    if not typed.is_discrete:
        raise ReverieError(f"action streams are discrete, got {typed.kind!r}")
    if [len(a) for a in act] != [int(n) for n in store.lengths]:
        raise ReverieError(f"stream {name!r}: {len(act)} episodes of actions do not match {store.path}")
    flat = np.concatenate(act).astype(np.int64) if act else np.zeros(0, np.int64)
    if len(flat) and (flat.min() < 0 or flat.max() >= typed.n):
        raise ReverieError(f"stream {name!r}: actions must lie in 0..{typed.n - 1}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    episodes = [os.path.basename(store.episode_path(i)) for i in range(len(store))]
    buf = io.BytesIO()
    np.savez(
        buf,
        spec=np.frombuffer(json.dumps(spec).encode(), np.uint8),
        episodes=np.array(episodes, dtype=str),
        lengths=store.lengths,
        act=flat,
    )
    write_file_atomic(path, buf.getvalue())
    return path


def read_stream(store: EpisodeStore, name: str) -> tuple[dict[str, Any], list[np.ndarray]]:
    """(spec, one int64 array per episode) of stream `name`; refused if the store changed since."""
    path = stream_path(store, name)
    if not os.path.isfile(path):
        have = list_streams(store)
        raise ReverieError(
            f"{store.path} has no action stream {name!r} (it has: {', '.join([RECORDED, *have])}); "
            "write one with `reverie data label-actions`"
        )
    try:
        with np.load(path) as f:
            spec = json.loads(bytes(f["spec"]).decode())
            episodes, lengths, flat = list(f["episodes"]), f["lengths"], f["act"]
    except (OSError, ValueError, KeyError) as e:
        raise ReverieError(f"{path}: unreadable action stream ({e}); label the store again") from e
    now = [os.path.basename(store.episode_path(i)) for i in range(len(store))]
    if episodes != now or lengths.tolist() != store.lengths.tolist():
        raise ReverieError(
            f"{path} labels {len(episodes)} episodes ({int(lengths.sum())} frames) but {store.path} now holds "
            f"{len(now)} ({int(store.lengths.sum())} frames); label the store again"
        )
    return spec, np.split(flat, np.cumsum(lengths)[:-1]) if len(lengths) else []
