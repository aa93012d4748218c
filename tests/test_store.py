"""Episode store: bit-exact round trips, validation that names the bad file, crash safety, sampler."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from reverie.data.episode import Episode
from reverie.data.sampler import WindowSampler
from reverie.data.store import EpisodeStore
from reverie.errors import ReverieError
from reverie.sizes import Size

SPECS = {
    "discrete": {"type": "discrete", "n": 5, "names": ["noop", "a", "b", "c", "d"]},
    "box": {"type": "box", "shape": [3], "low": [-1, -1, 0], "high": [1, 1, 1], "names": ["x", "y", "z"]},
    "none": {"type": "none"},
}
SIZE = Size(24, 16)


def make_episode(seed: int, T: int, kind: str = "discrete", size: Size = SIZE) -> Episode:
    rng = np.random.default_rng(seed)
    act: np.ndarray | None = None
    if kind == "discrete":
        act = rng.integers(0, 5, T).astype(np.int64)
        act[0] = 0
    elif kind == "box":
        act = rng.uniform(-1, 1, (T, 3)).astype(np.float32)
        act[0] = 0
    return Episode(
        obs=rng.integers(0, 256, (T, size.height, size.width, 3), dtype=np.uint8),
        act=act,
        rew=rng.normal(size=T).astype(np.float32),
        term=rng.random(T) < 0.2,
        trunc=rng.random(T) < 0.2,
        captions=[f"room {k}" for k in rng.integers(0, 3, T)],
        meta={"seed": seed, "policy": "test", "nested": {"a": [1, 2.5, None]}},
    )


def new_store(path: Path, kind: str = "discrete") -> EpisodeStore:
    return EpisodeStore.create(
        path, world="test/World-v0", action_spec=SPECS[kind], size=SIZE, fps=15.0, note="x"
    )


def assert_same(a: Episode, b: Episode) -> None:
    assert a.obs.dtype == b.obs.dtype and np.array_equal(a.obs, b.obs)
    if a.act is None:
        assert b.act is None
    else:
        assert b.act is not None and a.act.dtype == b.act.dtype and np.array_equal(a.act, b.act)
    for k in ("rew", "term", "trunc"):
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype and np.array_equal(x, y)
    assert a.captions == b.captions
    assert a.meta == b.meta


@pytest.mark.parametrize("kind", ["discrete", "box", "none"])
def test_round_trip_is_bit_exact(tmp_path: Path, kind: str) -> None:
    store = new_store(tmp_path / "s", kind)
    eps = [make_episode(s, T, kind) for s, T in ((3, 70), (4, 1), (9, 130))]  # spans several chunks
    assert [store.append(ep) for ep in eps] == [0, 1, 2]
    again = EpisodeStore.open(tmp_path / "s")
    assert len(again) == 3
    assert again.lengths.tolist() == [70, 1, 130]
    assert again.seeds == [3, 4, 9]
    assert again.meta["world"] == "test/World-v0" and again.meta["note"] == "x"
    assert again.meta["action_spec"] == SPECS[kind]
    assert (again.meta["width"], again.meta["height"], again.meta["fps"]) == (24, 16, 15.0)
    assert "version" in again.meta and "created" in again.meta
    for i, ep in enumerate(eps):
        assert_same(again[i], ep)
    part = again.read(2, slice(60, 75))
    assert np.array_equal(part.obs, eps[2].obs[60:75]) and part.captions == eps[2].captions[60:75]


def test_append_rejects_mismatched_episodes_and_seed_overlap(tmp_path: Path) -> None:
    store = new_store(tmp_path / "s")
    store.append(make_episode(1, 5))
    with pytest.raises(ReverieError, match="frames are 32x16"):
        store.append(make_episode(2, 5, size=Size(32, 16)))
    with pytest.raises(ReverieError, match="discrete act must be int64"):
        store.append(make_episode(2, 5, "box"))  # wrong action type for a discrete store
    with pytest.raises(ReverieError, match="seeds 1"):
        store.append(make_episode(1, 5))
    with pytest.raises(ReverieError, match=r"seeds 1 .*--seed 2"):
        store.check_new_seeds([0, 1])
    assert len(EpisodeStore.open(tmp_path / "s")) == 1


def test_create_refuses_non_empty_dir_and_existing_store(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "precious.txt").write_text("keep me")
    with pytest.raises(ReverieError, match="refusing to overwrite"):
        new_store(d)
    assert sorted(os.listdir(d)) == ["precious.txt"] and (d / "precious.txt").read_text() == "keep me"
    new_store(tmp_path / "s")
    with pytest.raises(ReverieError, match="already holds an episode store"):
        new_store(tmp_path / "s")
    (tmp_path / "empty").mkdir()
    assert len(new_store(tmp_path / "empty")) == 0
    with pytest.raises(ReverieError, match="not an episode store"):
        EpisodeStore.open(d)


def _chunk(store: EpisodeStore, i: int, name: str, k: int) -> Path:
    p = Path(store.episode_path(i)) / name / "c" / str(k)
    while p.is_dir():
        p = p / "0"
    return p


def test_corrupt_chunk_is_named(tmp_path: Path) -> None:
    store = new_store(tmp_path / "s")
    store.append(make_episode(0, 150))
    chunk = _chunk(store, 0, "obs", 1)
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the compressed frames
    chunk.write_bytes(bytes(data))
    store = EpisodeStore.open(tmp_path / "s")
    with pytest.raises(ReverieError) as e:
        store[0]
    assert str(chunk) in str(e.value)
    assert np.array_equal(store.read(0, slice(0, 64)).obs, make_episode(0, 150).obs[:64])  # other chunks fine


def test_missing_chunk_and_bad_metadata_are_named(tmp_path: Path) -> None:
    store = new_store(tmp_path / "s")
    store.append(make_episode(0, 10))
    store.append(make_episode(1, 10))
    chunk = _chunk(store, 0, "rew", 0)
    chunk.unlink()
    with pytest.raises(ReverieError, match=str(chunk)):
        store[0]
    meta = Path(store.episode_path(1)) / "zarr.json"
    meta.write_text("{not json")
    with pytest.raises(ReverieError, match=str(meta)):
        EpisodeStore.open(tmp_path / "s")
    top = tmp_path / "s" / "reverie_store.json"
    obj = json.loads(top.read_text())
    del obj["fps"]
    top.write_text(json.dumps(obj))
    with pytest.raises(ReverieError, match=rf"{top}.*fps"):
        EpisodeStore.open(tmp_path / "s")


def test_disk_full_leaves_no_partial_episode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = new_store(tmp_path / "s")
    store.append(make_episode(0, 20))

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    import reverie.data.zarr_io as zio

    monkeypatch.setattr(zio.os, "fsync", full)
    with pytest.raises(ReverieError, match=r"No space left on device.*unchanged"):
        store.append(make_episode(1, 20))
    monkeypatch.undo()
    assert not any((tmp_path / "s" / ".tmp").glob("*"))
    again = EpisodeStore.open(tmp_path / "s")
    assert len(again) == 1 and again.seeds == [0]
    assert again.append(make_episode(1, 20)) == 1


APPENDER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from test_store import make_episode, new_store
    from reverie.data.store import EpisodeStore
    from pathlib import Path
    store = new_store(Path({path!r}))
    for seed in range(10_000):
        store.append(make_episode(seed, 40 + seed % 50))
    """
)


