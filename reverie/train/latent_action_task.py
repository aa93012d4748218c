"""Training task of the latent action model: discrete codes per step from autoencoder latents alone.

reverie train latent-actions --data runs/out/clips --autoencoder runs/out/ae --preset small --out runs/out/lam

The store is encoded once by the autoencoder (the same latent cache as the dynamics task, so a store
encoded for one is free for the other). A batch is `batch_size` steps drawn from (seed, step, rank),
each the last `context` latents and the next one of one episode. Recorded actions, where a store has
them, never reach the loss; the held-out evaluation reports how the codes agree with them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reverie.errors import ReverieError
from reverie.models.latent_actions import LatentActionConfig, LatentActionModel, agreement
from reverie.train.dynamics_task import LatentClips
from reverie.train.task import unwrap
from reverie.worlds.action_spec import ActionSpec

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

MIN_STEPS = 64  # frame-to-frame steps a store needs before a latent action model is worth training
EVAL_STEPS = 4096  # held-out steps scored at each checkpoint
VIEW_ACTIONS = ["noop", "forward", "back", "turn_left", "turn_right"]  # Dungeon's view-changing actions


def step_rows(lengths: list[int]) -> np.ndarray:
    """Rows (into episodes laid end to end) of every frame that follows another frame of its episode."""
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    rows = [o + np.arange(1, n) for o, n in zip(offsets, lengths) if n > 1]
    return np.concatenate(rows) if rows else np.zeros(0, np.int64)


def check_steps(lengths: list[int], where: str, need: int = MIN_STEPS) -> None:
    steps = sum(max(0, n - 1) for n in lengths)
    if steps < need:
        raise ReverieError(
            f"{where} holds {sum(lengths)} frames in {len(lengths)} episodes: {steps} steps from one frame to "
            f"the next, but a latent action model needs at least {need}; record or import more video"
        )


class LatentActionTask:
    name = "latent-actions"

    def __init__(
        self,
        train: LatentClips,
        val: LatentClips | None,
        model_cfg: LatentActionConfig,
        *,
        seed: int = 0,
        batch_size: int = 64,
        action_spec: dict[str, Any] | None = None,
        info: dict[str, Any] | None = None,
        ae: Any = None,
    ) -> None:
        C = train.z.shape[1]
        self.model_cfg = replace(model_cfg, latent_channels=C)
        check_steps(train.lengths, str((info or {}).get("path", "the training data")))
        self.train_clips, self.val_clips = train, val
        self.seed, self.batch_size = seed, batch_size
        self.action_spec = action_spec or {"type": "none"}
        self.data_info = dict(info or {"source": "in-memory latents"})
        self.data_info["train_frames"] = int(sum(train.lengths))
        self.ae = ae
        self.rows = step_rows(train.lengths)
        self.offsets = torch.from_numpy(np.arange(-self.model_cfg.context, 1))
        self.first = torch.from_numpy(np.repeat(np.cumsum([0, *train.lengths[:-1]]), train.lengths))

    @classmethod
    def from_store(
        cls,
        data_dir: str,
        autoencoder_run: str,
        model_cfg: LatentActionConfig,
        *,
        seed: int = 0,
        batch_size: int = 64,
        val_fraction: float = 0.05,
        device: str = "cpu",
    ) -> LatentActionTask:
        from reverie.data.seeds import seed_ranges
        from reverie.data.store import EpisodeStore
        from reverie.train.dynamics_task import encode_store_split

        check_steps([int(n) for n in EpisodeStore.open(data_dir).lengths], data_dir)
        store, ae, clips, (_, val_eps) = encode_store_split(data_dir, autoencoder_run, val_fraction, device)
        w, h = store.size
        info = {
            "path": os.path.abspath(data_dir),
            "world": store.meta.get("world"),
            "width": w,
            "height": h,
            "autoencoder": os.path.abspath(autoencoder_run),
            "episodes": len(store),
            "seed_ranges": seed_ranges(store.seeds),
            "val_episodes": val_eps,
            "recorded_actions": store.action_spec,  # for the held-out agreement only
        }
        return cls(
            clips[0],
            clips[1] if val_eps else None,
            model_cfg,
            seed=seed,
            batch_size=batch_size,
            action_spec=store.action_spec,
            info=info,
            ae=ae,
        )

    # -- the Task contract -------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        return LatentActionModel(self.model_cfg)

    def _windows(self, rows: torch.Tensor) -> torch.Tensor:
        idx = torch.maximum(rows[:, None] + self.offsets, self.first[rows][:, None])  # (B, context + 1)
        return self.train_clips.z[idx].float()  # (B, context + 1, C, h, w)

    def batch(self, step: int, rank: int, world_size: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step, rank])
        rows = torch.from_numpy(self.rows[rng.integers(0, len(self.rows), self.batch_size)])
        return {"z": self._windows(rows)}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        z = batch["z"]
        out = model(z)
        mse = F.mse_loss(out["pred"].float(), z[:, -1])
        loss = mse + self.model_cfg.commitment * out["commit"]
        share = torch.bincount(out["code"], minlength=self.model_cfg.codes).float() / len(z)
        perplexity = torch.exp(-(share * share.clamp_min(1e-9).log()).sum())
        return loss, {"mse": mse.item(), "commit": out["commit"].item(), "perplexity": perplexity.item()}

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Held-out next-latent error with the inferred code, with another code, and copying the last
        frame; how many codes are used; and, where the store recorded discrete actions, how the codes
        agree with them (NMI, many-to-one accuracy)."""
        net = unwrap(model)
        assert isinstance(net, LatentActionModel)
        clips, rows, z = self._eval_steps(net)
        codes = net.encode(z)
        q = net.codebook[codes]
        other = net.codebook[(codes + 1) % net.cfg.codes]
        target = z[:, -1]
        result = {
            "next_mse": float((net.predict(z[:, :-1], q).float() - target).pow(2).mean()),
            "other_code_mse": float((net.predict(z[:, :-1], other).float() - target).pow(2).mean()),
            "copy_last_mse": float((z[:, -2] - target).pow(2).mean()),
            "codes_used": float(len(codes.unique())),
        }
        spec = ActionSpec.of(self.action_spec)
        if spec.is_discrete and self.val_clips is not None:
            names = list(spec.names or ()) or [f"a{i}" for i in range(spec.n)]
            a = agreement(
                codes.numpy(), clips.act[torch.from_numpy(rows)].numpy(), net.cfg.codes, names, VIEW_ACTIONS
            )
            result |= {
                "nmi": a["nmi"],
                "accuracy_many_to_one": a["accuracy_many_to_one"],
                "accuracy_one_to_one": a["accuracy_one_to_one"],
            }
            if "accuracy_many_to_one_view" in a:
                result["accuracy_view"] = a["accuracy_many_to_one_view"]
        return result

    def log_samples(self, model: nn.Module, writer: SummaryWriter, step: int) -> None:
        """Codes in use on held-out steps, as a histogram."""
        net = unwrap(model)
        assert isinstance(net, LatentActionModel)
        writer.add_histogram("codes", net.encode(self._eval_steps(net)[2]).float(), step)

    def _eval_steps(self, net: LatentActionModel) -> tuple[LatentClips, np.ndarray, torch.Tensor]:
        """(clips, rows, encoder inputs) of up to EVAL_STEPS held-out steps spread over the episodes."""
        clips = self.val_clips or self.train_clips
        rows = step_rows(clips.lengths)
        rows = rows[np.linspace(0, len(rows) - 1, min(EVAL_STEPS, len(rows))).astype(int)]
        first = np.repeat(np.cumsum([0, *clips.lengths[:-1]]), clips.lengths)[rows]
        idx = np.maximum(rows[:, None] + np.arange(-net.cfg.context, 1), first[:, None])  # (S, context + 1)
        return clips, rows, clips.z[torch.from_numpy(idx)].float()

    def model_config(self) -> dict:
        return json.loads(json.dumps(asdict(self.model_cfg)))

    def data_config(self) -> dict:
        return json.loads(json.dumps(self.data_info))

    def card(self) -> str:
        c = self.model_cfg
        n = sum(p.numel() for p in self.build_model().parameters())
        return "\n".join(
            [
                "# reverie latent action model",
                "",
                f"{c.codes} discrete codes inferred from {c.context} past latent(s) and the next one (a "
                f"{c.code_dim}-d vector quantised on the unit sphere, EMA codebook, dead codes restarted), "
                f"trained only by predicting the next latent from the past and the code; width {c.width}, "
                f"{c.blocks} blocks, {n / 1e6:.3f} M parameters. Recorded actions are never used in training.",
                "Label a store with `reverie data label-actions STORE --model RUN`; measure with "
                "`reverie eval-actions --model RUN --data STORE`.",
                "",
                f"Data: {json.dumps({k: v for k, v in self.data_info.items() if k != 'val_episodes'})}",
            ]
        )

    def frames_per_batch(self) -> int:
        return self.batch_size * (self.model_cfg.context + 1)


