"""`reverie eval`: measure a world model against the real world on held-out seeds."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from reverie.cli.apps import app


@app.command("eval")
def eval_cmd(
    model: str | None = typer.Option(None, "--model", help="Dynamics run directory to evaluate."),
    world: str | None = typer.Option(None, "--world", help="World id (default: the model's world)."),
    size: str | None = typer.Option(None, "--size", help="Frame size WIDTHxHEIGHT (default: the model's)."),
    episodes: int = typer.Option(16, "--episodes", min=1, help="Held-out episodes to score."),
    seed: int = typer.Option(1_000_000, "--seed", help="First held-out seed; episode i uses seed + i."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON line."),
    report: str | None = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
    quick: bool = typer.Option(False, "--quick", help="About a minute: fewer episodes, short drift rollout."),
    allow_overlap: bool = typer.Option(
        False, "--allow-overlap", help="Allow seeds the model was trained on."
    ),
    predictor: str = typer.Option(
        "model", "--predictor", help="model | simulator (a perfect model: checks the harness) | copy-last."
    ),
    steps: int = typer.Option(2, "--steps", min=1, max=8, help="Sampling steps per generated frame."),
    speed: bool = typer.Option(
        False, "--speed", help="Also time the engine (`reverie bench engine --model`)."
    ),
    compare: tuple[str, str] | None = typer.Option(
        None, "--compare", help="Compare two results: --compare A.json B.json (no evaluation is run)."
    ),
) -> None:
    """Score a world model on held-out seeds: PSNR/SSIM, rollout PSNR@k vs copy-last, dtPSNR@16,
    action accuracy, drift (DESIGN.md "Measures").

    Example:  reverie eval --model runs/out/dit --episodes 16 --seed 1000000 --json --report report.html
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
    extra: dict[str, Any] = {}
    if speed and model is not None:
        extra["fps"] = _engine_fps(model, steps, frames=200 if quick else 1000)
    cfg = EvalConfig(
        model=model, world=world, size=size, predictor=predictor, episodes=episodes, seed=seed, steps=steps,
        allow_overlap=allow_overlap, quick=quick, extra=extra,
    )  # fmt: skip
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


def _engine_fps(model: str, steps: int, frames: int) -> float | None:
    """Frames per second from the engine bench; None (with a note) when it cannot run here."""
    import contextlib
    import io

    try:
        from reverie.cli.play import bench_engine_cmd

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            bench_engine_cmd(
                world="reverie/Dungeon-v0", frames=frames, sessions=1, size="64x64", quality=85, seed=0,
                as_json=True, model=model, steps=steps, threads=0,
            )  # fmt: skip
        return float(json.loads(out.getvalue().strip().splitlines()[-1])["fps"])
    except Exception as e:  # the engine is optional for eval: report speed as unknown, keep the rest
        print(f"note: engine bench failed ({e}); fps left null", file=sys.stderr)
        return None


# `eval` is a single command (its options score a whole model), so text adherence is its own
# command rather than a subcommand `eval text`.
@app.command("eval-text")
def eval_text_cmd(
    model: str = typer.Option(..., "--model", help="Dynamics run directory (a reverie/Dungeon-v0 model)."),
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
