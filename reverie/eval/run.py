"""`evaluate`: every measure of DESIGN.md "Measures" for one predictor on held-out seeds of a world.

    result, art = evaluate(EvalConfig(model="runs/out/dit", episodes=16, seed=100000))

`result` is the stable JSON of `reverie eval --json`; `art` holds what the HTML report draws.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from reverie.errors import ReverieError
from reverie.eval.measures import HORIZONS, copy_last_scores, dtpsnr, rollout_scores, teacher_forced
from reverie.eval.metrics import PSNR_CAP_DB
from reverie.eval.rollout import (
    CopyLastPredictor,
    ModelPredictor,
    Predictor,
    RealEpisodes,
    SimulatorPredictor,
    collect_real,
)

if TYPE_CHECKING:
    from reverie.eval.drift import Drift
    from reverie.eval.idm import InverseDynamics

__all__ = ["PREDICTORS", "EvalConfig", "evaluate", "held_out_seeds"]

PREDICTORS = ("model", "simulator", "copy-last")
# Seed offsets of the auxiliary episodes, far from the evaluated ones so they never coincide.
RANDOM_ACT_OFFSET = 10_000_000
IDM_OFFSET = 20_000_000
QUICK_IDM_STEPS, QUICK_IDM_WIDTH = 400, 16
# Result fields of the action-accuracy measure, in the order the JSON shows them.
IDM_KEYS = ("idm_acc_generated", "idm_acc_real", "idm_acc_generated_unambiguous", "idm_acc_real_unambiguous",
            "idm_ambiguous_fraction")  # fmt: skip


@dataclass
class EvalConfig:
    model: str | None = None  # dynamics run dir; required for predictor "model"
    world: str | None = None  # default: the model's world
    size: str | None = None  # default: the model's frame size, else 64x64
    predictor: str = "model"
    episodes: int = 16
    seed: int = 1_000_000  # first held-out seed; episode i uses seed + i
    context: int = 8  # real frames before generation starts
    horizons: tuple[int, ...] = HORIZONS
    tf_positions: int = 8  # teacher-forced positions per episode
    drift_frames: int = 9000  # 5 minutes at 30 FPS
    drift_segment: int = 1800  # one minute
    # 64x64 Dungeon, held-out real pairs: 0.91-0.92 (0.91 through the small autoencoder), ~100 CPU-s;
    # was 0.78-0.81 with 400 steps, 32 episodes, a constant LR, no mirroring. Quick: 0.80-0.84, ~27 CPU-s.
    idm_steps: int = 1000
    idm_episodes: int = 128
    idm_length: int = 128
    idm_width: int = 32
    idm_cache: str | None = "default"  # trained IDMs kept in: "default" (idm_cache_dir()), a dir, None: none
    steps: int = 2  # sampler steps per frame
    allow_overlap: bool = False
    quick: bool = False
    progress: bool = True
    strips: int = 3  # episodes shown as real | generated strips in the report
    extra: dict[str, Any] = field(default_factory=dict)

    def quickened(self) -> EvalConfig:
        """The one-minute version: fewer episodes, a short drift rollout, a brief IDM."""
        return EvalConfig(**{
            **asdict(self),
            "episodes": min(self.episodes, 4), "tf_positions": min(self.tf_positions, 3),
            "drift_frames": min(self.drift_frames, 150), "drift_segment": min(self.drift_segment, 50),
            "idm_steps": min(self.idm_steps, QUICK_IDM_STEPS), "idm_episodes": min(self.idm_episodes, 96),
            "idm_length": min(self.idm_length, 64), "idm_width": min(self.idm_width, QUICK_IDM_WIDTH),
            "quick": True,
        })  # fmt: skip


def held_out_seeds(model_config: dict[str, Any], seeds: list[int], allow_overlap: bool) -> list[int]:
    """The training seeds among `seeds` (from the model's config or its dataset); refuses an overlap unless allowed."""
    from reverie.data.seeds import expand_ranges
    from reverie.data.store import EpisodeStore, is_store

    data = model_config.get("data", {})
    path = data.get("path")
    if "seed_ranges" in data:  # recorded at training time: a shipped model has no store beside it
        train = expand_ranges(data["seed_ranges"])
    elif path and is_store(path):
        train = {s for s in EpisodeStore.open(path).seeds if s is not None}
    elif allow_overlap:
        return []
    else:
        raise ReverieError(
            f"cannot check the held-out seeds: the model's dataset {path!r} is not an episode store here "
            "and its config records no seed_ranges; pass --allow-overlap to evaluate anyway"
        )
    overlap = sorted(train.intersection(seeds))
    if overlap and not allow_overlap:
        lo, hi = (min(train), max(train)) if train else (0, 0)
        raise ReverieError(
            f"seeds {overlap[:5]}{'...' if len(overlap) > 5 else ''} were used to train the model "
            f"(its dataset holds seeds {lo}..{hi}); choose --seed outside them or pass --allow-overlap"
        )
    return overlap


def _make_predictor(cfg: EvalConfig, world: str, size: str, continuous: bool) -> Predictor:
    if cfg.predictor == "model":
        assert cfg.model is not None
        return ModelPredictor(cfg.model, steps=cfg.steps, seed=cfg.seed)
    if cfg.predictor == "simulator":
        return SimulatorPredictor(world, size, continuous)
    if cfg.predictor == "copy-last":
        return CopyLastPredictor()
    raise ReverieError(f"unknown predictor {cfg.predictor!r}; accepted: {', '.join(PREDICTORS)}")


def evaluate(cfg: EvalConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run every measure; returns (JSON result, report artifacts)."""
    cfg = cfg.quickened() if cfg.quick else cfg
    model_config: dict[str, Any] = {}
    if cfg.predictor == "model":
        if cfg.model is None:
            raise ReverieError(
                "--model is required (a dynamics run directory), or pick --predictor simulator"
            )
        from reverie.models.shipped import resolve_model
        from reverie.train.checkpoint import check_kind, load_run

        run = resolve_model(cfg.model)  # "default": the shipped model
        cfg = replace(cfg, model=run)
        model_config = load_run(run)[0]
        check_kind(model_config, "dynamics", run)
    data = model_config.get("data", {})
    world = cfg.world or data.get("world")
    if not world:
        raise ReverieError("--world is required (the model's config names none)")
    if data.get("world") and world != data["world"]:
        raise ReverieError(
            f"the model was trained on {data['world']}, not {world}; pass --world {data['world']}"
        )
    size = cfg.size or (f"{data['width']}x{data['height']}" if data.get("width") else "64x64")
    spec = data.get("action_spec") or {}
    continuous = spec.get("type") == "box"
    if cfg.episodes < 1:
        raise ReverieError(f"bad --episodes {cfg.episodes}: accepted >= 1")

    K = max(cfg.horizons)
    length = cfg.context + K
    candidates = list(range(cfg.seed, cfg.seed + 2 * cfg.episodes + 4))  # spares replace short episodes
    overlap = held_out_seeds(model_config, candidates, cfg.allow_overlap) if model_config else []
    real = collect_real(
        world, size, candidates[: cfg.episodes], length, continuous=continuous,
        spare_seeds=candidates[cfg.episodes :], progress=cfg.progress,
    )  # fmt: skip
    predictor = _make_predictor(cfg, world, size, continuous)

    rng = np.random.default_rng(cfg.seed)
    positions = sorted({int(p) for p in rng.integers(cfg.context, length, cfg.tf_positions)})
    psnr_tf, ssim_tf = teacher_forced(predictor, real, positions, progress=cfg.progress)
    scores = rollout_scores(predictor, real, cfg.context, cfg.horizons, progress=cfg.progress)
    copy = copy_last_scores(real, cfg.context, cfg.horizons)

    dt = None
    if real.action_spec.get("type") != "none" and K >= 16:
        rand = collect_real(
            world, size, [s + RANDOM_ACT_OFFSET for s in real.seeds], length, continuous=continuous,
            spare_seeds=[s + RANDOM_ACT_OFFSET + 10_000 for s in real.seeds], policy_seed=1,
        )  # fmt: skip
        dt = dtpsnr(predictor, real, rand.act, cfg.context, 16, scores, progress=cfg.progress)

    idm_fields, idm = _idm_accuracy(cfg, world, size, real, scores.frames)
    drift, drift_features = _drift(cfg, world, size, continuous, predictor, idm)

    result: dict[str, Any] = {
        "model": os.path.abspath(cfg.model) if cfg.model else None,
        "model_id": model_config.get("save_id"),
        "data": data.get("path"),
        "world": world,
        "size": size,
        "predictor": cfg.predictor,
        "episodes": len(real.seeds),
        "seeds": real.seeds,
        "seed_overlap": overlap,
        "context": cfg.context,
        "sampler_steps": cfg.steps if cfg.predictor == "model" else None,
        "psnr_cap_db": PSNR_CAP_DB,
        "psnr_tf": psnr_tf,
        "ssim_tf": ssim_tf,
        "psnr_rollout": {str(k): v for k, v in scores.psnr_at.items()},
        "psnr_copy_last": {str(k): v for k, v in copy.psnr_at.items()},
        "dtpsnr16": dt,
        **idm_fields,
        "drift_fd_per_minute": drift.fd,
        "drift_idm_acc_per_minute": drift.action_acc,
        "drift_dtpsnr_per_minute": drift.dtpsnr,
        "drift_segment_frames": cfg.drift_segment,
        "drift_features": drift_features,
        "fps": cfg.extra.get("fps"),
        "quick": cfg.quick,
    }
    n = min(cfg.strips, len(real.seeds))
    art = {
        "curve": scores.psnr_per_step,
        "curve_copy_last": copy.psnr_per_step,
        "real_strip": real.obs[:n, cfg.context - 1 : cfg.context + K],
        "gen_strip": np.concatenate([real.obs[:n, cfg.context - 1 : cfg.context], scores.frames[:n]], 1),
    }
    return result, art


def _idm_accuracy(
    cfg: EvalConfig, world: str, size: str, real: RealEpisodes, generated: np.ndarray
) -> tuple[dict[str, Any], InverseDynamics | None]:
    """IDM accuracy on held-out real pairs and on generated rollout pairs (discrete worlds only).

    Beside each plain accuracy, the accuracy on the pairs whose real step is unambiguous (no other
    action gives the same real frame, e.g. not a move into a wall, which looks like noop): the
    fraction of ambiguous pairs bounds any classifier's plain accuracy.
    """
    fields: dict[str, Any] = dict.fromkeys(IDM_KEYS)
    if real.action_spec.get("type") != "discrete":
        return fields, None
    from reverie.eval.idm import (
        IDMConfig,
        ambiguous_steps,
        cached_idm,
        idm_cache_dir,
        mirror_actions,
        pairs_from_episodes,
    )

    n_act = int(real.action_spec["n"])
    seeds = [cfg.seed + IDM_OFFSET + i for i in range(cfg.idm_episodes)]
    train = collect_real(
        world, size, seeds, cfg.idm_length, spare_seeds=[s + 10_000 for s in seeds], progress=cfg.progress
    )
    idm_cfg = IDMConfig(steps=cfg.idm_steps, width=cfg.idm_width)
    cache = idm_cache_dir() if cfg.idm_cache == "default" else cfg.idm_cache or None
    from reverie.worlds import BUILTIN_WORLDS

    # Mirrored training pairs only where mirroring is known to keep the actions' meaning.
    mirror = mirror_actions(list(real.action_spec.get("names") or [])) if world in BUILTIN_WORLDS else None
    idm, _ = cached_idm(train.obs, train.act, n_act, idm_cfg, cache, progress=cfg.progress, mirror=mirror)
    hits_real = idm.hits(*pairs_from_episodes(real.obs, real.act))
    # Generated pairs: the last real context frame, then each generated frame, under the real actions.
    start = cfg.context - 1
    gen = np.concatenate([real.obs[:, start : cfg.context], generated], 1)  # (B, 1 + K, H, W, 3)
    act = real.act[:, start : start + gen.shape[1]]
    hits_gen = idm.hits(*pairs_from_episodes(gen, act))
    fields["idm_acc_real"], fields["idm_acc_generated"] = float(hits_real.mean()), float(hits_gen.mean())
    amb = ambiguous_steps(world, size, real) if world in BUILTIN_WORLDS else None  # replayable worlds
    if amb is not None:
        clear_real = ~amb[:, 1:].reshape(-1)  # pair t holds step t+1, as pairs_from_episodes
        clear_gen = ~amb[:, start + 1 : start + gen.shape[1]].reshape(-1)
        fields["idm_ambiguous_fraction"] = float(1.0 - clear_real.mean())
        fields["idm_acc_real_unambiguous"] = float(hits_real[clear_real].mean()) if clear_real.any() else None
        fields["idm_acc_generated_unambiguous"] = float(hits_gen[clear_gen].mean()) if clear_gen.any() else None  # fmt: skip
    return fields, idm


def _drift(
    cfg: EvalConfig,
    world: str,
    size: str,
    continuous: bool,
    predictor: Predictor,
    idm: InverseDynamics | None,
) -> tuple[Drift, str]:
    from reverie.eval.drift import drift_fd, latent_features, pixel_features

    real = collect_real(
        world, size, [cfg.seed], cfg.context + cfg.drift_frames, continuous=continuous,
        spare_seeds=[cfg.seed + 1 + i for i in range(8)], progress=False,
    )  # fmt: skip
    if isinstance(predictor, ModelPredictor):
        features, name = latent_features(predictor.encode), "autoencoder latents (mean, std per channel)"
    else:
        features, name = pixel_features, "4x4 pooled RGB (no autoencoder)"
    score = idm.hits if idm is not None else None
    rand_act = None
    if real.action_spec.get("type") != "none":
        # The random branch's actions, as for dtpsnr16: the explore policy on another episode (seed
        # offset, policy seed 1), read at the same positions as the true actions.
        rand_seed = cfg.seed + RANDOM_ACT_OFFSET
        rand_act = collect_real(
            world, size, [rand_seed], cfg.context + cfg.drift_frames, continuous=continuous,
            spare_seeds=[rand_seed + 1 + i for i in range(8)], policy_seed=1, progress=False,
        ).act  # fmt: skip
    drift = drift_fd(
        predictor, real, cfg.context, cfg.drift_segment, features, cfg.progress, pair_score=score,
        random_act=rand_act,
    )  # fmt: skip
    return drift, name