ACTION_MAP_FILE = "action_map.json"  # in a latent-action run: which recorded action each code plays


def read_keys(model_run: str) -> dict[str, Any]:
    """The run's fitted keys (`eval-actions --save-keys`): {"codes": one-to-one, "merged": many-to-one
    (code -> action name), "names": the recorded action space, ...}, or {} when none were fitted."""
    saved = os.path.join(model_run, ACTION_MAP_FILE)
    if not os.path.isfile(saved):
        return {}
    with open(saved, encoding="utf-8") as f:
        return json.load(f)


def encode_store(store: Any, autoencoder_run: str, val_fraction: float, device: str = "cpu") -> LatentClips:
    """Every episode of `store` as latents, in the train/held-out parts a training run with `val_fraction`
    would use, so a store already encoded for training comes from the latent cache."""
    from reverie.models.autoencoder import load_autoencoder
    from reverie.train.autoencoder_task import split_episodes
    from reverie.train.dynamics_task import encode_episodes_cached

    ae = load_autoencoder(autoencoder_run, device)
    parts = [p for p in split_episodes(len(store), val_fraction) if p]
    clips = [encode_episodes_cached(store, p, ae, autoencoder_run, device, "label") for p in parts]
    return LatentClips(
        torch.cat([c.z for c in clips]),
        torch.cat([c.act for c in clips]),
        torch.zeros(sum(len(c.z) for c in clips), dtype=torch.long),
        [],
        [n for c in clips for n in c.lengths],
    )


