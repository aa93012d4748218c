"""The adversarial term: the critic learns to tell real next frames from fakes, its generator loss
moves only the dynamics model, and a run with it resumes exactly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from test_dynamics_train import tiny_task

from reverie.checkpoint import load_run, load_train_state
from reverie.errors import ReverieError
from reverie.models.autoencoder import Autoencoder, AutoencoderConfig
from reverie.models.critic import Adversary, LatentCritic, PixelCritic
from reverie.models.dreams import DreamPool
from reverie.models.flow import FlowConfig, detail_gradient_only, flow_loss
from reverie.train.config import TrainConfig
from reverie.train.loop import train

C, S = 4, 6  # latent channels and grid of the tiny tasks


def pairs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(prev, real next = prev shifted by the action, blurred fake = the mean of all shifts, action)."""
    g = torch.Generator().manual_seed(seed)
    prev = torch.randn(n, C, S, S, generator=g)
    act = torch.randint(0, 3, (n,), generator=g)
    shifts = torch.stack([prev, prev.roll(1, -1), prev.roll(-1, -1)], 1)  # (n, 3, C, S, S)
    real = shifts[torch.arange(n), act]
    return prev, real, shifts.mean(1), act


def tiny_decoder_ae() -> Autoencoder:
    """An untrained autoencoder over the tiny tasks' latents: 4 channels, stride 4 (6x6 -> 24x24)."""
    torch.manual_seed(0)
    return Autoencoder(AutoencoderConfig(channels=(8, 8), blocks=(0, 0), latent_channels=C))


def test_critic_learns_sharp_from_blurred_and_keeps_its_gradient_to_itself() -> None:
    torch.manual_seed(0)
    adv = Adversary(LatentCritic(C, "discrete", 3, 0, width=16), lr=1e-3)
    before = None
    for i in range(60):
        prev, real, fake, act = pairs(32, i)
        m = adv.update(prev, real, fake, act)
        before = before or m["critic_loss"]
    assert before > 1.5 and m["critic_loss"] < 0.5 * before  # hinge: 2 at chance, 0 when separated
    prev, real, fake, act = pairs(64, 999)  # held out
    with torch.no_grad():
        assert (adv.critic(prev, real, act) > adv.critic(prev, fake, act)).float().mean() > 0.9

    # the generator loss reaches the sample, never the critic's weights
    fake = fake.clone().requires_grad_(True)
    adv.opt.zero_grad(set_to_none=True)
    adv.generator_loss(prev, fake, act).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in adv.critic.parameters())
    assert all(p.requires_grad for p in adv.critic.parameters())


def test_pixel_critic_judges_decoded_frames_and_its_gradient_reaches_the_latents() -> None:
    """The pixel critic tells decoded real frames from decoded blurs; its generator loss moves the
    latent sample through the frozen decoder (never the decoder or the critic), and each latent is
    decoded once per step: the critic's updates and the generator loss share it."""
    ae = tiny_decoder_ae().eval().requires_grad_(False)
    calls = []

    def decode(z: torch.Tensor) -> torch.Tensor:
        calls.append(z.shape[0])
        return ae.decode(z)

    class Cfg:  # the dynamics config fields an adversary reads
        latent_channels, action_type, num_actions, action_dim = C, "discrete", 3, 0

    torch.manual_seed(0)
    adv = Adversary.for_model(Cfg(), 2e-3, decoder=decode)
    assert isinstance(adv.critic, PixelCritic)
    before = None
    for i in range(60):
        prev, real, fake, act = pairs(32, i)
        m = adv.update(prev, real, fake, act)
        before = before or m["critic_loss"]
    assert before > 1.5 and m["critic_loss"] < 0.6 * before
    prev, real, fake, act = pairs(64, 999)
    with torch.no_grad():
        d_real = adv.critic(ae.decode(prev), ae.decode(real), act).mean((1, 2))
        d_fake = adv.critic(ae.decode(prev), ae.decode(fake), act).mean((1, 2))
    assert (d_real > d_fake).float().mean() > 0.9

    calls.clear()
    fake = fake.clone().requires_grad_(True)
    adv.update(prev, real, fake, act)
    adv.update(prev, real, fake, act)  # a second critic step on the same pairs (flow.adv_critic_steps)
    adv.opt.zero_grad(set_to_none=True)
    adv.generator_loss(prev, fake, act).backward()
    assert calls == [64, 64, 64]  # prev, real, fake: once each
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in adv.critic.parameters())
    assert all(p.grad is None for p in ae.parameters())
    assert adv._decoded == []  # nothing held past the step


