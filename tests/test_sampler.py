"""The sampler: cached == uncached rollout, sliding window, seeds, guidance, offline video."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

from reverie.errors import ReverieError
from reverie.models.dit import DiT, preset
from reverie.models.sampler import Rollout, SamplerConfig, SessionContext, sample_video

C, H, W = 16, 8, 8


def make(max_context: int = 8, blur_input: bool = False) -> DiT:
    torch.manual_seed(0)
    m = DiT(preset("tiny", max_context=max_context, blur_input=blur_input))
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m.eval()


@torch.no_grad()
def reference_rollout(
    m: DiT,
    z_ctx: torch.Tensor,
    act: torch.Tensor,
    text: torch.Tensor,
    cfg: SamplerConfig,
    n: int,
    seed: int,
    context_act_null: bool = False,
) -> torch.Tensor:
    """The same rollout without a cache: every step re-runs the whole sequence (same RNG order)."""
    g = torch.Generator().manual_seed(seed)
    s = cfg.context_noise
    B, Tc = z_ctx.shape[:2]

    def renoise(z: torch.Tensor) -> torch.Tensor:
        return (1 - s) * z + s * torch.randn(B, C, H, W, generator=g) if s > 0 else z

    ctx = [renoise(z_ctx[:, i]) for i in range(Tc)]
    out = []
    for j in range(n):
        x = torch.randn(B, C, H, W, generator=g)
        ts = torch.linspace(1.0, 0.0, cfg.steps + 1).tolist()
        T = len(ctx) + 1
        for t, t_next in itertools.pairwise(ts):
            seq = torch.stack([*ctx, x], 1)  # (B, T, C, H, W)
            tt = torch.full((B, T), s)
            tt[:, -1] = t
            blur = None
            # the given context and the new frame are told 0, the generated frames the level
            if cfg.context_blur and j:
                blur = torch.zeros(B, T)
                blur[:, Tc:-1] = cfg.context_blur
            a = act[:, : Tc + j + 1]
            a_null = torch.zeros(a.shape, dtype=torch.bool)
            a_null[:, :Tc] = context_act_null
            v_text = m(seq, tt, a, text, act_null=a_null, blur=blur)[:, -1]
            if cfg.guidance != 1.0:  # the second copy drops the text, every frame's action, or both
                null_text = None if cfg.guide != "action" else text
                null_act = a_null if cfg.guide == "text" else torch.ones_like(a_null)
                v_null = m(seq, tt, a, null_text, act_null=null_act, blur=blur)[:, -1]
                v = v_null + cfg.guidance * (v_text - v_null)
            else:
                v = v_text
            x = x + (t_next - t) * v
        out.append(x)
        ctx.append(renoise(x))
    return torch.stack(out, 1)


@pytest.mark.parametrize(
    ("steps", "guidance", "noise", "blur", "guide"),
    [
        (1, 1.0, 0.0, 0.0, "text"),
        (2, 1.0, 0.05, 0.0, "text"),
        (3, 2.5, 0.02, 0.0, "text"),
        (1, 1.0, 0.1, 0.4, "text"),
        (2, 2.5, 0.05, 0.7, "text"),
        (2, 1.5, 0.05, 0.0, "action"),
        (1, 2.0, 0.1, 0.4, "both"),
    ],
)
def test_cached_equals_uncached_sampling(
    steps: int, guidance: float, noise: float, blur: float, guide: str
) -> None:
    m = make(blur_input=bool(blur))
    cfg = SamplerConfig(steps=steps, guidance=guidance, context_noise=noise, context_blur=blur, guide=guide)
    g = torch.Generator().manual_seed(3)
    z_ctx = torch.randn(2, 3, C, H, W, generator=g)
    act = torch.randint(0, 9, (2, 7), generator=g)
    text = torch.randn(2, 384, generator=g)
    r = Rollout(m, cfg)
    gen = torch.Generator().manual_seed(11)
    r.reset(z_ctx, act[:, :3], text, generator=gen)
    cached = torch.stack([r.step(act[:, 3 + j], gen) for j in range(4)], 1)
    ref = reference_rollout(m, z_ctx, act, text, cfg, 4, seed=11)
    assert torch.allclose(cached, ref, atol=1e-4), (cached - ref).abs().max()


def test_context_without_actions_uses_the_null_action() -> None:
    m = make()
    cfg = SamplerConfig(steps=1, context_noise=0.02)
    z_ctx = torch.randn(2, 2, C, H, W)
    act = torch.randint(0, 9, (2, 5))
    r = Rollout(m, cfg)
    gen = torch.Generator().manual_seed(7)
    r.reset(z_ctx, None, None, generator=gen)
    cached = torch.stack([r.step(act[:, 2 + j], gen) for j in range(3)], 1)
    ref = reference_rollout(m, z_ctx, act, None, cfg, 3, seed=7, context_act_null=True)  # type: ignore[arg-type]
    assert torch.allclose(cached, ref, atol=1e-4)


def test_bf16_weights_roll_out_close_to_fp32() -> None:
    m = make()
    z_ctx, act = torch.randn(1, 3, C, H, W), torch.zeros(1, 3, dtype=torch.long)

    def roll(model: DiT) -> torch.Tensor:
        r = Rollout(model, SamplerConfig(steps=2))
        g = torch.Generator().manual_seed(0)
        r.reset(z_ctx, act, None, generator=g)
        return torch.stack([r.step(torch.tensor([1]), g) for _ in range(2)])

    fp32 = roll(m)
    bf16 = roll(copy.deepcopy(m).to(torch.bfloat16))
    assert bf16.dtype == torch.float32 and torch.isfinite(bf16).all()
    assert (bf16 - fp32).abs().mean() < 0.1 * fp32.abs().mean()


def test_sliding_window_runs_past_max_context() -> None:
    m = make(max_context=4)
    r = Rollout(m, SamplerConfig(steps=1))
    g = torch.Generator().manual_seed(0)
    r.reset(torch.randn(3, 2, C, H, W), torch.zeros(3, 2, dtype=torch.long), None, generator=g)
    frames = [r.step(torch.randint(0, 9, (3,)), g) for _ in range(20)]
    assert r.frames == 22 and r.cache.context_frames == 4
    assert all(f.shape == (3, C, H, W) and torch.isfinite(f).all() for f in frames)
    # After the window slid, a frame still depends on the recent context (the cache is live, not stale).
    k = r.cache.k[0]
    assert k is not None and k.shape[2] == (2 * 4 + 2) * 64  # bounded: never grows with the rollout


def test_seeded_determinism_and_different_futures() -> None:
    m = make()
    z_ctx = torch.randn(1, 2, C, H, W)
    act = torch.tensor([1])

    def roll(seed: int) -> torch.Tensor:
        r = Rollout(m, SamplerConfig(steps=2, context_noise=0.05))
        g = torch.Generator().manual_seed(seed)
        r.reset(z_ctx, torch.zeros(1, 2, dtype=torch.long), None, generator=g)
        return torch.stack([r.step(act, g) for _ in range(3)])

    assert torch.equal(roll(5), roll(5))
    assert not torch.allclose(roll(5), roll(6), atol=1e-3)


def test_guidance_matches_its_definition() -> None:
    """One Euler step from nothing: x0 = noise - v, with v = v_null + s (v_text - v_null)."""
    m = make()
    text = torch.randn(2, 384)
    act = torch.tensor([2, 4])
    for s in (1.0, 3.0):
        r = Rollout(m, SamplerConfig(steps=1, guidance=s))
        r.reset(None, text=text, batch_size=2, latent_shape=(C, H, W))
        z = r.step(act, torch.Generator().manual_seed(1))
        noise = torch.randn(2, C, H, W, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            args = (noise[:, None], torch.ones(2, 1), act[:, None])
            v_text, v_null = m(*args, text)[:, 0], m(*args, None)[:, 0]
        assert torch.allclose(z, noise - (v_null + s * (v_text - v_null)), atol=1e-4)


@pytest.mark.parametrize("guide", ["action", "both"])
def test_action_guidance_matches_its_definition(guide: str) -> None:
    """guide=action: the second copy keeps the text and drops the action; both: drops the two."""
    m = make()
    text = torch.randn(2, 384)
    act = torch.tensor([2, 4])
    r = Rollout(m, SamplerConfig(steps=1, guidance=1.7, guide=guide))
    r.reset(None, text=text, batch_size=2, latent_shape=(C, H, W))
    z = r.step(act, torch.Generator().manual_seed(1))
    noise = torch.randn(2, C, H, W, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        args = (noise[:, None], torch.ones(2, 1), act[:, None])
        v_cond = m(*args, text)[:, 0]
        v_null = m(*args, text if guide == "action" else None, act_null=torch.ones(2, 1, dtype=torch.bool))[
            :, 0
        ]
    assert not torch.allclose(v_cond, v_null, atol=1e-3)
    assert torch.allclose(z, noise - (v_null + 1.7 * (v_cond - v_null)), atol=1e-4)
    with pytest.raises(ReverieError, match="guide"):
        SamplerConfig(guide="actions")


def test_text_null_per_session() -> None:
    m = make()
    text = torch.randn(2, 384)
    null = torch.tensor([True, False])

    def first(text_in: torch.Tensor | None, text_null: torch.Tensor | None) -> torch.Tensor:
        r = Rollout(m, SamplerConfig(steps=1))
        r.reset(None, text=text_in, text_null=text_null, batch_size=2, latent_shape=(C, H, W))
        return r.step(torch.tensor([0, 0]), torch.Generator().manual_seed(2))

    mixed, none = first(text, null), first(None, None)
    assert torch.allclose(mixed[0], none[0], atol=1e-6)
    assert not torch.allclose(mixed[1], none[1], atol=1e-3)


def test_sample_video_prefix_equals_rollout_and_keeps_known_frames() -> None:
    m = make()
    z = torch.randn(2, 6, C, H, W)
    act = torch.randint(0, 9, (2, 6))
    cfg = SamplerConfig(steps=2, context_noise=0.03)
    known = torch.tensor([True, True, False, False, True, False])
    out = sample_video(Rollout(m, cfg), z, known, act, generator=torch.Generator().manual_seed(4))
    assert out.shape == z.shape
    assert torch.equal(out[:, known], z[:, known])
    r = Rollout(m, cfg)
    g = torch.Generator().manual_seed(4)
    r.reset(z[:, :2], act[:, :2], None, generator=g)
    assert torch.allclose(out[:, 2], r.step(act[:, 2], g), atol=1e-5)
    # Nothing known: text-to-video from pure noise still works.
    gen = sample_video(
        Rollout(m), z, torch.zeros(6, dtype=torch.bool), act, generator=torch.Generator().manual_seed(0)
    )
    assert torch.isfinite(gen).all() and not torch.allclose(gen, z)


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(ReverieError, match=r"1\.\.8"):
        SamplerConfig(steps=0)
    with pytest.raises(ReverieError, match="reset"):
        Rollout(make()).step(torch.tensor([0]))
    with pytest.raises(ReverieError, match=r"context blur 1\.5: accepted 0 <= level <= 1"):
        SamplerConfig(context_blur=1.5)
    with pytest.raises(ReverieError, match="not trained with a blur input"):
        Rollout(make(), SamplerConfig(context_blur=0.3))


def test_the_context_blur_setting_reaches_a_model_with_a_blur_input() -> None:
    """The same draws, told a different blur level for the cached frames, give different frames; a
    model grown with the input (its embedding still zero) plays exactly as the one it grew from."""
    z_ctx, act = torch.randn(2, 3, C, H, W), torch.randint(0, 9, (2, 6))

    def roll(m: DiT, blur: float) -> torch.Tensor:
        r, g = Rollout(m, SamplerConfig(steps=1, context_noise=0.1, context_blur=blur)), torch.Generator()
        r.reset(z_ctx, act[:, :3], None, generator=g.manual_seed(5))
        return torch.stack([r.step(act[:, 3 + j], g) for j in range(3)], 1)

    m = make(blur_input=True)
    assert not torch.allclose(roll(m, 0.0), roll(m, 0.6), atol=1e-3)
    plain = make()
    grown = DiT(preset("tiny", max_context=8, blur_input=True)).eval()
    missing, _ = grown.load_state_dict(plain.state_dict(), strict=False)
    assert missing and all(k.startswith("blur_embed.") for k in missing)
    assert torch.equal(roll(grown, 0.6), roll(plain, 0.0))


def test_given_frames_are_told_sharp_and_generated_ones_the_level_through_a_rebuild() -> None:
    """The told blur level follows a frame's origin: real context frames 0, the model's own frames the
    play level, and a rollout rebuilt from a session's context tells each frame what it was told."""
    m = make(blur_input=True)
    cfg = SamplerConfig(steps=1, context_noise=0.0, context_blur=0.6)
    z_ctx, act = torch.randn(1, 2, C, H, W), torch.randint(0, 9, (1, 6))
    r = Rollout(m, cfg)
    r.reset(z_ctx, act[:, :2], None, generator=torch.Generator().manual_seed(1))
    for j in range(3):
        r.step(act[:, 2 + j], torch.Generator().manual_seed(j))
    ctx = r.session_context(0)
    assert ctx.made is not None and ctx.made.tolist() == [False, False, True, True, True]

    def next_frame(sessions: list[SessionContext]) -> torch.Tensor:
        other = Rollout(m, cfg)
        other.rebuild(sessions)
        return other.step(act[:, 5], torch.Generator().manual_seed(9))

    ours = r.step(act[:, 5], torch.Generator().manual_seed(9))
    assert torch.allclose(next_frame([ctx]), ours, atol=1e-5)
    as_given = SessionContext(ctx.z, ctx.act, None)  # the same frames, all told sharp
    assert not torch.allclose(next_frame([as_given]), ours, atol=1e-3)


