"""Package a trained world model for shipping: the dynamics run and its autoencoder in one directory.

    reverie export runs/out/dit --out reverie/weights/default --measured runs/out/measured.jsonl

The result holds only what playing needs (EMA weights, config.json, MODEL_CARD.md; no optimizer
state), with the autoencoder in `autoencoder/` and named by a relative path, so the directory can be
moved or installed with the package. Weights are stored in bf16 by default: the engine plays in bf16,
and it halves the size that goes into git.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as st_save

from reverie.checkpoint import CARD_FILE, CONFIG_FILE, MODEL_FILE, check_kind, load_run
from reverie.errors import ReverieError

__all__ = ["EXPORT_DTYPES", "export_model"]

EXPORT_DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
AE_DIR = "autoencoder"


def _write_run(
    src: str, state: dict[str, torch.Tensor], dst: Path, config: dict[str, Any], dtype: torch.dtype, card_extra: str
) -> int:  # fmt: skip
    """Write run `src`'s weights `state` (cast to dtype), config and card into `dst`; returns the weight bytes."""
    meta = {"save_id": str(config["save_id"]), "kind": str(config["kind"]), "step": str(config["step"])}
    # floating tensors only: integer buffers (if any) keep their type
    tensors = {
        k: (v.to(dtype) if v.is_floating_point() else v).contiguous().clone() for k, v in state.items()
    }
    blob = st_save(tensors, meta)
    dst.mkdir(parents=True, exist_ok=True)
    (dst / MODEL_FILE).write_bytes(blob)
    (dst / CONFIG_FILE).write_text(json.dumps(config, indent=1))
    card = Path(src, CARD_FILE).read_text(encoding="utf-8") if Path(src, CARD_FILE).exists() else ""
    if config.get("kind") == "dynamics" and config.get("sampler"):  # the package's own play settings
        from reverie.train.dynamics_task import PLAYED_WITH, played_with

        sampler = config["sampler"]
        card = PLAYED_WITH.sub(
            played_with(
                sampler["steps"],
                sampler["context_noise"],
                sampler.get("context_blur", 0.0),
                sampler.get("guidance", 1.0),
                sampler.get("guide", "text"),
            ),
            card,
        )
    (dst / CARD_FILE).write_text(card.rstrip() + "\n" + card_extra)
    return len(blob)


def _measured_section(path: str) -> str:
    lines = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except json.JSONDecodeError as e:
            raise ReverieError(
                f"{path}:{i} is not a JSON line ({e}); accepted: the --json output of reverie eval/bench"
            ) from e
        lines.append(line.strip())
    return (
        "\n## Measured\n\nOne JSON line per measurement (`reverie eval --json`, `reverie bench ... --json`):\n\n```json\n"
        + "\n".join(lines)
        + "\n```\n"
    )


def _check_same_encoding(
    a_run: str, a: dict[str, torch.Tensor], b_run: str, b: dict[str, torch.Tensor]
) -> None:
    """Refuse an autoencoder whose encoder (weights and latent statistics) differs from the trained-on one."""
    keys = [k for k in a if k.startswith("encoder.") or k in ("z_shift", "z_scale")]
    same = all(k in b and a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in keys)
    if not keys or not same:
        raise ReverieError(
            f"--autoencoder {b_run} encodes differently from {a_run}, the autoencoder the dynamics model was "
            "trained on; accepted: that run, or a fine-tune of it made with --init ... --freeze-encoder"
        )


def export_model(
    run: str, out: str, *, autoencoder: str | None = None, precision: str = "bf16", notes: str | None = None,
    measured: str | None = None, force: bool = False, play: dict[str, Any] | None = None,
) -> dict[str, int]:  # fmt: skip
    """Write the shipped form of dynamics run `run` (and its autoencoder) to `out`, atomically.

    `autoencoder` replaces the run's own by a decoder fine-tune of it (same encoder, checked).
    Returns the bytes of weights written per part. `notes` (markdown) and `measured` (JSON lines)
    are appended to the dynamics model card. `play` overrides the run's play settings (its config's
    "sampler": steps, context_noise, context_blur, ...), e.g. a context noise level chosen by measurement.
    """
    from reverie.data.seeds import seed_ranges
    from reverie.data.store import EpisodeStore, is_store
    from reverie.models.world_model import autoencoder_path

    if precision not in EXPORT_DTYPES:
        raise ReverieError(f"bad precision {precision!r}; accepted: {', '.join(EXPORT_DTYPES)}")
    dtype = EXPORT_DTYPES[precision]
    config, state = load_run(run)
    check_kind(config, "dynamics", run)
    dst = Path(out)
    if dst.exists() and not force:
        raise ReverieError(f"{dst} exists; pass --force to replace it")
    ae_run = autoencoder_path(run, config)
    ae_config, ae_state = load_run(ae_run)
    if autoencoder is not None:
        ae_config, ft_state = load_run(autoencoder)
        _check_same_encoding(ae_run, ae_state, autoencoder, ft_state)
        ae_run, ae_state = autoencoder, ft_state
    check_kind(ae_config, "autoencoder", ae_run)

    data = dict(config["data"])
    if "seed_ranges" not in data:  # runs made before configs recorded their seeds
        if not is_store(str(data.get("path", ""))):
            raise ReverieError(
                f"{run}: its config records no training seeds and its store {data.get('path')!r} is gone; "
                "eval could not check held-out seeds of the exported model"
            )
        data["seed_ranges"] = seed_ranges(EpisodeStore.open(data["path"]).seeds)
    data["autoencoder"] = AE_DIR
    config = {**config, "data": data}
    if play:
        from dataclasses import asdict

        from reverie.models.world_model import play_settings

        config["sampler"] = asdict(play_settings({"sampler": {**(config.get("sampler") or {}), **play}}))
        from reverie.models.sampler import check_blur_input

        check_blur_input(config["sampler"]["context_blur"], bool(config["model"].get("blur_input")), run)
    extra = ""
    if play:
        sampler = config["sampler"]
        extra += (
            f"\n**Play settings of this package** (set at export, they replace the run's): "
            f"{sampler['steps']} Euler step{'' if sampler['steps'] == 1 else 's'}, context noise {sampler['context_noise']}"
            + (f", context blur {sampler['context_blur']}" if sampler.get("context_blur") else "")
            + (
                f", guidance {sampler['guidance']} on the {sampler.get('guide', 'text')}"
                if sampler.get("guidance", 1.0) != 1.0
                else ""
            )
            + ".\n"
        )
    if notes:
        extra += "\n" + Path(notes).read_text(encoding="utf-8").strip() + "\n"
    if measured:
        extra += _measured_section(measured)

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp's 0700 would make a package unreadable to anyone else
    try:
        sizes = {
            "dynamics": _write_run(run, state, tmp, config, dtype, extra),
            "autoencoder": _write_run(ae_run, ae_state, tmp / AE_DIR, ae_config, dtype, ""),
        }
        old = None
        if dst.exists():  # swap in the new directory, then drop the old one
            old = dst.with_name(f".{dst.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dst, old)
        os.replace(tmp, dst)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return sizes
