"""`reverie train latent-actions`, `reverie data label-actions`, `reverie eval-actions`: play video
that has no recorded actions, by learning a discrete action per step from the frames themselves."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from reverie.cli.apps import app, data_app, train_app
from reverie.cli.settings_help import DEFAULT_PRESET, settings_table, train_settings, with_settings
from reverie.cli.train import _CONFIG, _MINUTES, _RESUME, _SET, _STEPS, _budget, _train_config


def _latent_action_settings() -> str:
    from reverie.models.latent_actions import latent_action_preset

    title = f"Model settings (--set model.KEY=VALUE; the {DEFAULT_PRESET} preset's values):"
    return settings_table(title, latent_action_preset(DEFAULT_PRESET), "model.")


@train_app.command("latent-actions", cls=with_settings(train_settings, _latent_action_settings))
def train_latent_actions_cmd(
    data: str = typer.Option(..., "--data", "-d", help="Episode store to learn from (frames only)."),
    autoencoder: str = typer.Option(
        ..., "--autoencoder", "-a", help="Autoencoder run whose latents the model reads."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory for checkpoints and logs."),
    preset: str = typer.Option(
        None, "--preset", help="tiny | small (default small; a resume keeps its own)."
    ),
    minutes: float = _MINUTES,
    steps: int = _STEPS,
    resume: bool = _RESUME,
    config: str = _CONFIG,
    sets: list[str] = _SET,
) -> None:
    """Learn a discrete action per step from frames alone (recorded actions are never used).

    Model settings with --set model.KEY=VALUE; every key and its default is listed below.

    Example:  reverie train latent-actions --data runs/out/clips --autoencoder runs/out/ae --out runs/out/lam --minutes 10
    """
    from reverie.train.budget import Start

    start = Start.now()
    from reverie.models.latent_actions import LatentActionConfig, latent_action_preset
    from reverie.train.latent_action_task import LatentActionTask
    from reverie.train.loop import train
    from reverie.typed_config import apply_overrides

    cfg, model_overrides, saved = _train_config(out, resume, config, sets, minutes, steps)
    if saved is not None and preset is None:
        model_cfg = apply_overrides(LatentActionConfig.from_dict(saved["model"]), model_overrides, "model")
    else:
        model_cfg = latent_action_preset(preset or DEFAULT_PRESET, model_overrides)
    task = LatentActionTask.from_store(
        data, autoencoder, model_cfg, seed=cfg.seed, batch_size=cfg.batch_size, val_fraction=cfg.val_fraction
    )
    train(task, cfg, out, resume=resume, budget=_budget(cfg, start))


@data_app.command("label-actions")
def label_actions_cmd(
    store: Path = typer.Argument(..., help="Episode store to label (its frames and recorded actions stay)."),
    model: str = typer.Option(..., "--model", "-m", help="Latent-action run (reverie train latent-actions)."),
    name: str = typer.Option("latent", "--name", help="Name of the action stream to write."),
    merge: bool = typer.Option(
        False,
        "--merge",
        help="Write each code as the recorded action it most often goes with (the keys fitted by "
        "`reverie eval-actions --save-keys`): one action per key, several codes merged into it.",
    ),
) -> None:
    """Write the latent action of every frame into the store as a new action stream.

    The stream sits beside the recorded actions (streams/NAME.npz), is written atomically (an interrupted
    labelling leaves the store as it was) and is what `reverie train dynamics --actions NAME` trains on.
    By default it holds one action per code; with --merge it speaks the recorded action space the run's
    keys were fitted on, so the usual keys play it.

    Example:  reverie data label-actions runs/out/clips --model runs/out/lam
    """
    from reverie.train.latent_action_task import label_store

    path, spec, counts = label_store(model, str(store), name, merge=merge)
    share = ", ".join(f"{n} {c / max(1, counts.sum()):.0%}" for n, c in zip(spec["names"], counts))
    typer.echo(f"wrote action stream {name!r} ({spec['n']} latent actions: {share}) to {path}")


@app.command("eval-actions")
def eval_actions_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Latent-action run (reverie train latent-actions)."),
    data: str = typer.Option(
        ..., "--data", "-d", help="Store with recorded discrete actions, e.g. held-out seeds of the world."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON line."),
    save_keys: bool = typer.Option(
        False,
        "--save-keys",
        help="Save the best one-to-one code -> action map in the run (action_map.json), so stores it "
        "labels name their actions after the recorded ones and play with the usual keys; the "
        "many-to-one map is saved beside it for `reverie data label-actions --merge`.",
    ),
) -> None:
    """How latent codes agree with recorded actions: accuracy after the best one-to-one and many-to-one
    maps, normalised mutual information, per-action recall, and on the view-changing actions.

    Example:  reverie eval-actions --model runs/out/lam --data runs/out/dungeon_heldout --json
    """
    from reverie.train.latent_action_task import evaluate_store

    result = evaluate_store(model, data, save_keys=save_keys)
    if as_json:
        print(json.dumps(result), flush=True)
        return
    typer.echo(
        f"{result['steps']} steps, {result['codes_used']} codes used: accuracy one-to-one "
        f"{result['accuracy_one_to_one']:.3f}, many-to-one {result['accuracy_many_to_one']:.3f} "
        f"(view-changing actions {result.get('accuracy_many_to_one_view', 0):.3f}), NMI {result['nmi']:.3f}"
    )
    for n, r in result["per_action"].items():
        typer.echo(f"  {n:>14s} {r:.3f}")