def test_critic_sees_the_action() -> None:
    """A next frame that another action would have made is a fake: the critic must read the action."""
    torch.manual_seed(0)
    adv = Adversary(LatentCritic(C, "discrete", 3, 0, width=16), lr=1e-3)
    offset = torch.tensor([0.0, 1.0, -1.0])  # what each action does to the frame

    def made(prev: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return prev + offset[act][:, None, None, None]

    for i in range(80):
        prev, _, _, act = pairs(32, i)
        adv.update(prev, made(prev, act), made(prev, (act + 1) % 3), act)
    prev, _, _, act = pairs(64, 999)
    with torch.no_grad():
        right, wrong = (
            adv.critic(prev, made(prev, act), act),
            adv.critic(prev, made(prev, (act + 1) % 3), act),
        )
    assert (right.mean((1, 2)) > wrong.mean((1, 2))).float().mean() > 0.9


def test_state_round_trip_continues_identically() -> None:
    torch.manual_seed(0)
    a = Adversary(LatentCritic(C, "box", 0, 2, width=8), lr=1e-3)
    prev, real, fake, _ = pairs(8, 0)
    act = torch.randn(8, 2)
    a.update(prev, real, fake, act)
    tensors, info = a.state_tensors()
    torch.manual_seed(1)  # a different initialisation, overwritten by the state
    b = Adversary(LatentCritic(C, "box", 0, 2, width=8), lr=1e-3)
    b.load_state_tensors({k: v.clone() for k, v in tensors.items()}, info)  # as read back from a file
    ma, mb = a.update(prev, real, fake, act), b.update(prev, real, fake, act)
    assert ma == mb
    with torch.no_grad():
        assert torch.equal(a.critic(prev, real, act), b.critic(prev, real, act))


def test_flow_loss_adds_the_term_only_when_weighted() -> None:
    task = tiny_task()
    torch.manual_seed(0)
    model = task.build_model()
    batch = task.batch(0, 0, 1)
    adv = Adversary.for_model(task.model_cfg, 1e-3)
    cfg = replace(task.flow, p_self=0.0)

    def run(c: FlowConfig, a: Adversary | None) -> tuple[torch.Tensor, dict[str, float]]:
        torch.manual_seed(3)
        return flow_loss(model, batch["z"], batch["act"], batch["text"], c, adversary=a)

    plain, m0 = run(cfg, None)
    off, _ = run(cfg, adv)  # adv_weight 0: the adversary is never touched
    assert torch.equal(plain, off) and "critic_loss" not in m0
    on, m = run(replace(cfg, adv_weight=0.5), adv)
    assert m["critic_pairs"] > 0 and m["flow_loss"] == pytest.approx(plain.item())
    assert on.item() == pytest.approx(plain.item() + 0.5 * m["adv_loss"], rel=1e-5)
    model.zero_grad()
    on.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())

    # more critic steps train the critic further on the same pairs; the metrics are its first step's
    def fresh() -> Adversary:
        torch.manual_seed(5)
        return Adversary.for_model(task.model_cfg, 1e-3)

    one, three = fresh(), fresh()
    _, m1 = run(replace(cfg, adv_weight=0.5), one)
    _, m3 = run(replace(cfg, adv_weight=0.5, adv_critic_steps=3), three)
    assert m1["critic_loss"] == m3["critic_loss"]
    w1, w3 = one.critic.state_dict(), three.critic.state_dict()
    assert any(not torch.equal(w1[k], w3[k]) for k in w1)


