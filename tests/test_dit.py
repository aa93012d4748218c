"""The dynamics network: shapes, block-causal attention, per-frame noise levels, KV cache, conditioning."""

from __future__ import annotations

import pytest
import torch

from reverie.errors import ReverieError
from reverie.models.dit import PRESETS, DiT, DiTConfig, preset
from reverie.models.rope import Rope3D, apply_rope


def make(cfg: DiTConfig | None = None, seed: int = 0) -> DiT:
    """A model with every weight random: adaLN-Zero would otherwise make outputs ignore the input."""
    torch.manual_seed(seed)
    m = DiT(cfg or preset("tiny"))
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m.eval()


def inputs(B: int, T: int, C: int = 16, h: int = 8, w: int = 8, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, C, h, w, generator=g)
    t = torch.rand(B, T, generator=g)
    act = torch.randint(0, 9, (B, T), generator=g)
    text = torch.randn(B, 384, generator=g)
    return x, t, act, text


@pytest.mark.parametrize(
    ("C", "h", "w", "patch"),
    [(16, 8, 8, 1), (4, 16, 16, 2), (12, 9, 16, 1), (12, 9, 16, 2)],  # 64x64 and 128x72 frames
)
@pytest.mark.parametrize("T", [1, 3, 16])
def test_shapes(C: int, h: int, w: int, patch: int, T: int) -> None:
    m = make(preset("tiny", latent_channels=C, patch=patch))
    x, t, act, text = inputs(2, T, C, h, w)
    with torch.no_grad():
        v = m(x, t, act, text)
    assert v.shape == x.shape
    assert torch.isfinite(v).all()


def test_presets_build_and_small_is_cpu_sized() -> None:
    assert {"tiny", "small", "base", "large"} <= set(PRESETS)
    n = DiT(PRESETS["small"]).num_params()
    assert 3e6 < n < 10e6


def test_wrong_channels_is_a_clear_error() -> None:
    m = make()
    with pytest.raises(ReverieError, match="channels"):
        m(torch.randn(1, 2, 3, 8, 8), torch.rand(1, 2))


def test_causal_across_frames() -> None:
    m = make()
    x, t, act, text = inputs(2, 6)
    with torch.no_grad():
        base = m(x, t, act, text)
        for k in range(1, 6):
            x2 = x.clone()
            x2[:, k] += torch.randn_like(x2[:, k])
            act2 = act.clone()
            act2[:, k] = (act2[:, k] + 1) % 9
            out = m(x2, t, act2, text)
            assert torch.allclose(out[:, :k], base[:, :k], atol=1e-5), f"frames < {k} saw frame {k}"
            assert not torch.allclose(out[:, k], base[:, k], atol=1e-3)


def test_full_attention_within_a_frame() -> None:
    m = make()
    x, t, act, text = inputs(1, 2)
    with torch.no_grad():
        base = m(x, t, act, text)
        x2 = x.clone()
        x2[0, 0, :, 7, 7] += 3.0  # the last token of frame 0 reaches the first token of frame 0
        out = m(x2, t, act, text)
    assert not torch.allclose(out[0, 0, :, 0, 0], base[0, 0, :, 0, 0], atol=1e-4)


def test_noise_level_per_frame() -> None:
    m = make()
    x, t, act, text = inputs(2, 4)
    with torch.no_grad():
        base = m(x, t, act, text)
        t2 = t.clone()
        t2[:, 2] = 1.0 - t2[:, 2]
        out = m(x, t2, act, text)
        assert torch.allclose(out[:, :2], base[:, :2], atol=1e-5)
        assert not torch.allclose(out[:, 2], base[:, 2], atol=1e-3)
        # A batch mixing noise levels equals one call per sample.
        for b in range(2):
            single = m(x[b : b + 1], t[b : b + 1], act[b : b + 1], text[b : b + 1])
            assert torch.allclose(single, base[b : b + 1], atol=1e-5)


@pytest.mark.parametrize("T", [1, 5, 8])
def test_cached_equals_uncached(T: int) -> None:
    m = make()
    x, t, act, text = inputs(2, T)
    with torch.no_grad():
        full = m(x, t, act, text)
        cache = m.new_cache()
        steps = []
        for i in range(T):
            steps.append(m(x[:, i : i + 1], t[:, i : i + 1], act[:, i : i + 1], text, cache=cache))
            cache.commit()
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-5)