def test_sigkill_leaves_only_complete_episodes(tmp_path: Path) -> None:
    path = tmp_path / "s"
    script = APPENDER.format(tests=str(Path(__file__).parent), path=str(path))
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not (path / "episodes").is_dir() or len(os.listdir(path / "episodes")) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, "appender did not get going"
            time.sleep(0.02)
        time.sleep(random.uniform(0.0, 0.3))  # land anywhere inside a later append
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    store = EpisodeStore.open(path)
    assert len(store) >= 3
    assert store.seeds == list(range(len(store)))
    for i in range(len(store)):
        assert_same(store[i], make_episode(i, 40 + i % 50))
    # The next writer cleans what the dead one left in .tmp and carries on.
    assert store.append(make_episode(len(store), 5)) == len(store) - 1
    assert not any((path / ".tmp").glob("*"))


def test_sampler_windows_match_episodes(tmp_path: Path) -> None:
    store = new_store(tmp_path / "s")
    eps = [make_episode(s, T) for s, T in enumerate((30, 5, 12, 40))]
    for ep in eps:
        store.append(ep)
    sampler = WindowSampler(store, 8)
    assert sampler.episodes.tolist() == [0, 2, 3]  # episode 1 is shorter than a window
    assert sampler.num_windows == 23 + 5 + 33
    b = sampler.sample(64, np.random.default_rng(0))
    assert b["obs"].shape == (64, 8, 16, 24, 3) and b["obs"].dtype == np.uint8
    assert b["act"].shape == (64, 8) and b["act"].dtype == np.int64
    assert b["cap"].shape == (64, 8) and b["cap"].dtype == np.int32
    caps = sampler.captions(b)
    for j in range(64):
        ep, s = eps[b["episode"][j]], int(b["start"][j])
        assert 0 <= s <= len(ep) - 8
        assert np.array_equal(b["obs"][j], ep.obs[s : s + 8])
        assert np.array_equal(b["act"][j], ep.act[s : s + 8])  # type: ignore[index]
        assert np.array_equal(b["rew"][j], ep.rew[s : s + 8])
        assert caps[j] == ep.captions[s : s + 8]
    again = sampler.sample(64, np.random.default_rng(0))
    assert np.array_equal(again["start"], b["start"]) and np.array_equal(again["episode"], b["episode"])
    uncached = WindowSampler(store, 8, cache=False).sample(64, np.random.default_rng(0))
    assert np.array_equal(uncached["obs"], b["obs"]) and np.array_equal(uncached["act"], b["act"])
    only = WindowSampler(store, 8, episodes=[3]).sample(32, np.random.default_rng(1))
    assert set(only["episode"].tolist()) == {3}
    with pytest.raises(ReverieError, match="window of 50"):
        WindowSampler(store, 50)


