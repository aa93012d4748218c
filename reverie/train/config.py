"""The training configuration: one typed dataclass, the only source of truth for training settings.

Settings come from the defaults here, then a YAML file (`--config cfg.yaml`), then `--set key=value`
pairs. Only fields that exist are accepted; `model.KEY=VALUE` overrides a field of the model preset,
`flow.KEY=VALUE` the dynamics objective (reverie.models.flow.FlowConfig), `sampler.KEY=VALUE` the
play settings saved with a dynamics run (reverie.models.sampler.SamplerConfig) and `loss.KEY=VALUE`
the autoencoder's objective (reverie.train.autoencoder_task.AutoencoderLossConfig).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from reverie.errors import ReverieError
from reverie.typed_config import apply_overrides


@dataclass
class TrainConfig:
    steps: int = 20_000  # optimizer steps in all (the cosine schedule spans them)
    batch_size: int = 32  # frames (autoencoder) or windows (dynamics) per step, per process
    lr: float = 5e-4  # peak learning rate; 2e-3 made the autoencoder spike (loss x20) every few dozen steps
    warmup_steps: int = 200  # steps of linear warm-up from 0 to lr
    min_lr_ratio: float = 0.1  # the cosine decays to lr * this
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    beta1: float = 0.9  # AdamW first-moment decay
    beta2: float = 0.99  # AdamW second-moment decay
    grad_clip: float = 1.0  # the gradient's global norm is clipped to this
    grown_lr_scale: float = 1.0  # lr multiplier for the blocks a fine-tune grew (--init, deeper model.depth)
    ema_decay: float = 0.999  # of the weights' moving average, which is what is evaluated and saved
    precision: str = "auto"  # auto (bf16 autocast where the hardware has bf16 math, else fp32) | bf16 | fp32
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch threads per process; 0 = all cores divided among the local processes
    seed: int = 0  # initial weights and every step's batch and noise
    minutes: float = 0.0  # wall-clock budget for this invocation; 0 = none
    cpu_minutes: float = 0.0  # CPU-time budget for this invocation (fair under contention); 0 = none
    checkpoint_minutes: float = 5.0  # wall-clock minutes between checkpoints
    log_every: int = 25  # steps between TensorBoard scalars
    sample_every: int = 1000  # steps between TensorBoard sample images
    val_fraction: float = 0.05  # the last episodes (by index) held out for validation


# `--set SECTION.KEY=VALUE` goes to that section's typed config
SECTIONS = ("model", "flow", "sampler", "loss")
PRECISIONS = ("auto", "bf16", "fp32")
DEVICES = ("auto", "cpu", "cuda")


def parse_sets(pairs: list[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key.strip():
            raise ReverieError(f"bad --set {p!r}: expected KEY=VALUE, for example --set lr=3e-4")
        out[key.strip()] = value.strip()
    return out


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except OSError as e:
        raise ReverieError(f"cannot read config file {path}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ReverieError(f"config file {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ReverieError(f"config file {path} must hold a mapping of key: value, got {type(data).__name__}")
    # a nested `model:` (or `flow:`) mapping is the same as model.KEY entries
    flat: dict[str, Any] = {}
    for k, v in data.items():
        if k in SECTIONS and isinstance(v, dict):
            flat.update({f"{k}.{mk}": mv for mk, mv in v.items()})
        else:
            flat[str(k)] = v
    return flat


def resolve(
    config_file: str | None, sets: list[str], base: TrainConfig | None = None
) -> tuple[TrainConfig, dict[str, Any]]:
    """(train config, model overrides) from defaults, an optional YAML file and `--set` pairs.

    Section keys other than model.* (flow.*, sampler.*) come back in the overrides under their prefix; see
    `split_section`.
    """
    merged: dict[str, Any] = load_yaml(config_file) if config_file else {}
    merged.update(parse_sets(sets))
    sectioned = {k for k in merged if k.partition(".")[0] in SECTIONS and "." in k}
    model = {k[len("model.") :]: v for k, v in merged.items() if k.startswith("model.")}
    model |= {k: v for k, v in merged.items() if k in sectioned and not k.startswith("model.")}
    train = {k: v for k, v in merged.items() if k not in sectioned}
    cfg = apply_overrides(base or TrainConfig(), train, "train config")
    check(cfg)
    return cfg, model


def split_section(overrides: dict[str, Any], section: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the `section.` keys without their prefix, the rest) of the overrides `resolve` returned."""
    prefix = section + "."
    mine = {k[len(prefix) :]: v for k, v in overrides.items() if k.startswith(prefix)}
    return mine, {k: v for k, v in overrides.items() if not k.startswith(prefix)}


def check(cfg: TrainConfig) -> None:
    if cfg.precision not in PRECISIONS:
        raise ReverieError(f"precision {cfg.precision!r} is not supported; accepted: {', '.join(PRECISIONS)}")
    if cfg.device not in DEVICES:
        raise ReverieError(f"device {cfg.device!r} is not supported; accepted: {', '.join(DEVICES)}")
    for name in ("steps", "batch_size"):
        if getattr(cfg, name) < 1:
            raise ReverieError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if not 0.0 <= cfg.val_fraction < 1.0:
        raise ReverieError(f"val_fraction must be in [0, 1), got {cfg.val_fraction}")
    if cfg.minutes < 0 or cfg.cpu_minutes < 0:
        raise ReverieError(f"minutes and cpu_minutes must be >= 0, got {cfg.minutes}, {cfg.cpu_minutes}")
