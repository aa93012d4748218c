"""`reverie eval`: measure a world model against the real world on held-out seeds."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from reverie.cli.apps import app


@app.command("eval")
def eval_cmd(
    model: str | None = typer.Option(
        None, "--model", help="Dynamics run directory, or 'default' (the shipped model; the default)."
    ),
    world: str | None = typer.Option(None, "--world", help="World id (default: the model's world)."),
    size: str | None = typer.Option(None, "--size", help="Frame size WIDTHxHEIGHT (default: the model's)."),
    episodes: int = typer.Option(16, "--episodes", min=1, help="Held-out episodes to score."),
    seed: int = typer.Option(1_000_000, "--seed", help="First held-out seed; episode i uses seed + i."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON line."),
    report: str | None = typer.Option(
        None, "--report", help="Write a self-contained HTML report here (a missing folder is created)."
    ),
    quick: bool = typer.Option(
        False, "--quick", help="Under 90 s: 4 episodes, 2 random-action draws, a 5-second dream, brief IDM."
    ),
    allow_overlap: bool = typer.Option(
        False, "--allow-overlap", help="Allow seeds the model was trained on."
    ),
    predictor: str = typer.Option(
        "model", "--predictor", help="model | simulator (a perfect model: checks the harness) | copy-last."
    ),
    precision: str = typer.Option(
        "auto", "--precision", help="auto (as `reverie play`: bf16 where the CPU has it) | bf16 | fp32."
    ),
    steps: int | None = typer.Option(
        None, "--steps", min=1, max=8, help="Sampling steps per frame (default: the model's play setting)."
    ),
    context_noise: float | None = typer.Option(
        None, "--context-noise", min=0.0, max=0.99, help="Noise of context frames (default: the model's)."
    ),
    context_blur: float | None = typer.Option(
        None,
        "--context-blur",
        min=0.0,
        max=1.0,
        help="Blur level the model's own frames are told in its context (given frames are told 0), for models "
        "trained with a blur input (default: the model's).",
    ),
    start_caption: bool | None = typer.Option(
        None,
        "--start-caption/--no-start-caption",
        help="Give the model the world's caption of each real start as its text, as "
        "`reverie play --start-caption` does, or the null text. Default: as `reverie play` (off).",
        show_default=False,
    ),
    dream_sessions: int | None = typer.Option(
        None,
        "--dream-sessions",
        min=1,
        max=16,
        help="Player starts (seeds --seed, --seed + 1, ...) dreaming the 5 minutes side by side, pooled per "
        "minute, each start's own FD / floor listed beside: one path is one draw of a noisy number. "
        "Default: the eval config's.",
        show_default=False,
    ),
    probe: bool = typer.Option(
        False,
        "--probe",
        help="Only the action probe: write its picture to --out (PNG) and print its numbers.",
    ),
    out: str | None = typer.Option(None, "--out", help="With --probe: the PNG to write."),
    workers: int | None = typer.Option(
        None, "--workers", min=1, max=2, help="Processes (the 5-minute dream takes one); default: 2 if free."
    ),
    speed: bool = typer.Option(
        False, "--speed", help="Also time the engine (`reverie bench engine --model`)."
    ),
    compare: tuple[str, str] | None = typer.Option(
        None, "--compare", help="Compare two results: --compare A.json B.json (no evaluation is run)."
    ),
) -> None:
    """Score a world model at play settings on held-out seeds, as docs/measures.md defines:
    teacher-forced PSNR/SSIM; rollout PSNR@1/4/8/16/64 beside copy-last (identical real pairs left
    out, medians beside means); dtPSNR@4/8/16 over random-action draws with standard errors;
    inverse-dynamics accuracy with confusion matrices; sharpness against real frames and the
    autoencoder; the action probe (shift per step and noop drift against the simulator); and the
    player's start with no image followed by 5 minutes (9,000 frames) of dreaming, per minute against
    the real world and its own floor.

    Time on 2 cores: --quick about a minute; the full run is bound by the 9,000-frame dream, about
    9,000 x the model's time per frame (the shipped model: about 8 minutes), everything else runs
    beside it on the other core.

    Example:  reverie eval --model default --episodes 16 --seed 1000000 --json --report report.html
    """
    if compare is not None and all(compare):
        _compare(compare[0], compare[1], as_json)
        return
    from reverie.errors import ReverieError
    from reverie.eval.report import write_report
    from reverie.eval.run import PREDICTORS, EvalConfig, evaluate

    if predictor not in PREDICTORS:
        raise ReverieError(f"unknown --predictor {predictor!r}; accepted: {', '.join(PREDICTORS)}")
    if report is not None and not report.endswith((".html", ".htm")):
        raise ReverieError(f"--report {report!r} must name an .html file")
    if probe and (out is None or not out.lower().endswith(".png")):
        raise ReverieError(f"--probe writes a picture: give --out NAME.png (got {out!r})")
    if predictor == "model" and model is None:
        model = "default"  # the shipped model, as `reverie play` plays it
    extra: dict[str, Any] = {}
    cfg = EvalConfig(
        model=model, world=world, size=size, predictor=predictor, episodes=episodes, seed=seed,
        precision=precision, steps=steps, context_noise=context_noise, context_blur=context_blur, workers=workers,
        allow_overlap=allow_overlap, quick=quick, extra=extra,
        start_caption=EvalConfig.start_caption if start_caption is None else start_caption,
        drift_sessions=EvalConfig.drift_sessions if dream_sessions is None else dream_sessions,
    )  # fmt: skip
    if probe:
        _probe(cfg, out or "", as_json)
        return
    if speed and model is not None:
        extra["fps"] = _engine_fps(model, steps, frames=200 if quick else 1000)
    result, art = evaluate(cfg)
    if report is not None:
        write_report(report, result, art)
    if as_json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            typer.echo(f"{k:>20}: {v}")
        if report is not None:
            typer.echo(f"{'report':>20}: {report}")


def _probe(cfg: Any, out: str, as_json: bool) -> None:
    import io

    from PIL import Image

    from reverie.errors import ReverieError
    from reverie.eval.probe import probe_picture
    from reverie.eval.report import write_atomic
    from reverie.eval.run import run_probe

    result = run_probe(cfg)
    if result is None:
        raise ReverieError("this world has no actions: there is nothing to probe")
    buf = io.BytesIO()
    Image.fromarray(probe_picture(result)).save(buf, format="PNG")
    write_atomic(out, buf.getvalue())
    if as_json:
        print(json.dumps({**result.fields, "picture": out}))
        return
    typer.echo(f"{'branch':<16}{'shift px':>10}{'world':>10}{'change':>10}{'world':>10}")
    for name, r in result.fields["branches"].items():
        typer.echo(
            f"{name:<16}{r['shift_px']:>10.2f}{r['shift_px_world']:>10.2f}{r['change']:>10.2f}"
            f"{r['change_world']:>10.2f}"
        )
    typer.echo(f"picture: {out}")


def _compare(a_path: str, b_path: str, as_json: bool) -> None:
    from reverie.eval.report import compare, load_result

    rows = compare(load_result(a_path), load_result(b_path))
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    typer.echo(f"{'measure':<28}{'A':>14}{'B':>14}{'B - A':>12}")
    for r in rows:
        typer.echo(f"{r['measure']:<28}{_num(r['a']):>14}{_num(r['b']):>14}{_num(r['delta']):>12}")


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, int | float) else ("n/a" if v is None else str(v))


def _engine_fps(model: str, steps: int | None, frames: int) -> float | None:
    """Frames per second from the engine bench; None (with a note) when it cannot run here."""
    try:
        from reverie.engine.bench import bench_engine

        return float(bench_engine(model, frames=frames, steps=steps)["fps"])
    except Exception as e:  # the engine is optional for eval: report speed as unknown, keep the rest
        print(f"note: engine bench failed ({e}); fps left null", file=sys.stderr)
        return None


# `eval` is a single command (its options score a whole model), so text adherence is its own
# command rather than a subcommand `eval text`.
@app.command("eval-text")
def eval_text_cmd(
    model: str = typer.Option(
        "default",
        "--model",
        help="Dynamics run directory (a reverie/Dungeon-v0 model); default: the shipped one.",
    ),
    prompts: int = typer.Option(32, "--prompts", min=2, help="Held-out prompts (each also paraphrased)."),
    frames: int = typer.Option(8, "--frames", min=1, help="Frames generated per prompt."),
    seed: int = typer.Option(
        3_000_000, "--seed", help="First seed: classifier dungeons from here, prompt dungeons from +100000."
    ),
    steps: int = typer.Option(2, "--steps", min=1, max=8, help="Sampling steps per generated frame."),
    guidance: float = typer.Option(1.0, "--guidance", help="Classifier-free text guidance (1 = none)."),
    classifier_seeds: int = typer.Option(
        32, "--classifier-seeds", min=1, help="Real dungeons the judge learns from (~15 regions each)."
    ),
    classifier_steps: int = typer.Option(
        400, "--classifier-steps", min=1, help="Training steps of the judge."
    ),
    allow_overlap: bool = typer.Option(
        False, "--allow-overlap", help="Allow prompt seeds the model was trained on (or an unknown dataset)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON line."),
) -> None:
    """Text adherence: an attribute classifier trained on real frames judges whether videos generated
    from held-out captions, and from paraphrases of them, show the wall material, colour, light and
    kind they ask for; with the null prompt as baseline, chance and the classifier's real-frame ceiling.

    Example:  reverie eval-text --model runs/out/default_dit --prompts 32 --frames 8 --json
    """
    from reverie.eval.attributes import ClassifierConfig
    from reverie.eval.text_adherence import TextAdherenceConfig, evaluate_text

    cfg = TextAdherenceConfig(
        model=model, prompts=prompts, frames=frames, seed=seed, steps=steps, guidance=guidance,
        classifier_seeds=classifier_seeds, classifier=ClassifierConfig(steps=classifier_steps),
        allow_overlap=allow_overlap,
    )  # fmt: skip
    result = evaluate_text(cfg)
    if as_json:
        print(result.to_json())
        return
    typer.echo(f"{'':>22}" + "".join(f"{a:>10}" for a in [*result.attributes, "mean"]))
    for name in ("held_out", "paraphrase", "null_prompt", "chance_majority", "chance_uniform",
                 "ceiling_real_clips", "ceiling_real_frames"):  # fmt: skip
        row: dict[str, float] = getattr(result, name)
        err = f"  +- {row['mean_stderr']:.3f}" if "mean_stderr" in row else ""
        typer.echo(f"{name:>22}" + "".join(f"{row[k]:>10.3f}" for k in [*result.attributes, "mean"]) + err)
    for caption, para in result.examples:
        typer.echo(f"  caption: {caption}\n  paraphrase: {para}")