@pytest.mark.parametrize("kind,shape,dtype", [("box", (4, 6, 3), np.float32), ("none", (4, 6), np.int64)])
def test_sampler_actions_for_box_and_video(
    tmp_path: Path, kind: str, shape: tuple[int, ...], dtype: type
) -> None:
    store = new_store(tmp_path / "s", kind)
    ep = make_episode(0, 20, kind)
    store.append(ep)
    b = WindowSampler(store, 6).sample(4, np.random.default_rng(0))
    assert b["act"].shape == shape and b["act"].dtype == dtype
    if ep.act is None:
        assert not b["act"].any()
    else:
        s = int(b["start"][0])
        assert np.array_equal(b["act"][0], ep.act[s : s + 6])


def test_bench_data_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from reverie.cli import app
    from reverie.data.bench import make_synthetic_store

    store = make_synthetic_store(str(tmp_path / "s"), episodes=2, steps=40, size=Size(16, 16))
    assert WindowSampler(store, 40).num_windows == 2
    args = ["bench", "data", "--json", "--seconds", "0.2", "--window", "4", "--data", str(tmp_path / "s")]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    line = json.loads(r.output.strip().splitlines()[-1])
    assert line["bench"] == "data" and line["window"] == 4
    assert line["frames_per_s"] > 0 and line["windows_per_s"] * 4 == pytest.approx(
        line["frames_per_s"], rel=0.01
    )
