"""Start walks in a helper process: the same frames as on the engine's thread, and a clean close."""

from __future__ import annotations

import numpy as np
import pytest
from test_model_backend import tiny_run  # noqa: F401  (fixture)

from reverie.engine.backends import make_env, start_walk
from reverie.engine.model_backend import ModelBackend, ModelConfig
from reverie.engine.start_walks import StartWalker
from reverie.errors import ReverieError
from reverie.sizes import Size

SIZE = Size(64, 64)


def test_a_walk_in_the_helper_is_the_real_worlds_walk() -> None:
    walker = StartWalker("reverie/Dungeon-v0", SIZE, False)
    try:
        for seed in (3, 4):
            frames, acts, caption = walker.walk(seed)
            want, want_acts, want_caption = start_walk(make_env("reverie/Dungeon-v0", SIZE), seed, SIZE)
            assert len(frames) == len(want) > 1 and acts == want_acts
            assert caption == want_caption and isinstance(caption, str) and caption
            assert all(np.array_equal(a, b) for a, b in zip(frames, want))
    finally:
        walker.close()
    with pytest.raises(BrokenPipeError, match="closed"):
        walker.walk(3)


def test_a_world_not_installed_is_reported_not_hung() -> None:
    walker = StartWalker("ALE/NoSuchGame-v5", SIZE, False)
    try:
        with pytest.raises(ReverieError, match="NoSuchGame"):
            walker.walk(0)
    finally:
        walker.close()


def test_the_backend_starts_the_same_with_or_without_the_helper(tiny_run: str) -> None:  # noqa: F811
    helped = ModelBackend(tiny_run, ModelConfig(precision="fp32"))
    here = ModelBackend(tiny_run, ModelConfig(precision="fp32", walk_process=False))
    assert helped._walker is not None and here._walker is None
    for b in (helped, here):
        b.reset(1, 11)
    a, b = helped.step([1], [3])[0].frame, here.step([1], [3])[0].frame
    assert np.array_equal(a, b)
    helped.close_all()
    assert helped._walker is None


def test_a_killed_helper_costs_one_walk_on_the_thread(tiny_run: str) -> None:  # noqa: F811
    b = ModelBackend(tiny_run, ModelConfig(precision="fp32"))
    assert b._walker is not None and b._walker._proc is not None
    b._walker._proc.kill()
    b._walker._proc.wait()
    out = b.reset(1, 11)  # the helper is gone: this walk, and the next, run here
    assert out.frame.shape == (64, 64, 3) and b._walker is None and b._has_sim
