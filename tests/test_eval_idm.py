"""The inverse-dynamics classifier (IDM) of the action-accuracy measure: its pairs line up with the
episode convention, it learns real Dungeon pairs far above chance, its degradation looks like an
autoencoder's, its cache round-trips under the right key, and ambiguous steps are found."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reverie.eval.idm import (
    IDMConfig,
    InverseDynamics,
    ambiguous_steps,
    cached_idm,
    degrade,
    mirror_actions,
    pairs_from_episodes,
    train_idm,
)
from reverie.eval.rollout import RealEpisodes, collect_real

WORLD, SIZE = "reverie/Dungeon-v0", "32x32"


@pytest.fixture(scope="module")
def train() -> RealEpisodes:
    return collect_real(WORLD, SIZE, list(range(7000, 7032)), 48)


@pytest.fixture(scope="module")
def held_out() -> RealEpisodes:
    return collect_real(WORLD, SIZE, list(range(8000, 8006)), 48)


def test_pairs_align_with_the_episode_convention(held_out: RealEpisodes) -> None:
    prev, nxt, act = pairs_from_episodes(held_out.obs, held_out.act)
    assert len(prev) == len(nxt) == len(act) == 6 * 47
    # pair i of episode 0 is (obs[i], obs[i+1]) with act[i+1], the action that led to obs[i+1]
    assert np.array_equal(prev[5], held_out.obs[0, 5]) and np.array_equal(nxt[5], held_out.obs[0, 6])
    assert act[5] == held_out.act[0, 6] and act.dtype == np.int64


@pytest.mark.slow  # trains the IDM, 55 s on one core: `make test-all` runs it
def test_it_learns_real_pairs_far_above_chance(train: RealEpisodes, held_out: RealEpisodes) -> None:
    torch.set_num_threads(1)
    # 32x32 and 1,500 pairs, so that it is quick: held-out accuracy ~0.62 (64x64 and the eval's data: ~0.9)
    cfg = IDMConfig(steps=500, width=16, batch_size=32, seed=0)
    names = train.action_spec["names"]
    idm = train_idm(*pairs_from_episodes(train.obs, train.act), len(names), cfg, mirror=mirror_actions(names))
    p, n, a = pairs_from_episodes(held_out.obs, held_out.act)
    majority = np.bincount(pairs_from_episodes(train.obs, train.act)[2]).max() / (train.act.shape[0] * 47)
    acc = idm.accuracy(p, n, a)
    assert acc > max(0.5, majority + 0.2)  # held-out episodes: it reads the motion, not the label prior
    # still reads the motion when the frames look decoded by an autoencoder
    torch.manual_seed(1)
    blurred = degrade(torch.from_numpy(n), 1.0).numpy()
    assert idm.accuracy(p, blurred, a) > majority + 0.15
    assert np.array_equal(
        idm.hits(p[:10], n[:10], a[:10]),
        idm(torch.from_numpy(p[:10]), torch.from_numpy(n[:10])).argmax(-1).numpy() == a[:10],
    )


def test_mirror_swaps_left_and_right() -> None:
    names = ["noop", "forward", "back", "turn_left", "turn_right", "strafe_left", "strafe_right"]
    assert mirror_actions(names) == [0, 1, 2, 4, 3, 6, 5]
    assert mirror_actions(["NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE"]) == [0, 1, 3, 2, 5, 4]
    drive = ["noop", "accelerate", "brake", "left", "right", "accelerate_left", "accelerate_right"]
    assert mirror_actions(drive) == [0, 1, 2, 4, 3, 6, 5]
    assert mirror_actions(["noop", "left", "jump"]) is None  # no "right" to swap with
    assert mirror_actions(["noop", "up", "down"]) is None  # nothing to mirror


def test_degrade_looks_like_an_autoencoder(held_out: RealEpisodes) -> None:
    frames = torch.from_numpy(held_out.obs[:, :8].reshape(-1, 32, 32, 3))
    torch.manual_seed(0)
    assert torch.equal(degrade(frames, 0.0), frames)
    out = degrade(frames, 1.0)
    assert out.dtype == torch.uint8 and out.shape == frames.shape
    mse = ((out.float() - frames.float()) ** 2).mean(dim=(1, 2, 3))
    psnr = 10 * torch.log10(255.0**2 / mse)
    assert bool((psnr > 22).all()) and 28 < float(psnr.mean()) < 40  # mild, as a ~31 dB autoencoder
    half = degrade(frames, 0.5)
    changed = (half != frames).flatten(1).any(1).float().mean()
    assert 0.2 < float(changed) < 0.8  # each frame is drawn alone


def test_cache_round_trips_and_is_keyed_by_data_and_config(
    train: RealEpisodes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    obs, act = train.obs[:4, :16], train.act[:4, :16]
    cfg = IDMConfig(steps=3, width=8, batch_size=8, seed=0)
    first, hit = cached_idm(obs, act, 9, cfg, tmp_path)
    files = sorted(tmp_path.glob("idm-*.safetensors"))
    assert not hit and len(files) == 1 and not list(tmp_path.glob("*.tmp"))
    again, hit = cached_idm(obs, act, 9, cfg, tmp_path)
    assert hit
    for (k, v), (k2, v2) in zip(first.state_dict().items(), again.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    # another config, other frames, another action count: each its own entry, never the cached one
    cached_idm(obs, act, 9, IDMConfig(steps=3, width=8, batch_size=8, seed=1), tmp_path)
    cached_idm(obs[:, ::-1].copy(), act, 9, cfg, tmp_path)
    _, hit = cached_idm(obs, act, 10, cfg, tmp_path)
    assert not hit and len(list(tmp_path.glob("idm-*.safetensors"))) == 4
    # a damaged file is retrained and replaced, not trusted
    files[0].write_bytes(b"not a safetensors file")
    model, hit = cached_idm(obs, act, 9, cfg, tmp_path)
    assert not hit and isinstance(model, InverseDynamics)
    assert cached_idm(obs, act, 9, cfg, tmp_path)[1]
    # no cache dir: trains, writes nothing
    assert not cached_idm(obs, act, 9, cfg, None)[1]
    assert len(list(tmp_path.iterdir())) == 4
    # the newest CACHE_KEEP stay
    monkeypatch.setattr("reverie.eval.idm.CACHE_KEEP", 2)
    cached_idm(obs, act, 9, IDMConfig(steps=3, width=8, batch_size=8, seed=2), tmp_path)
    assert len(list(tmp_path.glob("idm-*.safetensors"))) == 2


def test_ambiguous_steps_are_moves_that_change_nothing() -> None:
    from reverie.worlds.make import action_spec, make_world

    env = make_world(WORLD, SIZE)
    obs, info = env.reset(seed=3)
    frames, poses = [obs], [info["pose"]]
    for _ in range(119):  # walk forward until a wall stops it
        obs, *_, info = env.step(1)
        frames.append(obs)
        poses.append(info["pose"])
    spec = action_spec(env)
    env.close()
    act = np.ones((1, 120), np.int64)
    act[0, 0] = 0
    real = RealEpisodes(np.stack(frames)[None], act, [3], spec)
    amb = ambiguous_steps(WORLD, SIZE, real)
    assert amb is not None and amb.shape == (1, 120) and not amb[0, 0]
    stuck = np.array([poses[t] == poses[t - 1] for t in range(1, 120)])
    assert stuck.any() and not stuck.all()  # the walk reached a wall
    assert np.array_equal(amb[0, 1:], stuck)  # blocked forward == noop, exactly those steps
    assert ambiguous_steps(WORLD, SIZE, RealEpisodes(real.obs, real.act, [3], {"type": "box"})) is None
