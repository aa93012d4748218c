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
