"""`reverie train autoencoder`, `reverie train dynamics`, `reverie bench train`.

Several processes run the same code through torchrun:
    torchrun --nproc_per_node=2 --no-python reverie train autoencoder --data D --out RUN
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from reverie.cli.apps import app, bench_app, train_app
from reverie.cli.settings_help import DEFAULT_PRESET, settings_table, train_settings, with_settings
from reverie.train.prediction_bank import BANK_WINDOWS

_MINUTES = typer.Option(
    None,
    "--minutes",
    help="Wall-clock budget for the whole command (reading and encoding the data, training, final "
    "samples and evaluation): training stops early enough that all of it fits, then saves.",
)
_RESUME = typer.Option(False, "--resume", help="Continue the run in --out exactly where it stopped.")
_CONFIG = typer.Option(None, "--config", help="YAML file of train settings (and a `model:` mapping).")
_SET = typer.Option(
    None, "--set", help="Override a setting, KEY=VALUE (repeatable), e.g. lr=3e-4 or model.latent_channels=8."
)
_STEPS = typer.Option(None, "--steps", help="Total optimizer steps (the learning-rate schedule spans them).")


def _train_config(out: Path, resume: bool, config: str | None, sets: list[str] | None, minutes, steps):
    """(TrainConfig, model overrides, saved run config or None). A resumed run starts from its saved settings."""
    from reverie.checkpoint import has_run, load_run
    from reverie.train.config import TrainConfig, resolve
    from reverie.typed_config import apply_overrides

    saved: dict[str, Any] | None = None
    base = TrainConfig()
    if resume and has_run(out):
        saved, _ = load_run(out)
        base = apply_overrides(base, saved["train"], "saved train config")
    cli = list(sets or [])
    if minutes is not None:
        cli.append(f"minutes={minutes}")
    if steps is not None:
        cli.append(f"steps={steps}")
    cfg, model_overrides = resolve(config, cli, base)
    return cfg, model_overrides, saved


def _refuse_other_sections(overrides: dict[str, Any], command: str, accepted: str) -> None:
    """Section keys left after a command took its own (`loss.*` given to dynamics, say) are an error
    that names the command's sections, not an unknown model key."""
    from reverie.errors import ReverieError

    other = sorted(k for k in overrides if "." in k)
    if other:
        raise ReverieError(
            f"{', '.join(other)}: not a setting of `reverie train {command}`, which takes {accepted} "
            "(every key is listed in --help)"
        )


def _budget(cfg: Any, start: Any) -> Any:
    from reverie.train.budget import Budget

    return Budget(cfg.minutes, cfg.cpu_minutes, start)


def _autoencoder_settings() -> str:
    from reverie.models.autoencoder import preset_config
    from reverie.train.autoencoder_task import AutoencoderLossConfig

    title = f"Model settings (--set model.KEY=VALUE; the {DEFAULT_PRESET} preset's values):"
    loss = "Objective (--set loss.KEY=VALUE; see reverie/train/autoencoder_task.py):"
    return "\n\n".join([
        settings_table(title, preset_config(DEFAULT_PRESET), "model."),
        settings_table(loss, AutoencoderLossConfig(), "loss."),
    ])  # fmt: skip