def test_rebuild_restarts_rows_from_their_recent_frames() -> None:
    m = make(max_context=4)
    r = Rollout(m, SamplerConfig(steps=1))
    g = torch.Generator().manual_seed(0)
    text = torch.randn(2, 384)
    r.reset(torch.randn(2, 2, C, H, W), torch.zeros(2, 2, dtype=torch.long), text, generator=g)
    for _ in range(4):
        r.step(torch.tensor([1, 2]), g)
    a, b = r.session_context(0), r.session_context(1)
    assert a.z.shape == (4, C, H, W) and a.act is not None and a.act.tolist() == [1, 1, 1, 1]
    assert a.text is not None and torch.equal(a.text, text[0])
    # A new player starting from one frame joins, row 0 leaves: rows are (b, new).
    new = SessionContext(torch.randn(1, C, H, W), torch.tensor([0]), None)
    r.rebuild([b, new], g)
    assert r.B == 2 and r.frames == 4
    b2, new2 = r.session_context(0), r.session_context(1)
    assert torch.equal(b2.z, b.z) and b2.text is not None and torch.equal(b2.text, text[1])
    assert new2.text is None and torch.equal(new2.z, new.z.expand(4, C, H, W))  # padded by standing still
    assert new2.act is not None and new2.act.tolist() == [0, 0, 0, 0]
    z = r.step(torch.tensor([3, 4]), g)
    assert z.shape == (2, C, H, W) and torch.isfinite(z).all()


