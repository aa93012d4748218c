"""The training loop shared by every model: read top to bottom, no callbacks beyond the Task contract.

    reverie train autoencoder --data runs/out/dungeon --preset small --out runs/out/ae --minutes 10
    torchrun --nproc_per_node=2 --no-python reverie train autoencoder ...   (same code, DDP)

Exact resume: batches and the global torch RNG are pure functions of (seed, step, rank), the learning
rate is a function of the step, and the checkpoint holds raw weights, EMA weights and optimizer
tensors, so N steps straight and N/2 + --resume + N/2 produce the same numbers.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from reverie import __version__
from reverie import checkpoint as ckpt
from reverie.cpus import usable_cpus, uses_bf16
from reverie.errors import ReverieError
from reverie.train import distributed
from reverie.train.budget import Budget, Start
from reverie.train.config import TrainConfig, check
from reverie.train.ema import EMA
from reverie.train.schedule import lr_at
from reverie.train.task import Task
from reverie.typed_config import config_changes

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

LOG_FILE = "log.jsonl"


def step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0] >> 1)


class _StopSignal:
    """SIGINT/SIGTERM set a flag: the loop finishes its step, saves and exits. A second one aborts."""

    def __init__(self) -> None:
        self.flag = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.flag:
            raise KeyboardInterrupt
        self.flag = True

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _optimizer(model: nn.Module, cfg: TrainConfig, grown: tuple[str, ...] = ()) -> torch.optim.AdamW:
    """AdamW over the trainable weights; `grown` (parameter-name prefixes) are the parts a fine-tune
    added, kept in groups of their own so they may learn at `cfg.grown_lr_scale` times the rate."""
    groups = []
    for is_grown in (False, True):
        named = [
            (n, p) for n, p in model.named_parameters() if p.requires_grad and n.startswith(grown) == is_grown
        ]
        if is_grown and not named:  # a run that grew nothing keeps the two groups it always had
            break
        # no weight decay on biases and gains (1-d tensors): decaying them only hurts
        decay, no_decay = [p for _, p in named if p.ndim >= 2], [p for _, p in named if p.ndim < 2]
        groups += [{"params": decay, "weight_decay": cfg.weight_decay, "grown": is_grown},
                   {"params": no_decay, "weight_decay": 0.0, "grown": is_grown}]  # fmt: skip
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


def _card(task: Task, cfg: TrainConfig, info: dict[str, Any]) -> str:
    lines = [task.card().rstrip(), "", "## Training", ""]
    lines += [f"- {k}: {v}" for k, v in info.items() if k != "metrics"]
    if info.get("metrics"):
        lines += ["", "## Held-out metrics", ""]
        lines += [f"- {k}: {v:.4g}" for k, v in info["metrics"].items()]
    lines += ["", "## Training config", "", "```json", json.dumps(asdict(cfg), indent=1), "```", ""]
    return "\n".join(lines)


def _with_new_defaults(saved: Any, task: Task) -> Any:
    """A saved model config with the settings added to the code since it was saved, at their defaults
    (what loading the run gives them), so an older run resumes when nothing it knew of changed."""
    typed = getattr(task, "model_cfg", None)
    if not (isinstance(saved, dict) and is_dataclass(typed)):
        return saved
    added = {f.name: f.default for f in fields(typed) if f.name not in saved}
    if any(v is MISSING for v in added.values()):
        return saved
    return {**json.loads(json.dumps(added)), **saved}


def _resume(
    out: Path, task: Task, model: nn.Module, ema: EMA, opt: torch.optim.Optimizer
) -> tuple[int, dict[str, Any]]:
    config, ema_state = ckpt.load_run(out)
    ckpt.check_kind(config, task.name, out)
    saved, asked = _with_new_defaults(config.get("model"), task), json.loads(json.dumps(task.model_config()))
    if saved != asked:
        changes = config_changes(saved, asked) if isinstance(saved, dict) else [f"{saved} -> {asked}"]
        raise ReverieError(
            f"cannot resume {out}: its model differs from the one asked for ({'; '.join(changes)}); "
            "use the same preset, data (its action space) and model.* settings, or a new --out"
        )
    tensors, info = ckpt.load_train_state(out, config)
    raw = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    ckpt.load_weights(model, raw, f"cannot resume {out}: {ckpt.STATE_FILE}")
    ckpt.load_weights(ema.model, ema_state, f"cannot resume {out}: {ckpt.MODEL_FILE}")
    try:
        ckpt.restore_optimizer(opt, tensors, info)
    except (ValueError, KeyError, RuntimeError) as e:
        raise ReverieError(f"cannot resume {out}: optimizer state does not fit the model ({e})") from e
    adversary = getattr(task, "adversary", None)
    if adversary is not None and "critic_opt" in info:  # else a new critic starts (a fine-tune turning it on)
        try:
            adversary.load_state_tensors(tensors, info["critic_opt"])
        except (ValueError, KeyError, RuntimeError) as e:
            raise ReverieError(f"cannot resume {out}: the critic's state does not fit ({e})") from e
    return int(config["step"]), info


def _trim_log(path: Path, step: int) -> None:
    """Drop log lines past the resumed step (written after the last checkpoint of a killed run),
    and a last line the kill cut off mid-write."""
    if not path.exists():
        return
    keep = []
    for ln in path.read_text().splitlines():
        try:
            row = json.loads(ln)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
            keep.append(ln)
    path.write_text("".join(ln + "\n" for ln in keep))


def train(
    task: Task, cfg: TrainConfig, out: Path, resume: bool = False, budget: Budget | None = None
) -> Path:
    """Train task's model into run directory `out` until cfg.steps, the budget or a signal; return out.

    `budget`: cfg.minutes / cfg.cpu_minutes counted from the command's start (the CLI makes it
    before reading the data); by default from this call. The final samples and evaluation fit in it.
    """
    check(cfg)
    out = Path(out)
    budget = budget or Budget(cfg.minutes, cfg.cpu_minutes, Start.now())
    d = distributed.setup(cfg.device)
    try:
        return _train(task, cfg, out, resume, d, budget)
    finally:
        distributed.teardown(d)


@dataclass
class _Tally:
    """What a save records of the run's cost so far: a resumed run's totals plus this invocation's."""

    elapsed0: float  # wall seconds of the saved run
    cpu0: float  # CPU seconds of the saved run
    frames0: int  # frames the saved run had seen
    step0: int  # the step this invocation started from
    frames_per_step: int
    t_start: float = field(default_factory=time.monotonic)
    cpu_start: float = field(default_factory=time.process_time)  # this process's: the compute it had

    def elapsed_s(self) -> float:
        return self.elapsed0 + time.monotonic() - self.t_start

    def cpu_s(self) -> float:
        return self.cpu0 + time.process_time() - self.cpu_start

    def frames(self, step: int) -> int:
        return self.frames0 + (step - self.step0) * self.frames_per_step