@train_app.command("autoencoder", cls=with_settings(train_settings, _autoencoder_settings))
def train_autoencoder_cmd(
    data: str = typer.Option(..., "--data", "-d", help="Episode store to train on (reverie record ...)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory for checkpoints and logs."),
    preset: str = typer.Option(
        None, "--preset", help="tiny | small | base (default small; a resume keeps its own)."
    ),
    minutes: float = _MINUTES,
    steps: int = _STEPS,
    resume: bool = _RESUME,
    config: str = _CONFIG,
    sets: list[str] = _SET,
    init: str | None = typer.Option(
        None, "--init", help="Start from this autoencoder run's weights (a fine-tune; its preset is kept)."
    ),
    freeze_encoder: bool = typer.Option(
        False,
        "--freeze-encoder",
        help="With --init: train only the decoder, so the latents (and any "
        "dynamics model trained on them) stay exactly as they were.",
    ),
    tune_to: str | None = typer.Option(
        None,
        "--tune-to",
        help="A dynamics run or model package ('default': the shipped one): tune the decoder to that "
        "model's own predicted latents (encoder frozen; --init defaults to the model's autoencoder).",
    ),
    tune_windows: int = typer.Option(
        BANK_WINDOWS, "--tune-windows", help="With --tune-to: real context windows the model predicts from."
    ),
    allow_config_change: bool = typer.Option(
        False,
        "--allow-config-change",
        help="With --resume: go on although the objective (loss.*) differs from the saved run's.",
    ),
) -> None:
    """Train the frame autoencoder on single frames of an episode store.

    Example:  reverie train autoencoder --data runs/out/dungeon --preset small --out runs/out/ae --minutes 10
    Example:  reverie train autoencoder --data runs/out/dungeon --init runs/out/ae --freeze-encoder --out runs/out/ae_sharp
    Example:  reverie train autoencoder --data runs/out/dungeon --tune-to default --out runs/out/ae_tuned
    Example:  reverie train autoencoder --data runs/out/dungeon --tune-to default --out runs/out/ae_sharp --set loss.adv_weight=0.1 --set loss.bank_horizon=16
    """
    from reverie.train.budget import Start

    start = Start.now()  # the budget counts from here: loading the frames is part of the command
    from dataclasses import asdict

    from reverie.errors import ReverieError
    from reverie.models.autoencoder import AutoencoderConfig, preset_config
    from reverie.train.autoencoder_task import AutoencoderLossConfig, AutoencoderTask, load_init
    from reverie.train.config import split_section
    from reverie.train.loop import train
    from reverie.typed_config import apply_overrides, config_changes

    cfg, model_overrides, saved = _train_config(out, resume, config, sets, minutes, steps)
    loss_sets, model_overrides = split_section(model_overrides, "loss")
    _refuse_other_sections(
        model_overrides, "autoencoder", "model.* and loss.* keys and the training settings"
    )
    saved_loss = saved.get("loss") if saved else None
    base_loss = AutoencoderLossConfig.from_dict(saved_loss) if saved_loss else AutoencoderLossConfig()
    loss_cfg = apply_overrides(base_loss, loss_sets, "loss")
    if saved is not None and not allow_config_change:
        # a run saved before its objective was typed had the defaults: read it as them
        changed = config_changes(asdict(base_loss), asdict(loss_cfg))
        if changed:
            raise ReverieError(
                f"cannot resume {out}: its objective would change ({'; '.join('loss.' + c for c in changed)}); "
                "pass --allow-config-change to go on with the new one, or use a new --out"
            )
    if saved is not None:  # a resume tunes to the model it was tuning to
        tuned = saved.get("data", {}).get("tuned_to") or {}
        tune_to, tune_windows = tune_to or tuned.get("model"), tuned.get("windows", tune_windows)
    if tune_to is not None:
        from reverie.train.prediction_bank import tuned_autoencoder

        init, freeze_encoder = tuned_autoencoder(tune_to, init), True
    if freeze_encoder and not init:
        raise ReverieError("--freeze-encoder needs --init RUN (the autoencoder whose encoder to keep)")
    if init and preset:
        raise ReverieError("--init keeps the preset of the run it starts from; drop --preset")
    if saved is not None and preset is None:
        model_cfg = apply_overrides(AutoencoderConfig.from_dict(saved["model"]), model_overrides, "model")
    elif init:
        model_cfg = apply_overrides(load_init(init)[0], model_overrides, "model")
    else:
        model_cfg = preset_config(preset or DEFAULT_PRESET, model_overrides)
    task = AutoencoderTask.from_store(
        data, model_cfg, cfg, init=init, freeze_encoder=freeze_encoder, tune_to=tune_to,
        tune_windows=tune_windows, loss_cfg=loss_cfg,
    )  # fmt: skip
    train(task, cfg, out, resume=resume, budget=_budget(cfg, start))


def _dynamics_settings() -> str:
    from reverie.models.dynamics import dynamics_preset
    from reverie.models.flow import FlowConfig
    from reverie.train.dynamics_task import DynamicsTask

    dit = f"Model settings (--set model.KEY=VALUE; the DiT's {DEFAULT_PRESET} preset's values):"
    flow = "Objective (--set flow.KEY=VALUE; see reverie/models/flow.py):"
    play = "Play settings saved with the run (--set sampler.KEY=VALUE):"
    return "\n\n".join([
        settings_table(dit, dynamics_preset(DEFAULT_PRESET), "model."),
        settings_table(flow, FlowConfig(), "flow."),
        settings_table(play, DynamicsTask.default_play(FlowConfig()), "sampler."),
    ])  # fmt: skip