def store_codes(model_run: str, data_dir: str) -> tuple[Any, LatentClips, torch.Tensor, dict[str, Any]]:
    """(store, its latents, the model's code for every frame, the model's run config); refuses a store
    whose frame size differs from the one the model was trained on."""
    from reverie.data.store import EpisodeStore
    from reverie.models.latent_actions import label_latents, load_latent_actions

    store = EpisodeStore.open(data_dir)
    model, config = load_latent_actions(model_run)
    data = config.get("data", {})
    size = (data.get("width"), data.get("height"))
    if None not in size and size != tuple(store.size):
        raise ReverieError(
            f"the latent-action model {model_run} was trained on {size[0]}x{size[1]} frames but the store "
            f"{data_dir} holds {store.size.width}x{store.size.height} frames; train one on this store's size"
        )
    check_steps([int(n) for n in store.lengths], data_dir, need=1)
    ae_run = data.get("autoencoder")
    if not ae_run or not os.path.isdir(ae_run):
        raise ReverieError(f"{model_run}: its autoencoder {ae_run!r} is gone; the latents cannot be rebuilt")
    clips = encode_store(store, ae_run, float(config.get("train", {}).get("val_fraction", 0.05)))
    return store, clips, label_latents(model, clips.z, clips.lengths), config


def stream_spec(codes: torch.Tensor, lengths: list[int], n: int, model_run: str) -> tuple[dict, np.ndarray]:
    """(the action spec of a latent stream, the order code -> stream action).

    Stream action 0 is the code of an unchanged frame (every episode's first frame reads as one), so
    the null action of the store's convention stays 0. Codes are named after the recorded action each
    plays when the run holds a fitted action map (`reverie eval-actions --save-keys`), else noop, c1, c2...
    """
    starts = np.cumsum([0, *lengths[:-1]])
    still = int(torch.bincount(codes[torch.from_numpy(starts)], minlength=n).argmax()) if lengths else 0
    names = {still: "noop"}
    if keys := read_keys(model_run):
        names = {int(k): v for k, v in keys["codes"].items()}
        still = next((k for k, v in names.items() if v == "noop"), still)
    order = [still] + [k for k in range(n) if k != still]  # stream action i plays code order[i]
    out = [names.get(k, f"c{i}") for i, k in enumerate(order)]
    spec = {
        "type": "discrete",
        "n": n,
        "names": out,
        "source": "latent-actions",
        "model": os.path.abspath(model_run),
        "codes": order,
    }
    lut = np.empty(n, np.int64)
    lut[order] = np.arange(n)
    return spec, lut