@pytest.mark.parametrize("guidance", [1.0, 2.0])
@pytest.mark.parametrize("frames_before", [2, 11])  # inside the window, and after it slides
def test_add_rows_equals_a_rebuild_for_the_new_row_and_keeps_the_others(
    guidance: float, frames_before: int
) -> None:
    """A join runs only the new row: its frames match a full rebuild's, the running row's do not change."""
    model = make(max_context=4)
    cfg = SamplerConfig(steps=2, context_noise=0.1, guidance=guidance)
    g = torch.Generator().manual_seed(0)
    text = torch.randn(1, 384, generator=g)
    a = Rollout(model, cfg)
    a.reset(
        torch.randn(1, 3, 16, 8, 8, generator=g),
        torch.tensor([[0, 1, 2]]),
        text,
        generator=[torch.Generator().manual_seed(1)],
    )
    gen_a = torch.Generator().manual_seed(2)
    for i in range(frames_before):
        a.step(torch.tensor([i % 9]), [gen_a])
    alone = a.fork()
    state_a = gen_a.get_state()
    joiner = SessionContext(torch.randn(2, 16, 8, 8, generator=g), torch.tensor([3, 4]), None)
    rebuilt = a.fork()
    a.add_rows([joiner], [torch.Generator().manual_seed(7)])
    rebuilt.rebuild(
        [rebuilt.session_context(0), joiner],
        [torch.Generator().manual_seed(9), torch.Generator().manual_seed(7)],
    )
    assert a.B == rebuilt.B == 2
    gens_a = [torch.Generator().set_state(state_a), torch.Generator().manual_seed(8)]
    gens_r = [torch.Generator().manual_seed(9), torch.Generator().manual_seed(8)]
    gen_alone = torch.Generator().set_state(state_a)
    for i in range(6):
        act = torch.tensor([i % 9, (i + 3) % 9])
        za, zr = a.step(act, gens_a), rebuilt.step(act, gens_r)
        z1 = alone.step(act[:1], [gen_alone])
        # the new row: as if the batch were rebuilt (its keys sit at other absolute positions: RoPE's
        # rotations are relative, equal up to float rounding)
        assert torch.allclose(za[1], zr[1], atol=2e-2), i
        assert torch.allclose(za[0], z1[0], atol=1e-4), i  # the running row: as if nobody joined
    both = a.fork()  # the first player leaves: the other goes on exactly as it would have
    g_both = [torch.Generator().set_state(g.get_state()) for g in gens_a]
    a.keep_rows([1])
    za, zb = a.step(torch.tensor([1]), gens_a[1:]), both.step(torch.tensor([0, 1]), g_both)
    assert a.B == 1 and torch.allclose(za[0], zb[1], atol=1e-4)


