"""Random training windows from an episode store, fast enough that data is never the bottleneck.

Episodes are decompressed once into one contiguous in-memory array (the training sets are small:
100k frames at 64x64 are 1.2 GB), so a batch is a single fancy-indexing gather instead of a zarr read
per window. A window never crosses an episode boundary.

A batch is a dict:
    obs      (B, W, H, W_px, 3) uint8        frames
    act      (B, W) int64 | (B, W, D) float32  act[:, i] led to obs[:, i]; zeros for video stores
    rew      (B, W) float32,  term (B, W) bool
    cap      (B, W) int32                     indices into `caption_table` (strings are deduplicated
                                              over the whole store: most frames share a few captions,
                                              so ids are what a text encoder should cache on)
    caption_table  list[str]                  the same list as `sampler.caption_table`
    episode  (B,) int64, start (B,) int64     where each window came from (store index, first frame)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from reverie.data.store import EpisodeStore
from reverie.errors import ReverieError


class WindowSampler:
    def __init__(
        self, store: EpisodeStore, window: int, *, episodes: Sequence[int] | None = None, cache: bool = True
    ) -> None:
        if window < 1:
            raise ReverieError(f"bad window {window}: expected at least 1 frame")
        self.store = store
        self.window = window
        self.cache = cache
        lengths = store.lengths
        chosen = list(range(len(store))) if episodes is None else [int(i) for i in episodes]
        for i in chosen:
            if not 0 <= i < len(store):
                raise ReverieError(f"episode {i} out of range: the store at {store.path} has {len(store)}")
        # Episodes shorter than one window cannot give a window; they are skipped, not padded.
        self.episodes = np.array([i for i in chosen if lengths[i] >= window], np.int64)
        if len(self.episodes) == 0:
            raise ReverieError(
                f"no episode of {store.path} holds a window of {window} frames "
                f"(longest: {int(lengths[chosen].max()) if chosen else 0}); use a shorter window"
            )
        n_windows = lengths[self.episodes] - window + 1
        # Window k (over all episodes) -> (episode slot, start) via the cumulative window counts.
        self._window_end = np.cumsum(n_windows)
        self.num_windows = int(self._window_end[-1])
        self.caption_table: list[str] = []
        self._caption_ids: dict[str, int] = {}
        self._spec = store.spec
        if cache:
            self._load()

    def _cap_ids(self, captions: list[str]) -> np.ndarray:
        ids = self._caption_ids
        for c in captions:
            if c not in ids:
                ids[c] = len(self.caption_table)
                self.caption_table.append(c)
        return np.array([ids[c] for c in captions], np.int32)

    def _empty_act(self, n: int) -> np.ndarray:
        if self._spec.is_box:
            return np.zeros((n, self._spec.action_dim), np.float32)
        return np.zeros(n, np.int64)

    def _load(self) -> None:
        lengths = self.store.lengths[self.episodes]
        total = int(lengths.sum())
        self._offset = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        w, h = self.store.size
        self._obs = np.empty((total, h, w, 3), np.uint8)  # (N, H, W, 3), all episodes end to end
        self._act = self._empty_act(total)
        self._rew = np.empty(total, np.float32)
        self._term = np.empty(total, bool)
        self._cap = np.empty(total, np.int32)
        for slot, i in enumerate(self.episodes.tolist()):
            ep = self.store.read(i)
            lo, hi = self._offset[slot], self._offset[slot] + len(ep)
            self._obs[lo:hi] = ep.obs
            if ep.act is not None:
                self._act[lo:hi] = ep.act
            self._rew[lo:hi] = ep.rew
            self._term[lo:hi] = ep.term
            self._cap[lo:hi] = self._cap_ids(ep.captions)

    @property
    def nbytes(self) -> int:
        return int(self._obs.nbytes) if self.cache else 0

    def sample(self, batch: int, rng: np.random.Generator) -> dict[str, Any]:
        """`batch` windows drawn uniformly over all windows of the chosen episodes."""
        k = rng.integers(0, self.num_windows, size=batch)
        slot = np.searchsorted(self._window_end, k, side="right")
        start = k - np.concatenate([[0], self._window_end[:-1]])[slot]
        episode = self.episodes[slot]
        if self.cache:
            idx = (self._offset[slot] + start)[:, None] + np.arange(self.window)  # (B, W) rows of _obs
            out = {
                "obs": self._obs[idx],
                "act": self._act[idx],
                "rew": self._rew[idx],
                "term": self._term[idx],
                "cap": self._cap[idx],
            }
        else:
            out = self._read_windows(episode, start)
        out.update(
            caption_table=self.caption_table, episode=episode.astype(np.int64), start=start.astype(np.int64)
        )
        return out

    def _read_windows(self, episode: np.ndarray, start: np.ndarray) -> dict[str, Any]:
        # Without the cache each window is read (and validated) from zarr: slow, but for stores
        # that do not fit in memory.
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "act", "rew", "term", "cap")}
        for i, s in zip(episode.tolist(), start.tolist()):
            ep = self.store.read(i, slice(s, s + self.window))
            parts["obs"].append(ep.obs)
            parts["act"].append(ep.act if ep.act is not None else self._empty_act(self.window))
            parts["rew"].append(ep.rew)
            parts["term"].append(ep.term)
            parts["cap"].append(self._cap_ids(ep.captions))
        return {k: np.stack(v) for k, v in parts.items()}

    def captions(self, batch: dict[str, Any]) -> list[list[str]]:
        """The caption strings of a batch, (B, W) nested lists."""
        table = batch["caption_table"]
        return [[table[j] for j in row] for row in batch["cap"].tolist()]