def test_cache_holds_a_sliding_window() -> None:
    m = make(preset("tiny", max_context=3))
    x, t, act, text = inputs(1, 10)
    cache = m.new_cache()
    with torch.no_grad():
        for i in range(10):
            out = m(x[:, i : i + 1], t[:, i : i + 1], act[:, i : i + 1], text, cache=cache)
            cache.commit()
            assert torch.isfinite(out).all()
    assert cache.context_frames == 3 and cache.count == 10
    k0 = cache.k[0]
    assert k0 is not None and k0.shape[2] == (2 * 3 + 2) * 64  # bounded: never grows with the rollout


def test_two_frame_cached_pass_equals_one_frame_passes_past_the_window() -> None:
    """Committing frame j in the same pass as frame j + 1 (what the sampler does) changes nothing,
    also after the window slid: each frame still sees exactly its last max_context frames."""
    m = make(preset("tiny", max_context=3))
    x, t, act, text = inputs(2, 12)
    one, two = m.new_cache(), m.new_cache()
    with torch.no_grad():
        ref = []
        for i in range(12):
            ref.append(m(x[:, i : i + 1], t[:, i : i + 1], act[:, i : i + 1], text, cache=one))
            one.commit()
        for i in range(11):
            out = m(x[:, i : i + 2], t[:, i : i + 2], act[:, i : i + 2], text, cache=two)
            two.commit()
            # fp32 round-off of outputs up to ~6 differs by CPU (1.3e-5 on an AMD EPYC); a frame that
            # saw the wrong context would differ by ~0.1 or more
            assert torch.allclose(out[:, 0:1], ref[i], atol=1e-4), i
            assert torch.allclose(out[:, 1:2], ref[i + 1], atol=1e-4), i


def test_conditioning_nulls() -> None:
    m = make()
    x, t, act, text = inputs(2, 3)
    with torch.no_grad():
        base = m(x, t, act, text)
        no_text = m(x, t, act, None)
        dropped = m(x, t, act, text, text_null=torch.tensor([True, False]))
        assert torch.allclose(dropped[0], no_text[0], atol=1e-6)
        assert torch.allclose(dropped[1], base[1], atol=1e-6)
        assert not torch.allclose(no_text, base, atol=1e-3)
        # Dropping the action uses the learned null row, the same as passing no action at all.
        act_null = torch.ones(2, 3, dtype=torch.bool)
        assert torch.allclose(m(x, t, act, text, act_null=act_null), m(x, t, None, text), atol=1e-6)
        other = m(x, t, (act + 1) % 9, text)
        assert not torch.allclose(other, base, atol=1e-3)


@pytest.mark.parametrize("kind", ["box", "none"])
def test_box_and_video_actions(kind: str) -> None:
    m = make(preset("tiny", action_type=kind, action_dim=3 if kind == "box" else 0))
    x, t, _, text = inputs(2, 4)
    act = torch.randn(2, 4, 3) if kind == "box" else None
    with torch.no_grad():
        v = m(x, t, act, text)
        assert v.shape == x.shape
        if kind == "box":
            assert act is not None
            assert not torch.allclose(m(x, t, act + 1.0, text), v, atol=1e-3)
            null = m(x, t, act, text, act_null=torch.ones(2, 4, dtype=torch.bool))
            assert torch.allclose(null, m(x, t, None, text), atol=1e-6)


def test_rope_depends_only_on_offsets() -> None:
    rope = Rope3D(32)
    q, k = torch.randn(1, 1, 4, 32), torch.randn(1, 1, 4, 32)

    def scores(offset: int) -> torch.Tensor:
        cos, sin = rope.cos_sin(torch.tensor([offset, offset + 3]), 1, 2, torch.float32, torch.device("cpu"))
        return apply_rope(q, cos, sin) @ apply_rope(k, cos, sin).transpose(-1, -2)

    assert torch.allclose(scores(0), scores(100_000), atol=1e-4)
    assert not torch.allclose(scores(0)[..., 0, 2], scores(0)[..., 0, 0])


