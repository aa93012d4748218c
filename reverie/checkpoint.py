"""Run directories: safetensors + JSON only (never pickle), each file written atomically.

    RUN/model.safetensors        EMA weights (what inference loads)
    RUN/config.json              {"kind", "model", "train", "data", "step", "metrics", "save_id", ...}
    RUN/MODEL_CARD.md            what the model is and how it was trained
    RUN/train_state.safetensors  raw weights ("model/...") and optimizer tensors ("opt/<i>/<name>")
    RUN/train_state.json         step, optimizer param groups, elapsed time: what --resume needs

Every file of one save carries the same `save_id`. All files are first written to temporary names
(`.NAME.SAVE_ID.tmp`) and fsynced, then renamed one after another. A process killed while writing
them leaves temp files behind; `clean_stale_temps` (run when training starts) removes them, or, if
the kill came inside the rename window (a final file already carries that save_id, so every temp of
it is complete), renames the rest into place and finishes the save. A complete checkpoint is never
touched. Loading detects files of two saves (different save_id) instead of silently mixing them.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from reverie.errors import ReverieError
from reverie.load_check import MAX_CONFIG_BYTES, MAX_MODEL_BYTES

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "MODEL_CARD.md"
STATE_FILE = "train_state.safetensors"
STATE_JSON = "train_state.json"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


CHECKPOINT_FILES = (STATE_FILE, STATE_JSON, MODEL_FILE, CONFIG_FILE, CARD_FILE)  # in rename order
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<tag>[0-9a-f]{8,32})\.tmp$")


def _write_temp(path: Path, data: bytes, tag: str) -> Path:
    tmp = path.with_name(f".{path.name}.{tag}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def write_atomic(files: dict[Path, bytes], tag: str | None = None) -> None:
    """Write several files so each is either its old or its new version; no temp file is left
    (unless the process is killed: see clean_stale_temps). `tag` names the temps (hex)."""
    tag = tag or uuid.uuid4().hex
    temps: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            temps.append((_write_temp(path, data, tag), path))
        for tmp, path in temps:
            os.replace(tmp, path)
    finally:
        for tmp, _ in temps:
            if tmp.exists():
                tmp.unlink()
    for d in {p.parent for p in files}:
        _fsync_dir(d)


def _tensor_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    # safetensors refuses shared or strided storage; a contiguous CPU copy is always accepted
    return st_save({k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}, metadata)


def save_run(
    out: Path,
    *,
    config: dict[str, Any],
    ema_state: dict[str, torch.Tensor],
    card: str,
    train_tensors: dict[str, torch.Tensor],
    train_json: dict[str, Any],
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_id = uuid.uuid4().hex
    config = {**config, "save_id": save_id}
    meta = {"save_id": save_id, "kind": str(config["kind"]), "step": str(config["step"])}
    write_atomic(
        {
            out / STATE_FILE: _tensor_bytes(train_tensors, meta),
            out / STATE_JSON: json.dumps({**train_json, "save_id": save_id}, indent=1).encode(),
            out / MODEL_FILE: _tensor_bytes(ema_state, meta),
            out / CONFIG_FILE: json.dumps(config, indent=1).encode(),
            out / CARD_FILE: card.encode(),
        },
        tag=save_id,
    )


def _saved_id(path: Path) -> str | None:
    """The save_id a checkpoint file carries (JSON field or safetensors metadata); None if unreadable."""
    try:
        with open(path, "rb") as f:
            if path.suffix == ".json":
                return json.loads(f.read()).get("save_id")
            n = int.from_bytes(f.read(8), "little")
            if n > 100 * 1024 * 1024:  # safetensors' own header cap: anything larger is not one
                return None
            return (json.loads(f.read(n)).get("__metadata__") or {}).get("save_id")
    except (OSError, ValueError, AttributeError):
        return None


def clean_stale_temps(out: Path) -> list[Path]:
    """Remove the temp files a killed save left in run directory `out`, or finish that save when
    the kill came after its renames began. Returns the temps removed or renamed into place."""
    if not out.is_dir():
        return []
    temps = [(p, m) for p in out.iterdir() if (m := _TEMP.match(p.name)) and m["name"] in CHECKPOINT_FILES]
    if not temps:
        return []
    finals = {_saved_id(out / name) for name in CHECKPOINT_FILES if (out / name).exists()}
    for tmp, m in temps:
        if m["tag"] in finals:  # the rename phase of this save began: every temp of it is complete
            os.replace(tmp, out / m["name"])
        else:
            tmp.unlink(missing_ok=True)
    _fsync_dir(out)
    return [tmp for tmp, _ in temps]


def has_run(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / CONFIG_FILE).exists() or (Path(path) / MODEL_FILE).exists()


def _check_size(path: Path, limit: int) -> None:
    """Refuse a file larger than `limit` before reading it: run directories may come from anyone."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return  # the read below names the missing file
    if size > limit:
        raise ReverieError(
            f"{path} is {size / 2**20:,.0f} MiB; files of a run are at most {limit / 2**20:,.0f} MiB here"
        )


