"""The learned world model as an engine backend: batching, determinism, sliding window, CLI."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_runs import save_untrained_run
from typer.testing import CliRunner

from reverie.engine.model_backend import ModelBackend, ModelConfig
from reverie.engine.session import WorldSession
from reverie.sizes import Size

DUNGEON_SPEC = {
    "type": "discrete",
    "n": 9,
    "names": ["noop", "forward", "back", "turn_left", "turn_right", "strafe_left", "strafe_right",
              "forward_left", "forward_right"],
}  # fmt: skip


def save_tiny_autoencoder(out: Path) -> None:
    from reverie.checkpoint import save_run
    from reverie.models.autoencoder import PRESETS, Autoencoder

    torch.manual_seed(0)
    ae = Autoencoder(PRESETS["tiny"])
    out.mkdir(parents=True, exist_ok=True)
    config = {"kind": "autoencoder", "model": asdict(ae.cfg), "data": {"width": 64, "height": 64}, "step": 0}
    save_run(out, config=config, ema_state=ae.state_dict(), card="tiny\n", train_tensors={}, train_json={})


def make_tiny_run(
    root: Path,
    spec: dict | None = None,
    world: str | None = "reverie/Dungeon-v0",
    max_context: int = 4,
) -> str:
    """A tiny untrained dynamics run (+ autoencoder) laid out as `reverie train dynamics` writes it."""
    ae = root / "ae"
    if not ae.exists():
        save_tiny_autoencoder(ae)
    run = root / f"dit_{(spec or DUNGEON_SPEC)['type']}_{world is not None}"
    save_untrained_run(
        str(run), str(ae), spec or DUNGEON_SPEC, preset="tiny", world=world, size=Size(64, 64),
        overrides={"max_context": max_context},
    )  # fmt: skip
    return str(run)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_tiny_run(tmp_path_factory.mktemp("model"))


def play(backend: ModelBackend, sids: list[int], seeds: list[int], frames: int) -> list[np.ndarray]:
    """Reset `sids` with `seeds`, step them together (actions fixed by the seed): (T, H, W, 3) each."""
    outs: list[list[np.ndarray]] = [[backend.reset(s, seed).frame] for s, seed in zip(sids, seeds)]
    for t in range(frames):
        step = backend.step(sids, [(t + seed) % 9 for seed in seeds])  # actions follow the seed
        for i, o in enumerate(step):
            outs[i].append(o.frame)
    return [np.stack(o) for o in outs]


def test_frames_are_uint8_and_seed_reproduces(tiny_run: str) -> None:
    a = play(ModelBackend(tiny_run), [1], [7], 6)[0]
    b = play(ModelBackend(tiny_run), [1], [7], 6)[0]
    c = play(ModelBackend(tiny_run), [1], [8], 6)[0]
    assert a.shape == (7, 64, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[1:], c[1:])


def test_engine_clock_replays_a_seed(tiny_run: str) -> None:
    from reverie.engine.clock import EngineClock, PlaySession
    from reverie.engine.controls import InputState

    def run(seed: int) -> list[bytes]:
        clock = EngineClock()
        s = PlaySession({"dream": ModelBackend(tiny_run, ModelConfig(steps=1))}, seed=seed)
        clock.add(s)
        clock.tick()  # the reset goes to the clock's worker
        clock.wait_resets()
        out = [f.data for f in s.take_frames()]
        for i in range(6):
            s.set_input(InputState(keys=frozenset({"w"} if i % 2 else {"a"}), seq=i + 1))
            clock.tick()
            out += [f.data for f in s.take_frames()]
        clock.stop()
        assert s.error is None
        return out

    a = run(11)
    assert len(a) == 7
    assert a == run(11) and a != run(12)


def test_batched_equals_unbatched(tiny_run: str) -> None:
    both = play(ModelBackend(tiny_run), [1, 2], [3, 4], 6)
    alone = [play(ModelBackend(tiny_run), [9], [seed], 6)[0] for seed in (3, 4)]
    for i in range(2):
        # the only difference allowed is the rounding of bf16 matmuls at another batch size
        diff = np.abs(both[i].astype(int) - alone[i].astype(int))
        assert diff.max() <= 2, f"session {i} differs by up to {diff.max()} levels"
        assert diff.mean() < 0.05


def test_sliding_window_plays_past_max_context(tiny_run: str) -> None:
    b = ModelBackend(tiny_run)
    assert b.rollout.max_context == 4
    frames = play(b, [1], [0], 13)[0]
    assert frames.shape[0] == 14
    assert b.rollout.cache.context_frames <= 4  # never more than the window
    assert b.rollout.frames > 4


def test_sessions_join_and_leave(tiny_run: str) -> None:
    b = ModelBackend(tiny_run)
    b.reset(1, 1)
    b.step([1], [1])
    b.reset(2, 2)  # a second player joins: the batch is rebuilt with both
    outs = b.step([1, 2], [1, 2])
    assert len(outs) == 2 and b.rollout.B == 2
    b.close(1)
    (out,) = b.step([2], [0])  # the leaver's row is dropped on the next tick
    assert out.frame.shape == (64, 64, 3) and b.rollout.B == 1
    with pytest.raises(Exception, match="never reset"):
        b.step([1], [0])


def test_prompt_image_and_dreamed_start(tmp_path: Path) -> None:
    run = make_tiny_run(tmp_path, world=None)  # no simulator: the first frame is dreamed
    b = ModelBackend(run)
    dreamed = b.reset(1, 5, prompt="a red room").frame
    assert dreamed.shape == (64, 64, 3)
    img = np.zeros((90, 120, 3), np.uint8)
    img[:, :60] = 255
    first = b.reset(2, 5, image=img).frame  # the image, fitted to the model's size, is frame 0
    assert first.shape == (64, 64, 3) and first[:, :10].min() == 255 and first[:, -10:].max() == 0
    assert len(b.step([1, 2], [0, 1])) == 2


def test_start_from_a_real_walk_beside_the_real_world(tiny_run: str) -> None:
    """No image, no prompt: the dream starts from the real world's start walk, the frame the real pane shows."""
    from reverie.engine.backends import START_WALK, SimulatorBackend

    b = ModelBackend(tiny_run)
    real = SimulatorBackend("reverie/Dungeon-v0", "64x64")
    start = b.reset(1, 11).frame
    assert np.array_equal(start, real.reset(1, 11).frame)
    ctx = b._slots[1].ctx
    assert ctx is not None and len(ctx.z) == START_WALK and ctx.act is not None and int(ctx.act[0]) == 0
    assert not np.array_equal(start, real.reset(2, 12).frame)  # another seed, another start
    prompted = b.reset(3, 11, prompt="a red room").frame  # a prompt alone dreams its own start
    assert not np.array_equal(prompted, start)
    assert len(b.step([1, 3], [1, 1])) == 2
    real.close_all()