def test_config_round_trip_and_unknown_keys() -> None:
    from dataclasses import asdict

    cfg = preset("small", num_actions=5)
    assert DiTConfig.from_dict(asdict(cfg)) == cfg
    with pytest.raises(ReverieError, match="unknown"):
        DiTConfig.from_dict({"dimension": 3})
    with pytest.raises(ReverieError, match="accepted"):
        preset("huge")


def test_text_per_frame() -> None:
    m = make()
    x, t, act, text = inputs(1, 4)
    per_frame = text[:, None, :].repeat(1, 4, 1)
    with torch.no_grad():
        assert torch.allclose(m(x, t, act, per_frame), m(x, t, act, text), atol=1e-5)
        per_frame[:, 2] = torch.randn(384)
        null = torch.tensor([[False, False, False, True]])
        out, base = m(x, t, act, per_frame, text_null=null), m(x, t, act, text)
    assert torch.allclose(out[:, :2], base[:, :2], atol=1e-5)
    assert not torch.allclose(out[:, 2], base[:, 2], atol=1e-3)


def test_flow_t_covers_the_levels_the_sampler_queries() -> None:
    """t = 1 (every frame's first Euler step) and the middle of the range get their share of training."""
    from reverie.models.flow import FlowConfig, sample_t

    cfg = FlowConfig(p_uniform_t=0.3, p_one_t=0.1)
    t = sample_t((200_000,), cfg, torch.Generator().manual_seed(0))
    assert ((t >= 0) & (t <= 1)).all()
    assert abs(float((t == 1).float().mean()) - 0.1) < 0.005
    # uniform share: 0.3 * 0.02 of the draws land in (0.98, 1), against ~5e-5 for pure logit-normal
    assert float(((t > 0.98) & (t < 1)).float().mean()) > 0.004
    pure = sample_t((200_000,), FlowConfig(p_uniform_t=0.0, p_one_t=0.0), torch.Generator().manual_seed(0))
    assert float((pure > 0.98).float().mean()) < 0.001


def test_flow_config_refuses_bad_values() -> None:
    from reverie.models.flow import FlowConfig

    for bad in (
        {"p_play": 1.5},
        {"context_noise_max": 1.0},
        {"p_uniform_t": 0.8, "p_one_t": 0.3},
        {"t_std": 0},
        {"context_blur_max": 1.5},
        {"context_blur_p": -0.1},
    ):
        with pytest.raises(ReverieError):
            FlowConfig(**bad)
    with pytest.raises(ReverieError, match="accepted"):
        FlowConfig.from_dict({"p_next_frame": 0.5})


def test_play_layout_mask() -> None:
    """Context frame i sees context <= i; target frame i sees context < i and itself, nothing else."""
    from reverie.models.dit import key_plan, plan_mask

    T, N = 4, 3
    m = plan_mask(key_plan("play", 2 * T), N, torch.device("cpu"))
    frame = m[::N, ::N]  # (2T, 2T) frame-level view
    for q in range(2 * T):
        for k in range(2 * T):
            qi, ki = q % T, k % T
            if q < T:
                want = k < T and ki <= qi
            else:
                want = (k < T and ki < qi) or k == q
            assert bool(frame[q, k]) == want, (q, k)
    assert m.shape == (2 * T * N, 2 * T * N)
    causal = plan_mask(key_plan("causal", T), N, torch.device("cpu"))[::N, ::N]
    assert torch.equal(causal, torch.ones(T, T, dtype=torch.bool).tril())


@pytest.mark.parametrize("layout", ["causal", "play"])
def test_planned_attention_equals_the_masked_kernel(layout: str) -> None:
    from reverie.models.dit import key_plan, plan_mask, planned_attention

    T, N = 6, 5
    q, k, v = torch.randn(3, 2, 2, T * N, 8).unbind(0)
    plan = key_plan(layout, T)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=plan_mask(plan, N, q.device))
    assert torch.allclose(planned_attention(q, k, v, plan, N), ref, atol=1e-5)