def _read_json(path: Path) -> dict[str, Any]:
    _check_size(path, MAX_CONFIG_BYTES)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ReverieError(f"{path.parent} is not a training run: {path.name} is missing") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ReverieError(f"{path} is corrupt (not valid JSON: {e}); restore it or train again") from e
    if not isinstance(data, dict):
        raise ReverieError(f"{path} is corrupt: expected a JSON object")
    return data


def _read_tensors(path: Path, limit: int | None = None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    _check_size(path, MAX_MODEL_BYTES if limit is None else limit)
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise ReverieError(f"{path.parent} is not a complete training run: {path.name} is missing") from e
    try:
        tensors = st_load(data)
        n = int.from_bytes(data[:8], "little")  # safetensors: u64 header length, then a JSON header
        meta = json.loads(data[8 : 8 + n]).get("__metadata__") or {}
    except (SafetensorError, ValueError) as e:
        raise ReverieError(
            f"{path} is corrupt or truncated ({e}); it was probably cut off while being written"
        ) from e
    return tensors, meta


def _check_same_save(path: Path, config: dict[str, Any], meta: dict[str, str], name: str) -> None:
    if meta.get("save_id") != config.get("save_id"):
        raise ReverieError(
            f"{path}: {name} (step {meta.get('step', '?')}) and {CONFIG_FILE} (step {config.get('step', '?')}) "
            "come from different saves; the last save was interrupted. Delete the run or train again"
        )


def load_run(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config.json as a dict, EMA weights) of a run directory."""
    run = Path(path)
    if not run.is_dir():
        raise ReverieError(f"no training run at {run}: the directory does not exist")
    config = _read_json(run / CONFIG_FILE)
    state, meta = _read_tensors(run / MODEL_FILE)
    _check_same_save(run, config, meta, MODEL_FILE)
    return config, state


def load_train_state(path: Path, config: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(raw weights + optimizer tensors, train_state.json) for --resume, checked against config.json."""
    # raw weights and two optimizer moments per weight
    tensors, meta = _read_tensors(path / STATE_FILE, limit=4 * MAX_MODEL_BYTES)
    _check_same_save(path, config, meta, STATE_FILE)
    info = _read_json(path / STATE_JSON)
    if info.get("save_id") != config.get("save_id"):
        raise ReverieError(f"{path}: {STATE_JSON} and {CONFIG_FILE} come from different saves")
    return tensors, info


def check_kind(config: dict[str, Any], expected: str, path: str | os.PathLike[str] = "") -> None:
    kind = config.get("kind")
    if kind != expected:
        where = f"{path}: " if path else ""
        raise ReverieError(f"{where}this run holds a {kind!r} model, expected {expected!r}")


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """load_state_dict with an error that names the missing, unexpected or mis-shaped tensors."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        raise ReverieError(
            f"{where} does not fit the model of its config (missing {missing[:4]}, unexpected "
            f"{unexpected[:4]}, checkpoint vs model shapes {shapes[:4]}); it comes from another version or model"
        )
    model.load_state_dict(state)


def flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state as safetensors tensors plus JSON (param groups, scalar state)."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for name, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"opt/{idx}/{name}"] = v
            else:
                scalars.setdefault(str(idx), {})[name] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def restore_optimizer(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict[str, Any]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("opt/"):
            _, idx, name = key.split("/", 2)
            state.setdefault(int(idx), {})[name] = v
    for idx, sc in info.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(sc)
    opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})