def test_box_and_video_runs(tmp_path: Path) -> None:
    box = {"type": "box", "shape": [2], "low": [-1.0, -1.0], "high": [1.0, 1.0], "names": ["x", "y"]}
    for spec in (box, {"type": "none"}):
        b = ModelBackend(make_tiny_run(tmp_path, spec=spec, world=None))
        b.reset(1, 0)
        assert b.actions.to_dict() == spec
        act = np.array([0.5, -0.5], np.float32) if b.actions.is_box else None
        (out,) = b.step([1], [act])
        assert out.frame.shape == (64, 64, 3)


def test_world_session_with_model(tiny_run: str) -> None:
    from reverie.engine.controls import InputState

    with WorldSession(ModelBackend(tiny_run, ModelConfig(steps=1))) as s:
        assert s.reset(seed=3).frame.shape == (64, 64, 3)
        assert s.step(InputState(keys=frozenset({"w"}))).frame.dtype == np.uint8


def test_bad_run_is_a_clear_error(tmp_path: Path) -> None:
    from reverie.errors import ReverieError

    with pytest.raises(ReverieError, match=r"no model at .*--model takes a run directory"):
        ModelBackend(str(tmp_path / "missing"))


def test_bench_engine_model_json(tiny_run: str) -> None:
    from reverie.cli import app

    res = CliRunner().invoke(
        app,
        [
            "bench",
            "engine",
            "--model",
            tiny_run,
            "--frames",
            "20",
            "--sessions",
            "2",
            "--steps",
            "1",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    row = json.loads(res.output.strip().splitlines()[-1])
    for key in ("fps", "frame_ms_p50", "frame_ms_p99", "height", "width", "steps", "threads", "sessions"):
        assert key in row
    assert row["backend"] == "model" and row["steps"] == 1 and row["sessions"] == 2 and row["fps"] > 0


def test_bench_engine_times_players_joining_and_leaving(tiny_run: str) -> None:
    from reverie.engine.bench import bench_engine

    row = bench_engine(tiny_run, frames=1200, sessions=2, steps=1, joins=3)  # a start: ~100 tiny ticks
    # each join (reset on the worker, then the guest's first step) and leave was timed, however the
    # guest's start on the reset worker fell against the bench's ticks
    assert row["joins"] == 3 and row["join_ms_max"] >= row["join_ms_p50"] > 0
    assert row["join_ticks"] == 6  # the ticks that added its row and the ones it left on
    assert row["frame_ms_p99"] >= row["frame_ms_p50"] > 0


def test_eval_speed_times_the_model_with_the_engine_bench(tiny_run: str) -> None:
    """`eval --speed` calls the bench of `reverie bench engine` on the model's own world: a number, not null."""
    from reverie.cli.eval import _engine_fps

    fps = _engine_fps(tiny_run, steps=1, frames=10)
    assert fps is not None and fps > 0


def test_server_plays_the_model(tiny_run: str) -> None:
    from reverie.engine.encode import decode
    from reverie.engine.views import make_backends
    from reverie.serve.app import BackgroundServer, ServeConfig, create_app
    from reverie.serve.client import PlayClient

    backends = make_backends(tiny_run, "ignored", "64x64", model_cfg=ModelConfig(steps=1))
    assert set(backends) == {"dream", "real"} and backends["dream"].name == "model"
    app = create_app(ServeConfig(model=tiny_run, fps=30, max_sessions=2), backends)
    with BackgroundServer(app) as url, PlayClient(url) as c:
        info = c.start(seed=3, views=["dream", "real"])
        assert info["seed"] == 3 and set(info["available_views"]) == {"dream", "real"}
        c.send_input(keys=["KeyW"])
        views = set()
        for _ in range(8):
            h, jpeg = c.next_frame()
            views.add(h.view)
            assert decode(jpeg).shape == (64, 64, 3)
        assert views == {0, 1}  # the dream and the real world side by side


def test_a_join_or_leave_does_not_disturb_the_running_session(tiny_run: str) -> None:
    """Players joining and leaving cost the others no rebuild: their frames go on as if alone."""
    busy = ModelBackend(tiny_run, ModelConfig(precision="fp32"))
    alone = ModelBackend(tiny_run, ModelConfig(precision="fp32"))
    for b in (busy, alone):
        b.reset(1, 21)
    for t in range(3):
        for b in (busy, alone):
            b.step([1], [t % 9])
    busy.reset(2, 22)  # a second player joins
    for t in range(3, 9):
        if t == 6:
            busy.close(2)  # and leaves again
        sids = [1, 2] if t < 6 else [1]
        got = busy.step(sids, [t % 9] * len(sids))[0].frame
        want = alone.step([1], [t % 9])[0].frame
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, t


def test_a_joining_player_costs_the_tick_no_extra_pass(tiny_run: str) -> None:
    """`reset` builds the joiner's rows on its own thread; the tick that takes it in runs only the
    passes of an ordinary tick (the prefill that used to run there was the hitch the others felt)."""
    b = ModelBackend(tiny_run, ModelConfig(precision="fp32"))
    b.reset(1, 21)
    passes: list[int] = []
    hook = b.dit.register_forward_hook(lambda mod, args, out: passes.append(args[0].shape[1]))
    b.step([1], [0])  # the first tick takes the first player in
    passes.clear()
    b.step([1], [0])
    ordinary = len(passes)
    b.reset(2, 22)  # the real-walk start: several frames of context, prefilled here
    assert passes[ordinary:] == [b.rollout.max_context - 1]  # one prefill pass, on this thread
    passes.clear()
    b.step([1, 2], [0, 3])
    hook.remove()
    assert len(passes) == ordinary and all(n <= 2 for n in passes)  # no prefill in the tick
    assert b._slots[2].prepared is None and b._rows == [1, 2]
