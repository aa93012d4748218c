"""Inverse-dynamics accuracy on real and generated pairs, with per-action confusion matrices
(docs/measures.md, "Action accuracy"). Discrete worlds only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from reverie.eval.rollout import RealEpisodes, collect_real
from reverie.worlds.action_spec import ActionSpec

if TYPE_CHECKING:
    from reverie.eval.config import EvalConfig
    from reverie.eval.idm import InverseDynamics

__all__ = ["IDM_KEYS", "IDM_OFFSET", "confusion", "idm_accuracy", "train_or_load_idm"]

IDM_OFFSET = 20_000_000  # seeds of the IDM's training episodes: far from every evaluated seed
# Result fields of the action-accuracy measure, in the order the JSON shows them.
IDM_KEYS = ("idm_acc_generated", "idm_acc_real", "idm_acc_generated_unambiguous", "idm_acc_real_unambiguous",
            "idm_ambiguous_fraction", "idm_confusion")  # fmt: skip


def confusion(true: np.ndarray, pred: np.ndarray, n: int) -> list[list[int]]:
    """Counts [true action][predicted action]."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (np.asarray(true, np.int64), np.asarray(pred, np.int64)), 1)
    return m.tolist()


def train_or_load_idm(cfg: EvalConfig, world: str, size: str, spec: dict[str, Any]) -> InverseDynamics | None:
    """The judge of action accuracy (from the cache when one was trained with the same settings)."""
    if not ActionSpec.of(spec).is_discrete:
        return None
    from reverie.eval.idm import IDMConfig, cached_idm, idm_cache_dir, mirror_actions
    from reverie.worlds import BUILTIN_WORLDS

    seeds = [cfg.seed + IDM_OFFSET + i for i in range(cfg.idm_episodes)]
    train = collect_real(world, size, seeds, cfg.idm_length, spare_seeds=[s + 10_000 for s in seeds])
    cache = idm_cache_dir() if cfg.idm_cache == "default" else cfg.idm_cache or None
    # Mirrored training pairs only where mirroring is known to keep the actions' meaning.
    mirror = mirror_actions(list(spec.get("names") or [])) if world in BUILTIN_WORLDS else None
    idm_cfg = IDMConfig(steps=cfg.idm_steps, width=cfg.idm_width)
    idm, _ = cached_idm(train.obs, train.act, int(spec["n"]), idm_cfg, cache, progress=False, mirror=mirror)
    return idm


def idm_accuracy(
    idm: InverseDynamics | None,
    world: str,
    size: str,
    real: RealEpisodes,
    generated: np.ndarray,
    context: int,
) -> dict[str, Any]:
    """Accuracy on held-out real pairs and on generated rollout pairs (under the real actions).

    Beside each plain accuracy, the accuracy on the pairs whose real step is unambiguous (no other
    action gives the same real frame, e.g. not a move into a wall, which looks like noop): the
    fraction of ambiguous pairs bounds any classifier's plain accuracy.
    """
    fields: dict[str, Any] = dict.fromkeys(IDM_KEYS)
    if idm is None:
        return fields
    from reverie.eval.idm import ambiguous_steps, pairs_from_episodes
    from reverie.worlds import BUILTIN_WORLDS

    n = int(real.action_spec["n"])
    prev_r, next_r, act_r = pairs_from_episodes(real.obs, real.act)
    pred_r = idm.predict(prev_r, next_r)
    # Generated pairs: the last real context frame, then each generated frame, under the real actions.
    start = context - 1
    gen = np.concatenate([real.obs[:, start:context], generated], 1)  # (B, 1 + K, H, W, 3)
    prev_g, next_g, act_g = pairs_from_episodes(gen, real.act[:, start : start + gen.shape[1]])
    pred_g = idm.predict(prev_g, next_g)
    hits_real, hits_gen = pred_r == act_r, pred_g == act_g
    fields["idm_acc_real"], fields["idm_acc_generated"] = float(hits_real.mean()), float(hits_gen.mean())
    fields["idm_confusion"] = {
        "actions": [str(a) for a in real.action_spec.get("names") or range(n)],
        "real": confusion(act_r, pred_r, n),
        "generated": confusion(act_g, pred_g, n),
    }
    amb = ambiguous_steps(world, size, real) if world in BUILTIN_WORLDS else None  # replayable worlds
    if amb is not None:
        clear_real = ~amb[:, 1:].reshape(-1)  # pair t holds step t+1, as pairs_from_episodes
        clear_gen = ~amb[:, start + 1 : start + gen.shape[1]].reshape(-1)
        fields["idm_ambiguous_fraction"] = float(1.0 - clear_real.mean())
        fields["idm_acc_real_unambiguous"] = float(hits_real[clear_real].mean()) if clear_real.any() else None
        fields["idm_acc_generated_unambiguous"] = float(hits_gen[clear_gen].mean()) if clear_gen.any() else None  # fmt: skip
    return fields