def _log_samples(task: Task, model: nn.Module, writer: SummaryWriter | None, amp: Any, step: int) -> None:
    if writer is not None:
        with torch.no_grad(), amp:
            task.log_samples(model, writer, step)
        writer.flush()


def _evaluate(
    task: Task, model: nn.Module, writer: SummaryWriter | None, amp: Any, step: int, d: distributed.Dist,
    metrics: dict[str, float],
) -> dict[str, float]:  # fmt: skip
    """The task's held-out metrics of `model` (the EMA copy), also in TensorBoard; on other ranks, or
    for a task without `evaluate`, the last ones (`metrics`)."""
    evaluate = getattr(task, "evaluate", None)
    if not d.is_main or evaluate is None:
        return metrics
    with torch.no_grad(), amp:
        metrics = {k: float(v) for k, v in evaluate(model).items()}
    if writer is not None:
        for k, v in metrics.items():
            writer.add_scalar(f"val/{k}", v, step)
    return metrics


def _open_log(out: Path, step: int, resume: bool) -> SummaryWriter:
    """The run's log.jsonl, ready to append to from `step`, and its TensorBoard writer."""
    from torch.utils.tensorboard import SummaryWriter

    out.mkdir(parents=True, exist_ok=True)
    # A fresh run starts a fresh log: one killed before its first checkpoint left lines that
    # would otherwise read as this run's steps. TensorBoard hides the old events the same way.
    if resume:
        _trim_log(out / LOG_FILE, step)
    else:
        (out / LOG_FILE).write_text("")
    return SummaryWriter(str(out / "tb"), purge_step=step + 1 if resume else 0)


def _log_step(log_path: Path, writer: SummaryWriter, row: dict[str, float]) -> None:
    """One line of log.jsonl, and its numbers as TensorBoard scalars at row["step"]."""
    with open(log_path, "a") as f:
        f.write(json.dumps(row) + "\n")
    for k, v in row.items():
        if k != "step":
            writer.add_scalar(f"train/{k}", v, row["step"])