def test_the_critic_judges_self_forcing_windows_only_when_told() -> None:
    task = tiny_task()
    torch.manual_seed(0)
    model = task.build_model()
    batch = task.batch(0, 0, 1)
    # every window in the play layout and every one of them self-forcing: no real-context window left
    cfg = replace(
        task.flow, p_play=1.0, p_self=1.0, self_steps=1, p_drop_act=0.0, p_one_t=1.0, p_uniform_t=0.0
    )

    def run(c: FlowConfig) -> tuple[torch.Tensor, dict[str, float]]:
        torch.manual_seed(3)
        adv = Adversary.for_model(task.model_cfg, 1e-3)
        return flow_loss(model, batch["z"], batch["act"], batch["text"], c, adversary=adv)

    _, off = run(replace(cfg, adv_weight=0.5))
    assert off["critic_pairs"] == 0  # self-forcing windows are left to the flow loss
    loss, on = run(replace(cfg, adv_weight=0.5, adv_self=True))
    B, T = batch["z"].shape[:2]
    assert on["critic_pairs"] == B * (T - 1)  # every target at t = 1 but the first of each window
    assert on["flow_loss"] == pytest.approx(off["flow_loss"])  # the same windows, the same rollout
    model.zero_grad()
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with pytest.raises(ReverieError, match="adv_self"):
        replace(cfg, adv_self=True)  # no critic weight
    with pytest.raises(ReverieError, match="adv_self"):
        replace(cfg, adv_weight=0.5, adv_self=True, p_self=0.0)


def test_detail_gradient_only_keeps_values_and_takes_the_block_means_out_of_the_gradient() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 8, 8, requires_grad=True)  # (B, T, C, h, w)
    y = detail_gradient_only(x, 2)
    assert torch.allclose(y, x, atol=1e-6)  # the same values, up to rounding
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    block_means = torch.nn.functional.avg_pool2d(x.grad.flatten(0, 1), 2)  # (B * T, C, 4, 4)
    assert block_means.abs().max() < 1e-6  # no push on any block's mean: colour is the flow loss's
    with pytest.raises(ReverieError, match="adv_detail_block"):
        FlowConfig(adv_detail_block=3)
    with pytest.raises(ReverieError, match="no gradient"):  # a 1-cell block's detail is zero
        FlowConfig(adv_detail_block=1)
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    (detail_gradient_only(x, 1) * torch.randn(1, 2, 4, 4)).sum().backward()  # any loss at all
    assert x.grad is not None and float(x.grad.abs().max()) == 0.0


@pytest.mark.parametrize(
    "dream_rows,space,adv_self", [(0, "latent", False), (3, "latent", True), (3, "pixel", False)]
)
def test_run_with_critic_resumes_exactly(tmp_path: Path, dream_rows: int, space: str, adv_self: bool) -> None:
    flow = FlowConfig(adv_weight=0.5, adv_lr=1e-3, p_self=0.25, self_steps=1, adv_space=space,
                      dream_rows=dream_rows, dream_frames=7, dream_advance=2, adv_self=adv_self)  # fmt: skip
    if adv_self:  # and capped self-forcing, its real prefix blurred, its own frames on real block means
        flow = replace(flow, self_frames=1, context_blur_max=0.5, self_blur_prefix=True, self_colour_block=2)
    kw = {"flow": flow, "autoencoder": tiny_decoder_ae()} if space == "pixel" else {"flow": flow}
    cfg = TrainConfig(steps=4, batch_size=8, lr=1e-3, warmup_steps=1, log_every=1, sample_every=100,
                      checkpoint_minutes=100.0, threads=1, precision="fp32")  # fmt: skip
    train(tiny_task(**kw), cfg, tmp_path / "whole")
    train(tiny_task(**kw), replace(cfg, steps=2), tmp_path / "split")
    train(tiny_task(**kw), cfg, tmp_path / "split", resume=True)
    for name in ("whole", "split"):
        config, _ = load_run(tmp_path / name)
        assert config["flow"]["adv_weight"] == 0.5 and config["flow"]["adv_space"] == space
        assert config["flow"]["adv_self"] == adv_self
        card = (tmp_path / name / "MODEL_CARD.md").read_text()
        assert f"a {space} critic, weight 0.5" in card
        assert ("and the self-forcing windows" in card) == adv_self
        assert ("at most 1 own frame before a target, the real prefix blurred" in card) == adv_self
        assert ("own frames' means over 2x2-cell blocks replaced by the real frames'" in card) == adv_self
        assert (f"of {dream_rows} free-running dreams (each up to 7 frames deep)" in card) == bool(dream_rows)
    (_, whole), (_, split) = load_run(tmp_path / "whole"), load_run(tmp_path / "split")
    assert all(torch.equal(whole[k], split[k]) for k in whole)
    tw, _ = load_train_state(tmp_path / "whole", load_run(tmp_path / "whole")[0])
    ts, _ = load_train_state(tmp_path / "split", load_run(tmp_path / "split")[0])
    critic = [k for k in tw if k.startswith("critic/")]
    assert critic and all(torch.equal(tw[k], ts[k]) for k in critic)
    assert ("critic/dreams/age" in tw) == bool(dream_rows)  # the dreams resume where they were
    # the shipped weights hold the dynamics model only
    assert not any(k.startswith("critic") for k in whole)


