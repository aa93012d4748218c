"""`evaluate`: every measure of docs/measures.md for one predictor on held-out seeds of a world.

    result, art = evaluate(EvalConfig(model="default", episodes=16, seed=1_000_000))

`result` is the stable JSON of `reverie eval --json`; `art` holds what the HTML report draws. The
model runs at play settings (precision, sampler steps, context noise, window) unless overridden. The
long start-from-nothing rollout runs on a second core when one is free, beside everything else.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from typing import Any

import numpy as np

from reverie.cpus import usable_cpus
from reverie.eval.action_accuracy import idm_accuracy, train_or_load_idm
from reverie.eval.background import BackgroundDrift, DriftJob, Progress, run_drift_job
from reverie.eval.config import PREDICTORS, EvalConfig, Setup, held_out_seeds, setup
from reverie.eval.drift import DriftRun, latent_features, pixel_features, real_drift, score_drift
from reverie.eval.measures import copy_last_scores, dtpsnr, rollout_scores, sharpness, teacher_forced
from reverie.eval.metrics import PSNR_CAP_DB
from reverie.eval.probe import ProbeResult, action_probe, probe_branches
from reverie.eval.rollout import (
    CopyLastPredictor,
    ModelPredictor,
    Predictor,
    SimulatorPredictor,
    collect_real,
)
from reverie.models.world_model import START_CAPTION
from reverie.worlds.action_spec import ActionSpec

__all__ = ["PREDICTORS", "EvalConfig", "evaluate", "held_out_seeds", "run_probe"]

# Seed offsets of the auxiliary episodes, far from the evaluated ones so they never coincide.
RANDOM_ACT_OFFSET = 10_000_000
FLOOR_OFFSET = 30_000_000  # the independent real episodes of the real world's own Frechet floor


def _predictor(s: Setup) -> Predictor:
    cfg = s.cfg
    if cfg.predictor == "model":
        assert cfg.model is not None
        return ModelPredictor(
            cfg.model, cfg.steps, precision=cfg.precision, context_noise=cfg.context_noise,
            context_blur=cfg.context_blur, act_map=s.act_map, start_caption=cfg.start_caption,
        )  # fmt: skip
    if cfg.predictor == "simulator":
        return SimulatorPredictor(s.world, s.size, s.continuous)
    return CopyLastPredictor()


def play_settings(cfg: EvalConfig, predictor: Predictor) -> dict[str, Any] | None:
    """The settings the model ran with, and which of them were overridden on the command line."""
    if not isinstance(predictor, ModelPredictor):
        return None
    import torch

    over = [k for k, v in (("precision", cfg.precision if cfg.precision != "auto" else None),
                           ("steps", cfg.steps), ("context_noise", cfg.context_noise),
                           ("context_blur", cfg.context_blur),
                           ("start_caption", None if cfg.start_caption == START_CAPTION else cfg.start_caption))
            if v is not None]  # fmt: skip
    return {
        "precision": "bf16" if predictor.wm.dtype == torch.bfloat16 else "fp32",
        **asdict(predictor.sampler),
        "max_context_used": predictor.rollout.max_context,
        "start_caption": predictor.start_caption,
        "overridden": over,
    }


def _sheet_frames(cfg: EvalConfig, fps: float, total: int) -> dict[int, str]:
    """Contact-sheet frame index -> label; the last frame stands in for a time past the end."""
    out: dict[int, str] = {}
    for sec in cfg.sheet_seconds:
        i = min(round(sec * fps), total - 1)
        out.setdefault(i, f"{i / fps:g} s" if i / fps < 60 else f"{i / fps / 60:g} min")
    return out


def _start_walk() -> int:
    """Frames of the engine's start walk (the player's first frame is its last)."""
    from reverie.engine.backends import START_WALK

    return int(START_WALK)


def _drift_setup(s: Setup) -> tuple[int, int]:
    cfg = s.cfg
    frames = cfg.drift_frames or round(cfg.drift_seconds * s.fps)
    segment = cfg.drift_segment or round(cfg.drift_segment_seconds * s.fps)
    return frames, min(segment, frames)


def _probe_for(s: Setup, predictor: Predictor, real: Any, progress: Progress) -> ProbeResult | None:
    cfg = s.cfg
    branches = probe_branches(s.world, real.action_spec)
    if not branches:
        return None
    n = min(cfg.probe_contexts, len(real.seeds))
    from reverie.eval.rollout import RealEpisodes

    ctx = RealEpisodes(
        real.obs[:n, : cfg.context], real.act[:n, : cfg.context], real.seeds[:n], real.action_spec,
        real.rows(list(range(n))),
    )  # fmt: skip
    ae = None
    if isinstance(predictor, ModelPredictor):
        wm = predictor.wm

        def ae(frames: np.ndarray) -> np.ndarray:
            return np.asarray(wm.decode(wm.encode(frames)))

    sim = SimulatorPredictor(s.world, s.size, s.continuous)
    return action_probe(predictor, sim, ctx, cfg.context, branches, cfg.probe_frames, ae, progress.tick)


def run_probe(cfg: EvalConfig) -> ProbeResult | None:
    """The action probe alone (`reverie eval --probe`)."""
    s = setup(cfg)
    seeds = list(range(s.cfg.seed, s.cfg.seed + s.cfg.probe_contexts))
    real = collect_real(s.world, s.size, seeds, s.cfg.context, continuous=s.continuous,
                        spare_seeds=[x + 10_000 for x in seeds])  # fmt: skip
    if s.model_config:
        held_out_seeds(s.model_config, real.seeds, s.cfg.allow_overlap)
    predictor = _predictor(s)
    rows = len(probe_branches(s.world, real.action_spec)) * len(seeds) * s.cfg.probe_frames
    progress = Progress(rows, s.cfg.progress)
    try:
        return _probe_for(s, predictor, real, progress)
    finally:
        progress.close()


def evaluate(cfg: EvalConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run every measure; returns (JSON result, report artifacts)."""
    t0 = time.perf_counter()
    s = setup(cfg.quickened() if cfg.quick else cfg)
    cfg = s.cfg
    K, B = max(cfg.horizons), cfg.episodes
    length = cfg.context + K
    candidates = list(range(cfg.seed, cfg.seed + 2 * B + 4))  # spares replace short episodes
    overlap = held_out_seeds(s.model_config, candidates, cfg.allow_overlap) if s.model_config else []
    real = collect_real(s.world, s.size, candidates[:B], length, continuous=s.continuous,
                        spare_seeds=candidates[B:])  # fmt: skip
    has_act = ActionSpec.of(real.action_spec).has_actions
    drift_frames, segment = _drift_setup(s)
    d_seeds = list(range(cfg.seed, cfg.seed + cfg.drift_sessions))
    # The player starts W - 1 steps into the seed's explore walk (the engine's start): every predictor
    # starts there, so the dream and the real episode stay aligned frame for frame.
    W = _start_walk()
    d_real = collect_real(s.world, s.size, d_seeds, drift_frames + W - 1, continuous=s.continuous,
                          spare_seeds=[x + 100_000 for x in d_seeds])  # fmt: skip
    f_seeds = [x + FLOOR_OFFSET for x in d_real.seeds]
    floor = collect_real(s.world, s.size, f_seeds, drift_frames + W - 1, continuous=s.continuous,
                         spare_seeds=[x + 100_000 for x in f_seeds])  # fmt: skip

    n_probe = len(probe_branches(s.world, real.action_spec)) * min(cfg.probe_contexts, B) if has_act else 0
    total = B * min(cfg.tf_positions, K) + B * K
    total += (B * cfg.dt_draws * max(cfg.dt_horizons) if has_act else 0) + n_probe * cfg.probe_frames
    total += cfg.drift_sessions * (drift_frames - 1)
    progress = Progress(total, cfg.progress)
    progress.stage("inverse-dynamics judge (trained once, then cached)")
    idm = train_or_load_idm(cfg, s.world, s.size, real.action_spec)
    workers = cfg.workers or min(2, usable_cpus())
    sheet = _sheet_frames(cfg, s.fps, drift_frames)
    job = DriftJob(
        cfg.predictor, cfg.model, cfg.precision, cfg.steps, cfg.context_noise, s.world, s.size, s.continuous,
        d_real.seeds, d_real.obs[:, :W], d_real.act, sorted(sheet),
        idm_state=idm.state_dict() if idm is not None else None,
        idm_actions=int(real.action_spec.get("n", 0)), idm_width=cfg.idm_width,
        threads=1 if workers > 1 else None, start_caption=cfg.start_caption, context_blur=cfg.context_blur,
    )  # fmt: skip
    background = BackgroundDrift(job, progress) if workers > 1 else None
    try:
        if workers > 1:
            import torch

            torch.set_num_threads(1)  # the other core is the drift's
        result, art = _measure(s, real, progress, idm)
        predictor: Predictor = art.pop("predictor")
        features = (
            latent_features(predictor.encode) if isinstance(predictor, ModelPredictor) else pixel_features
        )
        progress.stage("start from nothing: the real side")  # while the dream may still run elsewhere
        real_side = real_drift(d_real.obs[:, W - 1 :], floor.obs[:, W - 1 :], features)
        progress.stage("start from nothing")
        run: DriftRun = background.result() if background else run_drift_job(job, progress.tick)
    finally:
        if background is not None:
            background.stop()
        progress.close()
    drift = score_drift(run, real_side, segment)
    result.update({
        "seed_overlap": overlap,
        "start_from_nothing": {
            "sessions": len(d_real.seeds), "seeds": d_real.seeds, "frames": drift_frames,
            "segment_frames": segment, "fps": s.fps, **asdict(drift),
        },
        "drift_fd_per_minute": drift.fd,
        "drift_fd_over_floor_per_minute": drift.fd_over_floor,
        "drift_idm_acc_per_minute": drift.action_acc,
        "drift_segment_frames": segment,
        "drift_features": "autoencoder latents (mean, std per channel)" if features is not pixel_features
        else "4x4 pooled RGB (no autoencoder)",
        "workers": workers,
        "wall_s": round(time.perf_counter() - t0, 1),
        "fps": cfg.extra.get("fps"),
        "quick": cfg.quick,
    })  # fmt: skip
    art["sheet"] = [(label, run.sheet[i][0], d_real.obs[0, W - 1 + i]) for i, label in sorted(sheet.items())]
    return result, art