def test_play_layout_target_equals_the_causal_next_frame() -> None:
    """Target i in the training layout sees exactly what the sampler gives the new frame at play time."""
    m = make()
    T = 4
    x, t, act, text = inputs(1, T)
    tgt = torch.randn_like(x)
    t_tgt = torch.rand(1, T)
    with torch.no_grad():
        out = m(
            torch.cat([x, tgt], 1), torch.cat([t, t_tgt], 1), torch.cat([act, act], 1), text, layout="play"
        )[:, T:]
        for i in range(T):
            seq = torch.cat([x[:, :i], tgt[:, i : i + 1]], 1)
            ts = torch.cat([t[:, :i], t_tgt[:, i : i + 1]], 1)
            ref = m(seq, ts, act[:, : i + 1], text)[:, -1]
            assert torch.allclose(out[:, i], ref, atol=1e-4), i


def test_flow_loss_is_zero_for_the_exact_velocity() -> None:
    """A model that returns the true v = eps - x0 (known here because x0 is all zeros) has zero loss."""
    from reverie.models.flow import FlowConfig, flow_loss

    class Oracle(torch.nn.Module):
        def forward(self, x_t, t, act, text, **kw):  # x0 = 0, so x_t = t * eps and v = eps = x_t / t
            return x_t / t[:, :, None, None, None]

    z = torch.zeros(8, 4, 2, 3, 3)
    for p_play in (0.0, 0.5, 1.0):  # forcing, both, play layout
        loss, metrics = flow_loss(Oracle(), z, None, None, FlowConfig(p_play=p_play))
        assert float(loss) < 1e-8 and metrics["x0_mse"] < 1e-8


def test_blur_context_is_a_3x3_average_mixed_in_by_weight() -> None:
    from reverie.models.flow import blur_context

    z = torch.zeros(2, 1, 1, 5, 5)
    z[:, 0, 0, 2, 2] = 9.0  # one bright cell in the middle
    out = blur_context(z, torch.tensor([0.0, 1.0]))
    assert torch.equal(out[0], z[0])  # weight 0: untouched
    assert torch.allclose(out[1, 0, 0, 1:4, 1:4], torch.ones(3, 3)) and float(out[1].sum()) == pytest.approx(
        9.0
    )
    flat = torch.full((1, 2, 3, 4, 4), 0.7)
    assert torch.allclose(blur_context(flat, torch.tensor([1.0])), flat)  # an even field stays as it is
    corner = torch.zeros(1, 1, 1, 4, 4)
    corner[..., 0, 0] = 4.0  # a corner averages over the 4 cells inside the grid
    assert float(blur_context(corner, torch.tensor([1.0]))[..., 0, 0]) == pytest.approx(1.0)


def test_flow_loss_blurs_the_play_context_and_not_the_targets() -> None:
    from reverie.models.flow import FlowConfig, blur_context, flow_loss

    seen = {}

    class Spy(torch.nn.Module):
        def forward(self, x_t, t, act, text, **kw):
            seen["x"], seen["t"] = x_t.detach().clone(), t.detach().clone()
            return torch.zeros_like(x_t, requires_grad=True)

    z = torch.randn(4, 3, 2, 4, 4)
    cfg = FlowConfig(p_play=1.0, context_noise_max=0.0, context_blur_max=1.0, p_one_t=1.0, p_uniform_t=0.0)
    flow_loss(Spy(), z, None, None, cfg, generator=torch.Generator().manual_seed(0))
    ctx, tgt = seen["x"][:, :3], seen["x"][:, 3:]
    avg = blur_context(z, torch.ones(4))
    w = ((ctx - z) * (avg - z)).sum((1, 2, 3, 4)) / (avg - z).pow(2).sum((1, 2, 3, 4))  # (B,) best weight
    assert torch.allclose(ctx, blur_context(z, w), atol=1e-5)  # each window mixed with its average
    assert ((w > 0) & (w < 1)).all() and len(set(w.tolist())) == 4
    assert torch.equal(seen["t"][:, 3:], torch.ones(4, 3)) and not torch.allclose(
        tgt, ctx
    )  # targets: pure noise at t = 1
    flow_loss(
        Spy(), z, None, None, FlowConfig(p_play=1.0, context_noise_max=0.0), generator=torch.Generator()
    )
    assert torch.equal(seen["x"][:, :3], z)  # off: the context is the clean window
    z = torch.randn(64, 3, 2, 4, 4)
    cfg = FlowConfig(p_play=1.0, context_noise_max=0.0, context_blur_max=1.0, context_blur_p=0.5)
    flow_loss(Spy(), z, None, None, cfg, generator=torch.Generator().manual_seed(0))
    sharp = (seen["x"][:, :3] == z).flatten(1).all(1)  # windows left with their real context
    assert 16 <= int(sharp.sum()) <= 48  # about half, the rest blurred
    assert not torch.allclose(seen["x"][~sharp, :3], z[~sharp])