def test_a_reset_prefills_its_context_in_one_pass_as_appends_would() -> None:
    m = make()
    cfg = SamplerConfig(steps=2, context_noise=0.2)
    z = torch.randn(2, 6, C, H, W)
    act = torch.randint(0, 4, (2, 7))
    one, calls = Rollout(m, cfg), []
    hook = m.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[1]))
    one.reset(z, act[:, :6], generator=torch.Generator().manual_seed(3))
    hook.remove()
    assert calls == [5]  # the 5 committed frames in one pass; the 6th waits for the next frame's pass
    appended = Rollout(m, cfg)
    appended.reset(None, batch_size=2, latent_shape=(C, H, W))
    g = torch.Generator().manual_seed(3)
    for i in range(6):
        appended.append(z[:, i], act[:, i], generator=g)
    assert one.cache.count == appended.cache.count == 5
    a = one.step(act[:, 6], torch.Generator().manual_seed(9))
    b = appended.step(act[:, 6], torch.Generator().manual_seed(9))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_a_prepared_row_joins_without_a_pass_and_plays_as_if_alone(guidance: float) -> None:
    """`prepare_rows` builds a joiner's rows away from the batch (on its own frame clock); `add_rows`
    then copies them in with no network pass, and the joiner plays as a rollout of its own would."""
    model = make(max_context=4)
    cfg = SamplerConfig(steps=2, context_noise=0.1, guidance=guidance)
    g = torch.Generator().manual_seed(0)
    text = torch.randn(1, 384, generator=g)
    a = Rollout(model, cfg)
    a.reset(torch.randn(1, 3, C, H, W, generator=g), torch.tensor([[0, 1, 2]]), text,
            generator=[torch.Generator().manual_seed(1)])  # fmt: skip
    gen_a = torch.Generator().manual_seed(2)
    for i in range(7):  # the window has slid: the batch's clock is far from the joiner's
        a.step(torch.tensor([i % 9]), [gen_a])
    alone = a.fork()
    state_a = gen_a.get_state()

    joiner = SessionContext(torch.randn(6, C, H, W, generator=g), torch.tensor([3, 4, 5, 6, 7, 8]), None)
    gen_j = torch.Generator().manual_seed(7)
    prepared = a.prepare_rows([joiner], [gen_j])
    assert gen_j.initial_seed() == 7 and torch.equal(
        gen_j.get_state(), torch.Generator().manual_seed(7).get_state()
    )
    solo = Rollout(model, cfg)  # the joiner's own rollout: the window's newest 4 frames
    solo.reset(joiner.z[None, -4:], joiner.act[None, -4:], torch.zeros(1, 384), text_null=torch.tensor([True]),
               generator=[torch.Generator().manual_seed(7)])  # fmt: skip

    calls: list[int] = []
    hook = model.register_forward_hook(lambda mod, args, out: calls.append(1))
    a.add_rows([joiner], [gen_j], prepared=prepared)
    hook.remove()
    assert calls == [] and a.B == 2  # nothing ran in the tick: the keys were copied
    # the joiner's generator now stands where the prefill left it
    assert torch.equal(gen_j.get_state(), prepared.generators[0].get_state())  # type: ignore[index]

    gens_a = [torch.Generator().set_state(state_a), torch.Generator().manual_seed(8)]
    gen_alone, gen_solo = torch.Generator().set_state(state_a), torch.Generator().manual_seed(8)
    for i in range(6):
        act = torch.tensor([i % 9, (i + 3) % 9])
        za = a.step(act, gens_a)
        assert torch.allclose(za[0], alone.step(act[:1], [gen_alone])[0], atol=1e-4), i  # untouched
        # as if alone, but for one slot: the joiner's first pass sees the batch's window, one key slot
        # longer than a fresh rollout's at its first commit, and that slot is empty
        assert torch.allclose(za[1], solo.step(act[1:], [gen_solo])[0], atol=2e-2), i
    a.keep_rows([1])  # the first player leaves; the joiner goes on on its own clock
    assert a.cache.offset is not None and a.cache.offset.shape[0] == (2 if guidance != 1.0 else 1)
    act = torch.tensor([5])
    assert torch.allclose(a.step(act, gens_a[1:])[0], solo.step(act, [gen_solo])[0], atol=2e-2)