def _save(
    out: Path, task: Task, cfg: TrainConfig, d: distributed.Dist, step: int, model: nn.Module, ema: EMA,
    opt: torch.optim.Optimizer, metrics: dict[str, float], tally: _Tally,
) -> None:  # fmt: skip
    """Write the run directory at `step` (the main process), then wait for every process."""
    if d.is_main:
        info = {
            "steps": step,
            "wall_time_s": round(tally.elapsed_s(), 1),
            "cpu_core_hours": round(tally.cpu_s() / 3600, 3),
            "frames_seen": tally.frames(step),
            "processes": d.world_size,
            "device": d.device.type,
            "precision": "bf16" if uses_bf16(cfg.precision, d.device) else "fp32",
            "metrics": metrics,
        }
        data_config = getattr(task, "data_config", None)
        config = {
            "kind": task.name,
            "model": task.model_config(),
            "train": asdict(cfg),
            "data": data_config() if data_config is not None else {},
            "step": step,
            "metrics": metrics,
            "reverie_version": __version__,
        }
        extra = getattr(task, "extra_config", None)
        if extra is not None:  # e.g. the dynamics objective and play settings
            config |= extra()
        opt_tensors, opt_json = ckpt.flatten_optimizer(opt)
        tensors = {f"model/{k}": v for k, v in model.state_dict().items()} | opt_tensors
        adversary = getattr(task, "adversary", None)
        if adversary is not None:  # the critic and its optimiser, for an exact resume
            critic_tensors, opt_json["critic_opt"] = adversary.state_tensors()
            tensors |= critic_tensors
        state_json = {
            **opt_json,
            "step": step,
            "elapsed_s": info["wall_time_s"],
            "cpu_s": tally.cpu_s(),
            "frames": info["frames_seen"],
            "world_size": d.world_size,
            "metrics": metrics,
        }
        ckpt.save_run(
            out,
            config=config,
            ema_state=ema.model.state_dict(),
            card=_card(task, cfg, info),
            train_tensors=tensors,
            train_json=state_json,
        )
    distributed.barrier(d)


def _check_out(out: Path, resume: bool, d: distributed.Dist) -> None:
    """Clean what a killed save left, then refuse a fresh run over an old one (or a resume of none)."""
    if d.is_main:  # before has_run: a kill inside a save's rename window is finished here
        ckpt.clean_stale_temps(out)
    distributed.barrier(d)
    if not resume and ckpt.has_run(out):
        raise ReverieError(
            f"{out} already holds a training run; pass --resume to continue it, or a new --out"
        )
    if resume and not ckpt.has_run(out):
        raise ReverieError(f"--resume: no training run to continue at {out}")


def _train_step(
    task: Task, cfg: TrainConfig, net: nn.Module, model: nn.Module, ema: EMA,
    opt: torch.optim.AdamW, amp: Any, step: int, d: distributed.Dist,
) -> tuple[torch.Tensor, dict[str, float], float, float]:  # fmt: skip
    """One optimiser step at `step`; returns (loss, task metrics, grad norm, lr)."""
    torch.manual_seed(step_seed(cfg.seed, step, d.rank))
    batch = {k: v.to(d.device, non_blocking=True) for k, v in task.batch(step, d.rank, d.world_size).items()}
    lr = lr_at(
        step, lr=cfg.lr, warmup_steps=cfg.warmup_steps, total_steps=cfg.steps, min_lr_ratio=cfg.min_lr_ratio
    )
    for g in opt.param_groups:
        g["lr"] = lr * (cfg.grown_lr_scale if g.get("grown") else 1.0)
    net.train()
    with amp:
        loss, metrics = task.loss(net, batch)
    if not torch.isfinite(loss):
        raise ReverieError(
            f"loss became {loss.item()} at step {step}; lower lr (now {cfg.lr}) or use --set precision=fp32"
        )
    opt.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
    opt.step()
    ema.update(model, step)
    return loss, metrics, grad_norm, lr