@train_app.command("dynamics", cls=with_settings(train_settings, _dynamics_settings))
def train_dynamics_cmd(
    data: str = typer.Option(..., "--data", "-d", help="Episode store to train on."),
    autoencoder: str = typer.Option(
        ..., "--autoencoder", "-a", help="Run directory of a trained autoencoder."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory for checkpoints and logs."),
    preset: str = typer.Option(
        None,
        "--preset",
        help="Dynamics preset: tiny | small | base | large; default small, a resume keeps its own.",
    ),
    window: int = typer.Option(
        None, "--window", help="Frames per training window (default: preset context + 1)."
    ),
    text_encoder: str = typer.Option(None, "--text-encoder", help="hash (default) | minilm."),
    minutes: float = _MINUTES,
    steps: int = _STEPS,
    resume: bool = _RESUME,
    config: str = _CONFIG,
    sets: list[str] = _SET,
    init: str | None = typer.Option(
        None,
        "--init",
        help="Start from this dynamics run's (or model package's, or 'default') weights: a fine-tune "
        "that keeps its model config; the objective and play settings are this run's own. It may grow: "
        "--set model.depth=N (a multiple of its depth) puts new blocks, each starting as the identity, "
        "after each of its own (--set grown_lr_scale=K trains them at K times the rate).",
    ),
    actions: str | None = typer.Option(
        None,
        "--actions",
        help="Which actions condition the model: recorded (those recorded with the frames) or the name "
        "of an action stream written later, e.g. latent (`reverie data label-actions`). Default: "
        "recorded; a resumed run keeps its own.",
    ),
    allow_config_change: bool = typer.Option(
        False,
        "--allow-config-change",
        help="With --resume: go on although the objective (flow.*) or play settings (sampler.*) differ "
        "from the saved run's.",
    ),
) -> None:
    """Train the action- and text-conditioned dynamics model on autoencoder latents.

    The objective is set with --set flow.KEY=VALUE, the play settings saved with the run with
    --set sampler.KEY=VALUE; every key and its default is listed below.

    Example:  reverie train dynamics --data runs/out/dungeon --autoencoder runs/out/ae --preset small --out runs/out/dit
    Example:  reverie train dynamics --data D --autoencoder A --init default --out runs/out/ft --set flow.context_noise_max=0.5
    Example:  reverie train dynamics --data runs/out/clips --autoencoder A --actions latent --out runs/out/dit
    """
    from reverie.train.budget import Start

    start = Start.now()  # the budget counts from here: encoding the data is part of the command
    from dataclasses import asdict

    from reverie.errors import ReverieError
    from reverie.models.dynamics import dynamics_config, dynamics_preset
    from reverie.models.flow import FlowConfig
    from reverie.models.sampler import SamplerConfig
    from reverie.train.config import split_section
    from reverie.train.distributed import resolve_device
    from reverie.train.dynamics_task import DynamicsTask, load_init
    from reverie.train.loop import train
    from reverie.typed_config import apply_overrides, config_changes

    cfg, model_overrides, saved = _train_config(out, resume, config, sets, minutes, steps)
    flow_sets, model_overrides = split_section(model_overrides, "flow")
    sampler_sets, model_overrides = split_section(model_overrides, "sampler")
    _refuse_other_sections(
        model_overrides, "dynamics", "model.*, flow.* and sampler.* keys and the training settings"
    )
    saved_flow = saved.get("flow") if saved else None
    saved_sampler = saved.get("sampler") if saved else None
    flow = apply_overrides(
        FlowConfig.from_dict(saved_flow) if saved_flow else FlowConfig(), flow_sets, "flow"
    )
    play = apply_overrides(
        SamplerConfig(**saved_sampler) if saved_sampler else DynamicsTask.default_play(flow),
        sampler_sets,
        "sampler",
    )
    if saved is not None and not allow_config_change:
        changed = [
            f"{name}.{change}"
            # saved sections are read through their typed configs, so a key added since the run was
            # saved counts as its default, not as a change
            for name, old, new in (
                ("flow", asdict(FlowConfig.from_dict(saved_flow)) if saved_flow else None, asdict(flow)),
                ("sampler", asdict(SamplerConfig(**saved_sampler)) if saved_sampler else None, asdict(play)),
            )
            for change in config_changes(old, new)
        ]
        if changed:
            raise ReverieError(
                f"cannot resume {out}: its objective or play settings would change ({'; '.join(changed)}); "
                "pass --allow-config-change to go on with the new ones, or use a new --out"
            )
    if init is not None:
        if saved is not None:
            raise ReverieError("--init starts a new run; drop it to --resume")
        if preset is not None or set(model_overrides) - {"blur_input", "depth"}:
            raise ReverieError(
                "--init keeps the model config of the run it starts from; drop --preset and model.* "
                "(only model.blur_input=true may be added, and model.depth raised to a multiple of its own)"
            )
        init_cfg = load_init(init)[0]
        model_overrides = asdict(init_cfg) | model_overrides  # grown parts start as the identity
        window = window or init_cfg.max_context + 1
        text_encoder = text_encoder or init_cfg.text_encoder
    if saved is not None:  # a resumed run keeps the action stream it was trained on
        own = saved.get("data", {}).get("actions", "recorded")
        if actions is not None and actions != own:
            raise ReverieError(f"{out} was trained on the actions {own!r}, not {actions!r}: resume it with "
                               f"--actions {own} (or leave --actions out), or start a new run")  # fmt: skip
        actions = own
    actions = actions or "recorded"
    if saved is not None and preset is None:
        # a resumed run rebuilds exactly its saved model config (plus any model.* overrides)
        typed = apply_overrides(dynamics_config(saved["model"]), model_overrides, "model")
        overrides = asdict(typed)
        window = window or typed.max_context + 1
        text_encoder = text_encoder or typed.text_encoder
    else:
        typed = apply_overrides(dynamics_preset(preset or DEFAULT_PRESET), model_overrides, "model")
        overrides = {k: getattr(typed, k) for k in model_overrides}
    task = DynamicsTask(
        data,
        autoencoder,
        preset or DEFAULT_PRESET,
        cfg.seed,
        window,
        text_encoder or "hash",
        batch_size=cfg.batch_size,
        model_overrides=overrides,
        val_fraction=cfg.val_fraction,
        flow=flow,
        play=play,
        init=init,
        device=resolve_device(cfg.device),  # encoding the frames is most of a GPU run's start
        actions=actions,
    )
    for key in ("init", "grown_blocks"):  # a resumed fine-tune keeps its origin and what it grew
        if saved is not None and saved.get("data", {}).get(key):
            task.data_info[key] = saved["data"][key]
    train(task, cfg, out, resume=resume, budget=_budget(cfg, start))


@bench_app.command("train")
def bench_train_cmd(
    kind: list[str] = typer.Option(None, "--kind", help="autoencoder | dynamics (repeatable); default both."),
    preset: list[str] = typer.Option(
        None, "--preset", help="Presets to time (repeatable); default tiny, small."
    ),
    batch_size: int = typer.Option(32, "--batch-size", help="Autoencoder frames per step."),
    windows: int = typer.Option(
        8, "--windows", help="Dynamics windows per step (each of the preset's length)."
    ),
    steps: int = typer.Option(5, help="Steps timed after 2 warm-up steps (median reported)."),
    size: str = typer.Option("64x64", help="Frame size WIDTHxHEIGHT."),
    precision: str = typer.Option("auto", help="auto (bf16 where the CPU does bf16 math) | bf16 | fp32."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per (kind, preset)."),
) -> None:
    """Training frames per second of each model kind and preset on synthetic data.

    Example:  reverie bench train --json
    """
    from reverie.errors import ReverieError
    from reverie.sizes import parse_size
    from reverie.train.bench import bench_train, presets

    s = parse_size(size)
    for k in kind or ["autoencoder", "dynamics"]:
        if k not in ("autoencoder", "dynamics"):
            raise ReverieError(f"unknown --kind {k!r}; accepted: autoencoder, dynamics")
        for p in preset or ["tiny", "small"]:
            if p not in presets(k):
                continue
            result = bench_train(
                k,
                p,
                batch_size=batch_size if k == "autoencoder" else windows,
                steps=steps,
                size=(s.width, s.height),
                precision=precision,
            )
            if result is None:
                continue
            if as_json:
                print(json.dumps(result), flush=True)
            else:
                typer.echo(
                    f"{k:12s} {p:6s} {result['frames_per_s']:10.1f} frames/s  ({result['step_ms']} ms/step)"
                )


@bench_app.command("autoencoder")
def bench_autoencoder_cmd(
    preset: list[str] = typer.Option(
        None, "--preset", help="Presets to time (repeatable); default tiny, small."
    ),
    precision: list[str] = typer.Option(None, "--precision", help="bf16 | fp32 (repeatable); default both."),
    size: str = typer.Option("64x64", help="Frame size WIDTHxHEIGHT."),
    frames: int = typer.Option(200, help="Frames timed after 20 warm-up frames."),
    threads: int = typer.Option(2, help="torch threads (the play budget assumes 2 cores)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per (preset, precision)."),
) -> None:
    """Milliseconds to encode and decode one frame with the frame autoencoder (untrained weights).

    Example:  reverie bench autoencoder --json
    """
    import torch

    from reverie.errors import ReverieError
    from reverie.models.autoencoder import PRESETS
    from reverie.sizes import parse_size
    from reverie.train.bench import bench_codec

    torch.set_num_threads(threads)
    s = parse_size(size)
    for p in preset or ["tiny", "small"]:
        if p not in PRESETS:
            raise ReverieError(f"unknown autoencoder preset {p!r}; accepted: {', '.join(PRESETS)}")
        for prec in precision or ["bf16", "fp32"]:
            if prec not in ("bf16", "fp32"):
                raise ReverieError(f"unknown precision {prec!r}; accepted: bf16, fp32")
            r = bench_codec(p, size=(s.width, s.height), precision=prec, frames=frames)
            if as_json:
                print(json.dumps(r), flush=True)
            else:
                typer.echo(f"{p:6s} {prec:5s} encode+decode {r['encode_decode_ms_p50']:.2f} ms/frame (p50)")


@app.command("export")
def export_cmd(
    run: str = typer.Argument(..., help="Dynamics run directory (made by `reverie train dynamics`)."),
    out: str = typer.Option(..., "--out", "-o", help="Directory to write the packaged model to."),
    autoencoder: str | None = typer.Option(
        None, "--autoencoder", help="Ship this decoder fine-tune (--freeze-encoder) of the run's autoencoder."
    ),
    precision: str = typer.Option("bf16", "--precision", help="Weight type: bf16 (half the size) or fp32."),
    notes: str | None = typer.Option(None, "--notes", help="Markdown file appended to the model card."),
    measured: str | None = typer.Option(
        None, "--measured", help="JSON lines from `reverie eval/bench --json`, written into the model card."
    ),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
    steps: int | None = typer.Option(
        None, "--steps", min=1, max=8, help="Play setting shipped with the model: sampler steps per frame."
    ),
    context_noise: float | None = typer.Option(
        None, "--context-noise", min=0.0, max=0.99, help="Play setting shipped with the model: context noise."
    ),
    context_blur: float | None = typer.Option(
        None,
        "--context-blur",
        min=0.0,
        max=1.0,
        help="Play setting shipped with the model: the blur level its own frames are told in its context, "
        "given frames 0 (models trained with --set model.blur_input=true).",
    ),
    guidance: float | None = typer.Option(
        None,
        "--guidance",
        min=0.0,
        max=8.0,
        help="Play setting shipped with the model: classifier-free guidance scale (1 = none; each "
        "session then runs a second, unconditioned copy: about twice the frame cost).",
    ),
    guide: str | None = typer.Option(
        None,
        "--guide",
        help="Play setting shipped with the model: what --guidance pushes towards: text | action | both.",
    ),
) -> None:
    """Package a world model to share or ship: dynamics + autoencoder weights, configs, model card.

    The directory plays anywhere: `reverie play --model DIR`. No optimizer state is copied.

    Example:  reverie export runs/out/dit --out my_model --measured runs/out/measured.jsonl
    """
    from reverie.train.export import export_model

    settings = (("steps", steps), ("context_noise", context_noise), ("context_blur", context_blur),
                ("guidance", guidance), ("guide", guide))  # fmt: skip
    play = {k: v for k, v in settings if v is not None}
    sizes = export_model(
        run, out, autoencoder=autoencoder, precision=precision, notes=notes, measured=measured, force=force,
        play=play,
    )  # fmt: skip
    mb = {k: round(v / 2**20, 2) for k, v in sizes.items()}
    typer.echo(f"exported {run} to {out}: weights {mb} MB ({precision})")