def test_prepared_rows_hand_over_their_noise_and_start_an_empty_batch() -> None:
    model = make(max_context=4)
    cfg = SamplerConfig(steps=1, context_noise=0.2)
    g = torch.Generator().manual_seed(0)
    ctx = SessionContext(torch.randn(5, C, H, W, generator=g), torch.tensor([1, 2, 3, 4, 5]), None)
    # an empty batch takes the prepared rows as they are (what a rebuild would have built)
    gen_p, gen_r = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    p, r = Rollout(model, cfg), Rollout(model, cfg)
    prepared = p.prepare_rows([ctx], [gen_p])
    calls: list[int] = []
    hook = model.register_forward_hook(lambda mod, args, out: calls.append(1))
    p.add_rows([ctx], [gen_p], prepared=prepared)
    hook.remove()
    assert calls == []
    r.add_rows([ctx], [gen_r])  # built in place: the same draws, the same frames
    assert torch.equal(gen_p.get_state(), gen_r.get_state())
    for i in range(3):
        act = torch.tensor([i])
        assert torch.equal(p.step(act, [gen_p]), r.step(act, [gen_r]))
    # a prepared row that is not used leaves the session's generator where it was
    gen_q = torch.Generator().manual_seed(4)
    short = SessionContext(ctx.z[:1], ctx.act[:1], None)  # one frame: a rebuild pads to 1, not 4
    q = Rollout(model, cfg)
    unused = q.prepare_rows([short], [gen_q])
    q.add_rows([short], [gen_q], prepared=unused)
    ref = Rollout(model, cfg)
    gen_ref = torch.Generator().manual_seed(4)
    ref.add_rows([short], [gen_ref])
    assert q.cache.count == ref.cache.count == 0 and torch.equal(gen_q.get_state(), gen_ref.get_state())