def test_a_model_with_a_blur_input_is_told_each_play_windows_blur() -> None:
    """Context frames carry their window's blur weight, targets 0; a model without the input is
    given none, and refuses one."""
    from types import SimpleNamespace

    from reverie.models.flow import FlowConfig, blur_context, flow_loss

    seen: dict[str, torch.Tensor | None] = {}

    class Spy(torch.nn.Module):
        cfg = SimpleNamespace(blur_input=True)

        def forward(self, x_t, t, act, text, blur=None, **kw):
            seen["x"], seen["blur"] = x_t.detach().clone(), blur
            return torch.zeros_like(x_t, requires_grad=True)

    z = torch.randn(8, 3, 2, 4, 4)
    cfg = FlowConfig(p_play=1.0, context_noise_max=0.0, context_blur_max=1.0, context_blur_p=0.5)
    flow_loss(Spy(), z, None, None, cfg, generator=torch.Generator().manual_seed(0))
    blur = seen["blur"]
    assert blur is not None and blur.shape == (8, 6)
    assert torch.equal(blur[:, 3:], torch.zeros(8, 3)) and torch.equal(blur[:, :3], blur[:, :1].expand(8, 3))
    w = blur[:, 0]
    assert (w == 0).any() and (w > 0).any()  # half the windows sharp, the rest blurred
    assert torch.allclose(seen["x"][:, :3], blur_context(z, w), atol=1e-6)  # told what was done
    Spy.cfg = SimpleNamespace(blur_input=False)
    flow_loss(Spy(), z, None, None, cfg, generator=torch.Generator().manual_seed(0))
    assert seen["blur"] is None
    x, t, act, text = inputs(1, 2)
    with pytest.raises(ReverieError, match="blur input"):
        make()(x, t, act, text, blur=torch.zeros(1, 2))
    m = make(preset("tiny", blur_input=True))
    with torch.no_grad():  # no blur given means sharp frames, as blur 0
        assert torch.equal(m(x, t, act, text), m(x, t, act, text, blur=torch.zeros(1, 2)))
        assert not torch.allclose(m(x, t, act, text), m(x, t, act, text, blur=torch.ones(1, 2)))


def test_self_forcing_context_is_the_models_own_rollout() -> None:
    """own_rollout keeps the real prefix and replaces the rest; the loss trains on it and stays finite."""
    from reverie.models.flow import FlowConfig, flow_loss, own_rollout

    m = make()
    z, _, act, text = inputs(3, 5)
    cfg = FlowConfig(p_self=1.0, self_steps=1)
    torch.manual_seed(0)
    own = own_rollout(m, z, act, text, None, 2, cfg)
    assert torch.equal(own[:, :2], z[:, :2]) and not torch.allclose(own[:, 2:], z[:, 2:])
    m.train()
    loss, _metrics = flow_loss(m, z, act, text, cfg, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in m.blocks.parameters())
    with pytest.raises(ReverieError):
        FlowConfig(p_self=2.0)


def test_self_forcing_capped_to_a_few_own_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """flow.self_frames = k: the real prefix ends k or fewer frames before the window's last target
    (every draw reaches one), the rollout never makes the last frame (no target sees it); uncapped,
    the prefix is uniform over the window."""
    from reverie.models import flow
    from reverie.models.flow import FlowConfig, flow_loss

    m = make()
    z, _, act, text = inputs(2, 6)
    seen: list[tuple[int, int]] = []
    rollout = flow.own_rollout

    def spy(model, z, act, text, text_null, prefix, cfg):
        seen.append((prefix, z.shape[1]))
        return rollout(model, z, act, text, text_null, prefix, cfg)

    monkeypatch.setattr(flow, "own_rollout", spy)

    def prefixes(**kw: object) -> set[int]:
        seen.clear()
        cfg = FlowConfig(p_play=1.0, p_self=1.0, self_steps=1, **kw)  # type: ignore[arg-type]
        for seed in range(24):
            flow_loss(m, z, act, text, cfg, generator=torch.Generator().manual_seed(seed))
        assert all(frames == 5 for _, frames in seen)  # frames 0..4 only: frame 5 reaches no target
        return {prefix for prefix, _ in seen}

    assert prefixes(self_frames=2) == {3, 4}
    assert prefixes(self_frames=1) == {4}
    assert prefixes() == {1, 2, 3, 4}  # and 5 (no own frame a target sees) skips the rollout
    assert len(seen) < 24
    with pytest.raises(ReverieError, match="self_frames"):
        FlowConfig(self_frames=-1)


