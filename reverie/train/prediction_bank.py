"""The dynamics model's own predicted latents, paired with the real frames they stand for.

reverie train autoencoder --data runs/out/dungeon --tune-to default --out runs/out/ae_tuned

A decoder trained only on the encoder's latents has never seen what the dynamics model produces:
latents a little off the encoder's manifold, in the model's own way. `build_bank` plays the model
as the engine does (its play settings, no prompt) from real context windows of a store, with the
real actions, for a few frames, and keeps each predicted latent with the real frame it predicts.
The autoencoder task then fine-tunes the decoder (encoder frozen) on these pairs beside ordinary
reconstruction, so it learns to draw the model's near-misses as the frames they were meant to be.

Only short horizons learn the real frame: after a few frames the model's future and the real one
part ways (a different turn of the corridor), and a decoder asked to draw the real frame from a
different future can only learn to blur. Longer horizons (`loss.bank_horizon`) are banked for the
critic and keep the untuned decoder's colours (train/autoencoder_task.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from reverie.errors import ReverieError

if TYPE_CHECKING:  # torch is imported where it is used: the CLI reads the constants below at start-up
    import torch

ROWS = 32  # windows rolled out together (one batched rollout)
BANK_WINDOWS = 1024  # training windows, each banked at horizons 1..loss.bank_horizon
VAL_WINDOWS = 64  # held-out windows, for the pred_psnr the loop reports at each checkpoint


@dataclass
class PredictionBank:
    z: torch.Tensor  # (N, C, h, w) float32: the model's predicted latents (normalised, as decode() takes)
    frames: np.ndarray  # (N, H, W, 3) uint8: the real frame each one predicts
    horizon: np.ndarray  # (N,) int: frames generated since the last real one (1 = one step ahead)

    def __len__(self) -> int:
        return int(self.z.shape[0])


def build_bank(
    model: str,
    store_path: str,
    episodes: Sequence[int],
    windows: int,
    horizon: int,
    seed: int = 0,
    progress: bool = True,
) -> PredictionBank:
    """Roll the world model `model` (run, package or "default") `horizon` frames from `windows` real
    context windows of `episodes`; deterministic in (model, store, episodes, windows, horizon, seed)."""
    import torch
    from tqdm import tqdm

    from reverie.data.store import EpisodeStore
    from reverie.models.dynamics import make_rollout
    from reverie.models.sampler import SessionContext
    from reverie.models.world_model import load_world_model

    if windows < 1 or horizon < 1:
        raise ReverieError(f"a prediction bank needs windows >= 1 and horizon >= 1, got {windows}, {horizon}")
    wm = load_world_model(model)
    store = EpisodeStore.open(store_path)
    if (store.size.width, store.size.height) != (wm.size.width, wm.size.height):
        raise ReverieError(
            f"{store_path} holds {store.size.width}x{store.size.height} frames, but {model} plays "
            f"{wm.size.width}x{wm.size.height}; record the store at the model's size"
        )
    ctx = wm.max_context
    span = ctx + horizon
    usable = [i for i in episodes if store.lengths[i] >= span]
    if not usable:
        raise ReverieError(
            f"{store_path}: no episode among the {len(episodes)} given has {span} frames "
            f"({ctx} context + {horizon} predicted)"
        )
    rng = np.random.default_rng([seed, 7])
    picks = [(int(e), int(rng.integers(0, store.lengths[e] - span + 1))) for e in rng.choice(usable, windows)]
    rollout = make_rollout(wm.dit, wm.sampler)
    has_act = wm.actions.has_actions
    zs, frames, hs = [], [], []
    for lo in tqdm(range(0, windows, ROWS), desc="prediction bank", unit="rows", disable=not progress):
        rows = picks[lo : lo + ROWS]
        eps = [store.read(e, slice(s, s + span)) for e, s in rows]
        acts = [wm.act_tensor(list(ep.act)) if has_act and ep.act is not None else None for ep in eps]
        sessions = [
            SessionContext(wm.encode(ep.obs[:ctx]), a[:ctx] if a is not None else None, None)
            for ep, a in zip(eps, acts, strict=True)
        ]
        gens = [torch.Generator().manual_seed(seed * 1_000_003 + lo + r) for r in range(len(rows))]
        with torch.inference_mode():
            rollout.rebuild(sessions, gens)
            for k in range(horizon):
                a = torch.stack([x[ctx + k] for x in acts]) if acts[0] is not None else None  # type: ignore[index]
                zs.append(rollout.step(a, gens).float())  # (B, C, h, w)
                frames.append(np.stack([ep.obs[ctx + k] for ep in eps]))
                hs.append(np.full(len(rows), k + 1))
    return PredictionBank(torch.cat(zs), np.concatenate(frames), np.concatenate(hs))


def tuned_autoencoder(model: str, init: str | None) -> str:
    """The autoencoder a decoder tuned to `model` starts from: the one the model was trained on.

    `init`, when given, must encode exactly as that one does (same encoder weights and latent
    statistics), or the model's latents would mean something else to the tuned decoder.
    """
    import torch

    from reverie.checkpoint import load_run
    from reverie.models.shipped import resolve_model
    from reverie.models.world_model import autoencoder_path

    run = resolve_model(model)
    own = autoencoder_path(run, load_run(run)[0])
    if init is None:
        return own
    mine, theirs = load_run(own)[1], load_run(init)[1]
    keys = [k for k in mine if k.startswith("encoder.") or k in ("z_shift", "z_scale")]
    if any(k not in theirs or not torch.equal(mine[k], theirs[k]) for k in keys):
        raise ReverieError(
            f"--init {init} does not encode as {own}, the autoencoder {model} was trained on; "
            "drop --init to start from that one"
        )
    return init