def label_store(
    model_run: str, data_dir: str, name: str = "latent", merge: bool = False
) -> tuple[str, dict[str, Any], np.ndarray]:
    """Write the model's action for every frame of the store as action stream `name` (atomically);
    (its path, its spec, how often each stream action occurs).

    With `merge`, the stream speaks the recorded action space the run's keys were fitted on
    (`reverie eval-actions --save-keys`): every code is written as the recorded action it most often
    goes with, so several codes of one action (walking in the open and walking into a wall) train one
    action, and the usual keys play what the dynamics model learnt."""
    from reverie.data.streams import write_stream

    store, clips, codes, config = store_codes(model_run, data_dir)
    n = int(config["model"]["codes"])
    if merge:
        spec, lut = merged_spec(model_run, n)
    else:
        spec, lut = stream_spec(codes, clips.lengths, n, model_run)
    act = lut[codes.numpy()]
    act[np.cumsum([0, *clips.lengths[:-1]])] = 0  # a first frame follows no action: the null action
    path = write_stream(store, name, spec, np.split(act, np.cumsum(clips.lengths)[:-1]))
    return path, spec, np.bincount(act, minlength=spec["n"])


def merged_spec(model_run: str, n: int) -> tuple[dict, np.ndarray]:
    """(the spec of a merged stream: the recorded action space, the order code -> stream action)."""
    body = read_keys(model_run)
    if "merged" not in body or "names" not in body:
        raise ReverieError(
            f"{model_run} holds no fitted keys for a merged stream; run `reverie eval-actions --model "
            f"{model_run} --data STORE --save-keys` on a store with recorded actions first"
        )
    names, merged = list(body["names"]), {int(k): v for k, v in body["merged"].items()}
    # a code the labelled episodes never showed plays the null action (index 0, as in recorded stores)
    lut = np.array([names.index(merged[k]) if merged.get(k) in names else 0 for k in range(n)], np.int64)
    spec = {
        "type": "discrete",
        "n": len(names),
        "names": names,
        "source": "latent-actions",
        "model": os.path.abspath(model_run),
        "merged": {str(k): names[int(lut[k])] for k in range(n)},
    }
    return spec, lut


def evaluate_store(model_run: str, data_dir: str, save_keys: bool = False) -> dict[str, Any]:
    """Agreement of the model's codes with a store's recorded discrete actions (every step that follows
    a frame); with `save_keys` the one-to-one code -> action map is saved in the run."""
    from reverie.models.latent_actions import contingency, many_to_one, one_to_one

    store, clips, codes, config = store_codes(model_run, data_dir)
    spec = store.spec
    if not spec.is_discrete:
        raise ReverieError(f"{data_dir} has {spec.kind} actions; agreement needs recorded discrete actions")
    names = list(spec.names or ()) or [f"a{i}" for i in range(spec.n)]
    n = int(config["model"]["codes"])
    rows = torch.from_numpy(step_rows(clips.lengths))
    c, a = codes[rows].numpy(), clips.act[rows].numpy()
    result = {"model": model_run, "data": data_dir, "codes": n, **agreement(c, a, n, names, VIEW_ACTIONS)}
    body = read_keys(model_run)
    if body and not save_keys:
        view = np.isin(a, [names.index(v) for v in VIEW_ACTIONS if v in names])
        for key, label in (("codes", "map"), ("merged", "merged_map")):  # merged: many-to-one
            if key not in body:
                continue
            fitted = {int(k): v for k, v in body[key].items()}
            lut = np.array([names.index(fitted[k]) if fitted.get(k) in names else -1 for k in range(n)])
            hit = lut[c] == a
            result[f"accuracy_saved_{label}"] = round(float(hit.mean()), 4)
            if view.any():
                result[f"accuracy_saved_{label}_view"] = round(float(hit[view].mean()), 4)
    if save_keys:
        from reverie.checkpoint import write_atomic

        saved = os.path.join(model_run, ACTION_MAP_FILE)
        counts = contingency(c, a, n, len(names))
        mapping, merged = one_to_one(counts), many_to_one(counts)
        body = {
            "codes": {str(k): names[v] for k, v in sorted(mapping.items())},
            "merged": {str(k): names[v] for k, v in sorted(merged.items())},
            "names": names,
            "fitted_on": os.path.abspath(data_dir),
        }
        write_atomic({Path(saved): json.dumps(body, indent=1).encode()})
        result["saved_keys"] = saved
    return result