def spy_self_forcing(
    monkeypatch: pytest.MonkeyPatch, m: torch.nn.Module
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(what each own_rollout made, the input of each forward pass of m), filled as flow_loss runs."""
    from reverie.models import flow

    made: list[torch.Tensor] = []
    rollout = flow.own_rollout
    monkeypatch.setattr(flow, "own_rollout", lambda *a: made.append(rollout(*a)) or made[-1])
    seen: list[torch.Tensor] = []
    forward = m.forward
    monkeypatch.setattr(
        m, "forward", lambda x, *a, **kw: seen.append(x.detach().clone()) or forward(x, *a, **kw)
    )
    return made, seen


def test_self_forcing_blurs_its_real_prefix_only_when_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """flow.self_blur_prefix: a self-forcing window's real prefix is blurred like the other play
    windows' context, its own frames never; without it the window is left as the rollout made it."""
    from reverie.models.flow import FlowConfig, blur_context, flow_loss

    m = make()
    z, _, act, text = inputs(4, 6)
    made, seen = spy_self_forcing(monkeypatch, m)
    base = dict(
        p_play=1.0, p_self=0.5, self_steps=1, self_frames=2, context_blur_max=1.0, context_noise_max=0.0
    )
    for on in (False, True):
        seen.clear()
        made.clear()
        flow_loss(
            m,
            z,
            act,
            text,
            FlowConfig(**base, self_blur_prefix=on),
            generator=torch.Generator().manual_seed(0),
        )  # type: ignore[arg-type]
        ctx, own = seen[-1][:2, :6], made[-1]  # the self-forcing rows' context, and what the rollout made
        prefix = int((own == z[:2, :5]).flatten(2).all(-1).all(0).sum())  # frames the rollout kept real
        assert prefix in (3, 4)
        assert torch.equal(ctx[:, prefix:5], own[:, prefix:5])  # own frames never blurred
        assert torch.equal(ctx[:, :prefix], z[:2, :prefix]) != on  # the real prefix blurred only when on
        if on:  # by one weight per window, as blur_context mixes it
            w = (ctx[:, 0] - z[:2, 0]).flatten(1).norm(dim=1) / (
                blur_context(z[:2], torch.ones(2))[:, 0] - z[:2, 0]
            ).flatten(1).norm(dim=1)
            assert torch.allclose(ctx[:, :prefix], blur_context(z[:2], w)[:, :prefix], atol=1e-5)
    with pytest.raises(ReverieError, match="self_blur_prefix"):
        FlowConfig(self_blur_prefix=True, p_self=0.5)


def test_self_forcing_gives_own_frames_the_real_block_means(monkeypatch: pytest.MonkeyPatch) -> None:
    """flow.self_colour_block = b: the self-forcing windows' own frames keep the rollout's detail (the
    frame minus its b x b block means) on the real frames' block means; the real prefix is untouched."""
    from reverie.models.flow import FlowConfig, block_means, flow_loss

    m = make()
    z, _, act, text = inputs(4, 6)
    made, seen = spy_self_forcing(monkeypatch, m)
    base = dict(p_play=1.0, p_self=0.5, self_steps=1, self_frames=2, context_noise_max=0.0)
    for block in (2, 4):
        seen.clear()
        flow_loss(m, z, act, text, FlowConfig(**base, self_colour_block=block), generator=torch.Generator().manual_seed(0))  # type: ignore[arg-type]  # fmt: skip
        ctx, own = seen[-1][:2, :6], made[-1]
        prefix = int((own == z[:2, :5]).flatten(2).all(-1).all(0).sum())
        assert prefix in (3, 4)
        assert torch.equal(ctx[:, :prefix], z[:2, :prefix]) and torch.equal(ctx[:, 5:], z[:2, 5:])
        got, mine, real = ctx[:, prefix:5], own[:, prefix:5], z[:2, prefix:5]
        assert torch.allclose(block_means(got, block), block_means(real, block), atol=1e-5)
        assert torch.allclose(got - block_means(got, block), mine - block_means(mine, block), atol=1e-5)
        assert not torch.allclose(got, mine, atol=1e-3) and not torch.allclose(got, real, atol=1e-3)
        assert torch.equal(seen[-1][2:, :6], z[2:])  # windows with real context are left as they are
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert torch.equal(block_means(x, 2)[0, 0, :2, :2], torch.full((2, 2), 2.5))  # mean of 0, 1, 4, 5
    with pytest.raises(ReverieError, match="self_colour_block"):
        FlowConfig(self_colour_block=3, p_self=0.5)
    with pytest.raises(ReverieError, match="p_self"):
        FlowConfig(self_colour_block=4)


def test_self_forcing_tells_a_blur_input_model_its_own_frames_level(monkeypatch: pytest.MonkeyPatch) -> None:
    """A self-forcing window's real prefix is told 0 and left sharp, the model's own frames are told
    flow.self_context_blur (in the rollout that made them too) and not blurred on top; other play
    windows are told their blur weight. A network without the input refuses the setting."""
    from reverie.models.flow import FlowConfig, flow_loss

    m = make(preset("tiny", blur_input=True))
    z, _, act, text = inputs(4, 5)
    calls: list[tuple[object, torch.Tensor | None, torch.Tensor]] = []
    forward = m.forward

    def spy(x_t, t, act, text, blur=None, **kw):
        calls.append((kw.get("layout"), blur, x_t.detach().clone()))
        return forward(x_t, t, act, text, blur=blur, **kw)

    monkeypatch.setattr(m, "forward", spy)
    cfg = FlowConfig(p_play=1.0, p_self=0.5, self_steps=1, self_context_blur=0.3, context_blur_max=1.0,
                     context_noise_max=0.0, p_drop_act=0.0, p_drop_text=0.0)  # fmt: skip
    flow_loss(m, z, act, text, cfg, generator=torch.Generator().manual_seed(1))  # draws prefix 1
    layout, blur, x = calls[-1]
    assert layout == "play" and blur is not None and blur.shape == (4, 10)
    prefix = int((blur[0, :5] == 0).sum())
    assert prefix == 1  # so the rollout makes frames 1..3 (the last reaches no target, it stays real)
    told_own = torch.tensor([0.0] * prefix + [0.3] * (5 - prefix))
    assert torch.equal(blur[:2, :5], told_own.expand(2, 5)) and torch.equal(blur[:, 5:], torch.zeros(4, 5))
    assert torch.equal(blur[2:, :5], blur[2:, :1].expand(2, 5))  # the others: their window's weight
    assert torch.allclose(x[:2, :prefix], z[:2, :prefix])  # the real prefix kept sharp
    assert not torch.allclose(x[:2, prefix:4], z[:2, prefix:4])  # then the model's own frames
    assert torch.equal(x[:2, 4], z[:2, 4])
    made = [b for _, b, _ in calls[:-1] if b is not None]  # the rollout told its own earlier frames
    assert any(bool((b == 0.3).any()) for b in made)  # the level while making later ones
    with pytest.raises(ReverieError, match=r"model\.blur_input"):
        flow_loss(make(), z, act, text, cfg, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ReverieError, match="self_context_blur"):
        FlowConfig(self_context_blur=1.5)


def test_a_run_of_another_model_family_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of the removed frame-stack family get an error that says why, not a missing-field list."""
    from reverie.models import dynamics

    config = {"kind": "dynamics", "model": {"family": "framestack", "width": 64}}
    monkeypatch.setattr(dynamics, "load_run", lambda path: (config, {}))
    with pytest.raises(ReverieError, match=r"'framestack'.*diffusion transformer only"):
        dynamics.load_dynamics("runs/old_conv")