def test_critic_space_is_checked() -> None:
    with pytest.raises(ReverieError, match="latent, pixel"):
        FlowConfig(adv_space="rgb")
    with pytest.raises(ReverieError, match="no autoencoder"):  # nothing to decode with
        tiny_task(flow=FlowConfig(adv_weight=0.1, adv_space="pixel")).build_model()


def test_dreams_run_on_across_steps_and_restart_from_real_frames() -> None:
    """A dream keeps its own frames from step to step (ages grow by `advance`), restarts from a batch
    window's real frames when its life is over, and its proposed frame carries gradient to the model."""
    task = tiny_task()
    torch.manual_seed(0)
    model = task.build_model()
    batch = task.batch(0, 0, 1)
    z, act = batch["z"], batch["act"]  # (8, 5, ...): dreams hold window - 1 = 4 frames
    pool = DreamPool(rows=3, max_frames=100, advance=2, lost_scale=1e3)  # an untrained model's scale
    pool.propose(model, z, act, steps=1, context_noise=0.1)
    assert pool.z is not None and pool.z.shape == (3, 4, *z.shape[2:]) and pool.age.tolist() == [2, 2, 2]
    assert torch.equal(pool.z[:, :2], z[:3, 2:4]) and not torch.equal(pool.z[:, 2:], z[:3, 4:6])
    assert torch.equal(pool.act[:, 2:], act[:3, :2])  # the batch's real actions drive them
    mine = pool.z.clone()
    other = task.batch(1, 0, 1)
    pool.life[1] = 2  # dream 1's life is over: it starts again from the new batch's real frames
    prev, fake, a, m = pool.propose(model, other["z"], other["act"], steps=1, context_noise=0.1)
    assert pool.age.tolist() == [4, 2, 4] and m["dream_age"] == pytest.approx(10 / 3)
    assert torch.equal(pool.z[0, :2], mine[0, 2:]) and torch.equal(pool.z[1, :2], other["z"][1, 2:4])
    assert torch.equal(prev, pool.z[:, -1]) and torch.equal(a, other["act"][:3, 2])
    fake.pow(2).mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    # a dream blowing up is lost: it restarts at once from real frames
    pool.z[2] *= 1e6
    pool.z[0] = float("nan")
    _, fake, _, m = pool.propose(model, z, act, steps=1, context_noise=0.1)
    assert m["dreams_lost"] == 2 and pool.age.tolist() == [0, 4, 0] and torch.isfinite(fake).all()
    assert torch.equal(pool.z[0], z[0, :4]) and torch.equal(pool.z[2], z[2, :4])


def test_dreams_need_the_critic() -> None:
    with pytest.raises(ReverieError, match="adv_weight"):
        FlowConfig(dream_rows=4)
    with pytest.raises(ReverieError, match="dream_rows"):
        FlowConfig(adv_weight=0.1, dream_rows=-1)
