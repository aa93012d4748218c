"""The measures of docs/measures.md on analytic cases: identical real pairs are left out and counted,
the simulator is perfect on every new measure, copy-last scores exactly its baseline, and a model
that outputs flat grey scores sharpness 0, a large noop drift and a blown-out start from nothing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from reverie.eval.drift import generate_drift, pixel_features, real_drift, score_drift
from reverie.eval.image_stats import brightness, gradient_magnitude, horizontal_shift, saturation
from reverie.eval.measures import copy_last_scores, honest, rollout_scores, sharpness, teacher_forced
from reverie.eval.metrics import PSNR_CAP_DB, psnr
from reverie.eval.probe import action_probe, probe_branches, probe_picture
from reverie.eval.rollout import CopyLastPredictor, RealEpisodes, SimulatorPredictor, collect_real

WORLD, SIZE = "reverie/Dungeon-v0", "32x32"


class FlatGrey:
    """A 'model' that always outputs mid grey."""

    def __init__(self) -> None:
        self.shape: tuple[int, ...] = ()

    def reset(
        self, context_frames: np.ndarray, context_act: np.ndarray, seeds: list[int], captions: Any = None
    ) -> None:
        self.shape = (context_frames.shape[0], *context_frames.shape[2:])

    def step(self, act: np.ndarray) -> np.ndarray:
        return np.full(self.shape, 128, np.uint8)

    def fork(self) -> FlatGrey:
        return self


@pytest.fixture(scope="module")
def real() -> RealEpisodes:
    return collect_real(WORLD, SIZE, [7000, 7001, 7002], 28)


def test_honest_leaves_out_identical_pairs_and_counts_them() -> None:
    values = np.array([[120.0, 20.0], [30.0, 120.0], [25.0, 40.0]])
    same = np.array([[True, False], [False, True], [False, False]])
    out = honest(values, same)
    assert out == {"mean": pytest.approx(28.75), "median": pytest.approx(27.5), "n": 4, "excluded": 2}
    assert honest(values[:1, :1], same[:1, :1]) == {"mean": None, "median": None, "n": 0, "excluded": 1}


def test_rollout_and_teacher_forcing_exclude_frames_identical_in_the_real_episode(real: RealEpisodes) -> None:
    # Episode 1 stands still: its frames after the context are copies of the last context frame.
    obs = real.obs.copy()
    obs[1, 4:] = obs[1, 3]
    still = RealEpisodes(obs, real.act, real.seeds, real.action_spec)
    copy = copy_last_scores(still, 4, (1, 4, 16))
    for k in (1, 4, 16):
        stats = copy.at(k)
        assert stats["excluded"] == 1 and stats["n"] == 2
        p = psnr(obs[[0, 2], 3], obs[[0, 2], 3 + k])
        assert stats["mean"] == pytest.approx(float(p.mean())) and stats["mean"] < PSNR_CAP_DB
        assert stats["median"] == pytest.approx(float(np.median(p)))
    tf = teacher_forced(CopyLastPredictor(), still, [5, 9])
    # positions 5 and 9 of episode 1 repeat their previous frame: 2 of 6 pairs left out
    assert tf["psnr"]["excluded"] == 2 and tf["psnr"]["n"] == 4


def test_simulator_is_perfect_and_flat_grey_has_no_sharpness(real: RealEpisodes) -> None:
    target = real.obs[:, 4:20]
    sim = rollout_scores(SimulatorPredictor(WORLD, SIZE), real, 4, (1, 4, 16))
    perfect = sharpness(sim.frames, target, (1, 4, 16), recon=target)
    assert perfect["generated"] == {"1": 1.0, "4": 1.0, "16": 1.0} and perfect["autoencoder"]["16"] == 1.0
    grey = rollout_scores(FlatGrey(), real, 4, (1, 4, 16))
    assert sharpness(grey.frames, target, (1, 4, 16))["generated"] == {"1": 0.0, "4": 0.0, "16": 0.0}


def test_image_stats_on_analytic_frames() -> None:
    flat = np.full((2, 16, 16, 3), 77, np.uint8)
    assert gradient_magnitude(flat).tolist() == [0.0, 0.0] and saturation(flat).tolist() == [0.0, 0.0]
    assert brightness(np.full((1, 4, 4, 3), 255, np.uint8))[0] == pytest.approx(1.0)
    red = np.zeros((1, 4, 4, 3), np.uint8)
    red[..., 0] = 200
    assert saturation(red)[0] == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (1, 16, 64, 3), dtype=np.uint8)
    b = np.roll(a, 3, axis=2)  # the picture moved 3 px right
    assert horizontal_shift(a, b)[0] == pytest.approx(3.0, abs=0.1)
    assert horizontal_shift(b, a)[0] == pytest.approx(-3.0, abs=0.1)


@pytest.mark.slow  # 45 s on one core: `make test-all` runs it
def test_action_probe_simulator_matches_itself_and_flat_grey_boils(real: RealEpisodes) -> None:
    ctx = RealEpisodes(real.obs[:2, :6], real.act[:2, :6], real.seeds[:2], real.action_spec)
    branches = probe_branches(WORLD, real.action_spec)
    assert [b.label for b in branches] == [
        "noop", "turn_left", "turn_right", "forward", "back", "strafe_left", "strafe_right",
    ]  # fmt: skip
    sim = action_probe(SimulatorPredictor(WORLD, SIZE), SimulatorPredictor(WORLD, SIZE), ctx, 6, branches, 6)
    for row in sim.fields["branches"].values():
        assert row["shift_px"] == row["shift_px_world"] and row["change"] == row["change_world"]
    # the world itself barely changes under noop (lamps flicker, sprites walk): the model's bar
    assert sim.fields["noop_drift"] == sim.fields["noop_drift_world"] < 1.0
    turns = sim.fields["branches"]
    assert turns["turn_left"]["shift_px"] > 1.0 > -1.0 > turns["turn_right"]["shift_px"]  # opposite ways
    grey = action_probe(FlatGrey(), SimulatorPredictor(WORLD, SIZE), ctx, 6, branches, 6)
    assert grey.fields["noop_drift"] > 5.0  # the jump to grey, averaged over 6 frames
    picture = probe_picture(grey)
    assert picture.dtype == np.uint8 and picture.shape[0] > len(branches) * 32


def test_drive_probes_steer_throttle_and_brake() -> None:
    spec = collect_real("reverie/Drive-v0", SIZE, [1], 2).action_spec
    assert [b.label for b in probe_branches("reverie/Drive-v0", spec)] == [
        "noop", "left", "right", "accelerate", "brake",
    ]  # fmt: skip
    box = collect_real("reverie/Drive-v0", SIZE, [1], 2, continuous=True).action_spec
    labels = [b.label for b in probe_branches("reverie/Drive-v0", box)]
    assert labels == ["noop", "steer=-1", "steer=+1", "throttle=+1", "brake=+1"]


def test_start_from_nothing_simulator_on_the_floor_grey_far_off() -> None:
    real = collect_real(WORLD, SIZE, [7100, 7101], 40)
    floor = collect_real(WORLD, SIZE, [7200, 7201], 40)
    sheet = [0, 30, 39]

    def run(pred: object) -> object:
        out = generate_drift(pred, real.obs[:, :1], real.act, real.seeds, pixel_features, sheet)  # type: ignore[arg-type]
        return out, score_drift(out, real_drift(real.obs, floor.obs, pixel_features), 20)

    sim_run, sim = run(SimulatorPredictor(WORLD, SIZE))
    assert sim.fd == [0.0, 0.0] and sim.fd_over_floor == [0.0, 0.0] and min(sim.fd_floor) > 0  # type: ignore[attr-defined]
    assert sim.fd_over_floor_sessions == [[0.0, 0.0], [0.0, 0.0]]  # type: ignore[attr-defined]
    assert sim.brightness == sim.brightness_real and sim.saturation == sim.saturation_real  # type: ignore[attr-defined]
    assert np.array_equal(sim_run.sheet[30], real.obs[:, 30])  # type: ignore[attr-defined]
    _, grey = run(FlatGrey())
    assert min(grey.fd_over_floor) > 1.0  # type: ignore[attr-defined]
    assert min(min(row) for row in grey.fd_over_floor_sessions) > 1.0  # type: ignore[attr-defined]
    assert grey.saturation[-1] == 0.0 and grey.brightness[-1] == pytest.approx(128 / 255)  # type: ignore[attr-defined]
    _, copy = run(CopyLastPredictor())
    assert copy.fd[-1] > 0.0  # type: ignore[attr-defined]


def test_eval_help_says_what_it_measures_and_how_long_it_takes() -> None:
    from typer.testing import CliRunner

    import reverie.cli.eval  # noqa: F401  (attaches the command)
    from reverie.cli.apps import app

    text = " ".join(CliRunner().invoke(app, ["eval", "--help"], terminal_width=200).output.split())
    assert "docs/measures.md" in text and "DESIGN" not in text
    assert "2 cores" in text and "--probe" in text and "--precision" in text and "--dream-sessions" in text


def test_the_report_shows_each_dream_start_alone() -> None:
    from reverie.eval.report import _start

    sfn = {"sessions": 2, "frames": 40, "fd": [1.0, 2.0], "fd_floor": [1.0, 1.0], "fd_over_floor": [1.0, 2.0],
           "fd_over_floor_sessions": [[0.5, 1.5], [1.75, 2.5]], "brightness": [0.1, 0.1],
           "brightness_real": [0.1, 0.1], "saturation": [0.2, 0.2], "saturation_real": [0.2, 0.2],
           "action_acc": None}  # fmt: skip
    page = _start({"start_from_nothing": sfn}, {})
    assert "each start alone" in page and "1.75" in page and "2.5" in page
    one = _start({"start_from_nothing": {**sfn, "sessions": 1, "fd_over_floor_sessions": [[1.0, 2.0]]}}, {})
    assert "each start alone" not in one


@pytest.mark.slow
def test_cli_probe_writes_its_picture_alone(tmp_path: object) -> None:
    import json
    from pathlib import Path

    from typer.testing import CliRunner

    import reverie.cli.eval  # noqa: F401
    from reverie.cli.apps import app

    out = Path(str(tmp_path)) / "pics" / "probe.png"
    args = [
        "eval",
        "--predictor",
        "copy-last",
        "--world",
        WORLD,
        "--size",
        SIZE,
        "--probe",
        "--out",
        str(out),
    ]
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    fields = json.loads(res.stdout.strip().splitlines()[-1])
    assert fields["picture"] == str(out) and out.read_bytes().startswith(b"\x89PNG")
    assert fields["branches"]["noop"]["change"] == 0.0  # copy-last never moves
