"""Several player starts dreamt for a minute side by side: what long play looks like, in one picture.

    .venv/bin/python runs/dream_sheet.py --model default --out dreams.png
    .venv/bin/python runs/dream_sheet.py --model runs/out/pkg --context-noise 0.1 --seconds 120

`reverie eval` dreams one session for 5 minutes; this runs B sessions (held-out seeds from 1,000,000,
the engine's own start from each, then the explore policy's actions, as the eval's dream) for a
shorter time, and prints brightness and saturation per 10 s beside the real episodes under the same
actions. The sheet has one row per session under a row of the first real episode, one column per
time in --at. A dream that keeps one colour cast whatever room it is in shows up here at a glance.
"""

from __future__ import annotations

import argparse

import numpy as np

from reverie.worlds import DUNGEON_ID


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="package or run directory, or 'default'")
    ap.add_argument("--out", default="dreams.png", help="the contact sheet (PNG)")
    ap.add_argument("--sessions", type=int, default=4, help="player starts (seeds 1,000,000 and up)")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each dream at 30 fps")
    ap.add_argument("--at", default="0 2 5 10 20 30 45 60", help="sheet columns, in seconds")
    ap.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model's)")
    ap.add_argument("--context-noise", type=float, default=None, help="(default: the model's)")
    args = ap.parse_args()

    from PIL import Image

    from reverie.engine.backends import START_WALK
    from reverie.eval.background import DriftJob, run_drift_job
    from reverie.eval.image_stats import brightness, saturation
    from reverie.eval.rollout import collect_real

    fps, W = 30, int(START_WALK)
    n = max(2, round(args.seconds * fps))
    seeds = list(range(1_000_000, 1_000_000 + args.sessions))
    real = collect_real(DUNGEON_ID, "64x64", seeds, n + W - 1, spare_seeds=[s + 100_000 for s in seeds])
    at = sorted({min(round(float(s) * fps), n - 1) for s in args.at.split()})
    job = DriftJob("model", args.model, "auto", args.steps, args.context_noise, DUNGEON_ID, "64x64", False,
                   real.seeds, real.obs[:, :W], real.act, at, threads=1)  # fmt: skip
    run = run_drift_job(job)
    R = real.obs[:, W - 1 :]  # (B, n, H, W, 3): frame 0 is the player's start
    seg = 10 * fps
    print("seconds   brightness dream / real   saturation dream / real")
    for s in range(0, n // seg * seg, seg):
        print(
            f"{s // fps:3d}-{(s + seg) // fps:3d}   {run.brightness[:, s : s + seg].mean():.3f} / "
            f"{brightness(R[:, s : s + seg]).mean():.3f}              {run.saturation[:, s : s + seg].mean():.3f} / "
            f"{saturation(R[:, s : s + seg]).mean():.3f}"
        )
    rows = [np.concatenate([R[0, i] for i in at], 1)]
    rows += [np.concatenate([run.sheet[i][b] for i in at], 1) for b in range(len(seeds))]
    sheet = np.concatenate(rows, 0)
    Image.fromarray(sheet).resize((sheet.shape[1] * 2, sheet.shape[0] * 2), Image.NEAREST).save(args.out)
    print(
        f"wrote {args.out}: columns at {[round(i / fps, 1) for i in at]} s; top row the real seed {seeds[0]}"
    )


if __name__ == "__main__":
    main()