def _measure(s: Setup, real: Any, progress: Progress, idm: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every measure from a real context: teacher forcing, rollouts, control, sharpness, probe, IDM."""
    cfg = s.cfg
    K = max(cfg.horizons)
    length = cfg.context + K
    has_act = ActionSpec.of(real.action_spec).has_actions
    predictor = _predictor(s)
    rng = np.random.default_rng(cfg.seed)
    positions = sorted(
        int(p) for p in rng.choice(np.arange(cfg.context, length), min(cfg.tf_positions, K), replace=False)
    )
    progress.stage("teacher-forced")
    tf = teacher_forced(predictor, real, positions, progress.tick)
    progress.stage("rollout")
    scores = rollout_scores(predictor, real, cfg.context, cfg.horizons, tick=progress.tick)
    copy = copy_last_scores(real, cfg.context, cfg.horizons)
    dt = None
    if has_act:
        progress.stage("control (random actions)")
        draws = [
            collect_real(s.world, s.size, [x + RANDOM_ACT_OFFSET + 1000 * d for x in real.seeds], length,
                         continuous=s.continuous, spare_seeds=[x + RANDOM_ACT_OFFSET + 500 + 1000 * d
                                                               for x in real.seeds], policy_seed=1 + d).act
            for d in range(cfg.dt_draws)
        ]  # fmt: skip
        dt = dtpsnr(predictor, real, draws, cfg.context, scores, cfg.dt_horizons, progress.tick)
    progress.stage("sharpness")
    target = real.obs[:, cfg.context : cfg.context + K]
    recon = None
    if isinstance(predictor, ModelPredictor):
        idx = [k - 1 for k in cfg.horizons]
        wm = predictor.wm
        sub = target[:, idx]
        recon = np.zeros_like(target)
        recon[:, idx] = wm.decode(wm.encode(sub.reshape(-1, *sub.shape[2:]))).reshape(sub.shape)
    sharp = sharpness(scores.frames, target, cfg.horizons, recon)
    progress.stage("action probe")
    probe = _probe_for(s, predictor, real, progress) if has_act else None
    progress.stage("action accuracy")
    idm_fields = idm_accuracy(idm, s.world, s.size, real, scores.frames, cfg.context)

    def per_k(sc: Any, key: str) -> dict[str, Any]:
        return {str(k): sc.at(k)[key] for k in cfg.horizons}

    result: dict[str, Any] = {
        "model": os.path.abspath(cfg.model) if cfg.model else None,
        "model_id": s.model_config.get("save_id"),
        "data": s.model_config.get("data", {}).get("path"),
        "world": s.world, "size": s.size, "predictor": cfg.predictor,
        "episodes": len(real.seeds), "seeds": real.seeds, "context": cfg.context,
        "play_settings": play_settings(cfg, predictor),
        **({"action_map": s.act_map_names} if s.act_map_names else {}),
        "sampler_steps": predictor.sampler.steps if isinstance(predictor, ModelPredictor) else None,
        "psnr_cap_db": PSNR_CAP_DB,
        "psnr_tf": tf["psnr"]["mean"], "psnr_tf_median": tf["psnr"]["median"], "ssim_tf": tf["ssim"]["mean"],
        "tf_pairs": {"scored": tf["psnr"]["n"], "identical_excluded": tf["psnr"]["excluded"]},
        "psnr_rollout": per_k(scores, "mean"), "psnr_rollout_median": per_k(scores, "median"),
        "psnr_copy_last": per_k(copy, "mean"), "psnr_copy_last_median": per_k(copy, "median"),
        "rollout_pairs_scored": per_k(scores, "n"), "rollout_identical_excluded": per_k(scores, "excluded"),
        "dtpsnr": dt, "dtpsnr16": dt["16"]["mean"] if dt and "16" in dt else None,
        "sharpness": sharp,
        "probe": probe.fields if probe is not None else None,
        **idm_fields,
    }  # fmt: skip
    n = min(cfg.strips, len(real.seeds))
    art = {
        "predictor": predictor,
        "curve": scores.psnr_per_step,
        "curve_copy_last": copy.psnr_per_step,
        "real_strip": real.obs[:n, cfg.context - 1 : cfg.context + K],
        "gen_strip": np.concatenate([real.obs[:n, cfg.context - 1 : cfg.context], scores.frames[:n]], 1),
        "probe": probe,
    }
    return result, art