def _train(
    task: Task, cfg: TrainConfig, out: Path, resume: bool, d: distributed.Dist, budget: Budget
) -> Path:
    threads = cfg.threads or max(1, usable_cpus() // d.local_world_size)
    torch.set_num_threads(threads)
    _check_out(out, resume, d)

    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = task.build_model().to(d.device)
    adversary = getattr(task, "adversary", None)
    if adversary is not None:
        if d.world_size > 1:  # its steps are not synchronised across processes
            raise ReverieError(
                "the adversarial term (flow.adv_weight or loss.adv_weight > 0) trains in one process only"
            )
        adversary.critic.to(d.device)
    ema = EMA(model, cfg.ema_decay)
    opt = _optimizer(model, cfg, tuple(getattr(task, "grown", ())))
    step, prev = 0, dict[str, Any]()
    if resume:
        step, prev = _resume(out, task, model, ema, opt)
    net: nn.Module = model
    if d.world_size > 1:
        # A step may leave parameters out of the loss (the dynamics model's box-action null embedding
        # is never used with discrete actions), which DDP's default takes for a hung reduction and
        # refuses at the next step; finding them costs one graph walk a step, nothing at these sizes.
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[d.device] if d.device.type == "cuda" else None, find_unused_parameters=True
        )

    log_path = out / LOG_FILE
    writer = _open_log(out, step, resume) if d.is_main else None
    frames_per_step = task.frames_per_batch() * d.world_size
    amp = torch.autocast(d.device.type, dtype=torch.bfloat16, enabled=uses_bf16(cfg.precision, d.device))
    metrics_eval: dict[str, float] = dict(prev.get("metrics", {}))

    from tqdm import tqdm

    tally = _Tally(
        elapsed0=float(prev.get("elapsed_s", 0.0)),
        cpu0=float(prev.get("cpu_s", 0.0)),
        frames0=int(prev.get("frames", 0)),
        step0=step,
        frames_per_step=frames_per_step,
    )
    last_save, rate = tally.t_start, 0.0
    if budget.limited and d.is_main:
        # What the last step is followed by, timed now (the run's starting samples and metrics), so
        # training stops early enough for it to fit the budget.
        def final_work() -> None:
            _log_samples(task, ema.model, writer, amp, step)
            _evaluate(task, ema.model, writer, amp, step, d, metrics_eval)

        budget.measure_final(final_work)
        print(f"reverie: {budget.plan()}", flush=True)
    bar = tqdm(total=cfg.steps, initial=step, disable=not d.is_main, unit="step", dynamic_ncols=True)
    with _StopSignal() as sig:
        while step < cfg.steps:
            t0 = time.perf_counter()
            loss, metrics, grad_norm, lr = _train_step(task, cfg, net, model, ema, opt, amp, step, d)
            step += 1

            dt = time.perf_counter() - t0
            rate = frames_per_step / dt if rate == 0 else 0.9 * rate + 0.1 * frames_per_step / dt
            now = time.monotonic()
            due = now - last_save >= cfg.checkpoint_minutes * 60
            stop, save_now = distributed.any_flag([sig.flag or budget.over(), due], d)

            if d.is_main:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4f}", fps=f"{rate:.0f}", refresh=False)
                if step % cfg.log_every == 0 or step == cfg.steps or stop:
                    row = {
                        "step": step,
                        "loss": loss.item(),
                        "lr": lr,
                        "grad_norm": grad_norm,
                        "frames_per_s": rate,
                    }
                    assert writer is not None
                    _log_step(log_path, writer, row | {k: v for k, v in metrics.items() if math.isfinite(v)})
                if step % cfg.sample_every == 0 and not stop and step < cfg.steps:
                    # the last step's samples come with the final evaluation
                    _log_samples(task, ema.model, writer, amp, step)
            if stop:
                break
            if save_now:
                metrics_eval = _evaluate(task, ema.model, writer, amp, step, d, metrics_eval)
                _save(out, task, cfg, d, step, model, ema, opt, metrics_eval, tally)
                last_save = time.monotonic()
    bar.close()
    # The work after the last step has its own bar: samples, then held-out evaluation and the save.
    final = tqdm(total=2, desc="final samples and evaluation", disable=not d.is_main, unit="part")
    _log_samples(task, ema.model, writer, amp, step)
    final.update(1)
    metrics_eval = _evaluate(task, ema.model, writer, amp, step, d, metrics_eval)
    _save(out, task, cfg, d, step, model, ema, opt, metrics_eval, tally)
    final.update(1)
    final.close()
    if writer is not None:
        writer.close()
    if d.is_main:
        why = "signal" if sig.flag else ("time budget" if step < cfg.steps else "done")
        print(f"saved {out} at step {step} ({why})", flush=True)
    return out
