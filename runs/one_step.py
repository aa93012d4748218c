"""What a model's one-step frame gets right, per action: teacher-forced PSNR and sharpness beside
copy-last, the autoencoder's reconstruction, and an oracle that shifts the previous frame sideways by
the best whole number of pixels (what a turn mostly is).

    python runs/one_step.py --model runs/out/longrun/control          # 8 held-out Dungeon episodes
    python runs/one_step.py --model default --episodes 16 --steps 4 --context-noise 0

Each position of each episode starts the model from the 8 real frames before it (as `reverie eval`'s
teacher-forced measure does) and compares its one generated frame with the real one. Prints one line
per action and a JSON line of everything.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from reverie.eval.measures import gradient_magnitude
from reverie.eval.metrics import psnr
from reverie.eval.rollout import ModelPredictor, collect_real

DUNGEON_ID = "reverie/Dungeon-v0"
CONTEXT = 8
MAX_SHIFT = 12  # pixels; a Dungeon turn moves the view ~6


def oracle_shift(prev: np.ndarray, real: np.ndarray) -> float:
    """PSNR of the best horizontal shift of `prev` (H, W, 3) against `real`; revealed columns repeat the edge."""
    best = -1.0
    for s in range(-MAX_SHIFT, MAX_SHIFT + 1):
        moved = np.roll(prev, s, axis=1)
        if s > 0:
            moved[:, :s] = prev[:, :1]
        elif s < 0:
            moved[:, s:] = prev[:, -1:]
        best = max(best, float(psnr(moved, real)))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default", help="run directory or 'default'")
    ap.add_argument("--episodes", type=int, default=8, help="held-out episodes from seed 1,000,000")
    ap.add_argument("--length", type=int, default=60, help="frames per episode")
    ap.add_argument("--every", type=int, default=2, help="a position every this many frames")
    ap.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model's)")
    ap.add_argument("--context-noise", type=float, default=None, help="default: the model's")
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = list(range(1_000_000, 1_000_000 + args.episodes))
    real = collect_real(DUNGEON_ID, "64x64", seeds, args.length, spare_seeds=[s + 100 for s in seeds])
    pred = ModelPredictor(args.model, args.steps, context_noise=args.context_noise)
    names = list(real.action_spec["names"])
    rows: list[tuple[int, float, float, float, float]] = []  # action, model, copy-last, autoencoder, oracle
    grads = np.zeros(3)  # gradient magnitude: generated, real, reconstructed
    for p in range(CONTEXT, args.length, args.every):
        pred.reset(real.obs[:, p - CONTEXT : p], real.act[:, p - CONTEXT : p], real.seeds)
        gen, want, prev = pred.step(real.act[:, p]), real.obs[:, p], real.obs[:, p - 1]
        rec = pred.wm.decode(pred.wm.encode(want))
        grads += [gradient_magnitude(x).mean() for x in (gen, want, rec)]
        for b in range(len(seeds)):
            scores = [psnr(x[b], want[b]) for x in (gen, prev, rec)]
            rows.append((int(real.act[b, p]), *map(float, scores), oracle_shift(prev[b], want[b])))
    table = np.array(rows)
    capped = np.minimum(table[:, 1:], 60.0)  # an unchanged frame scores the cap for copy-last
    cols = ("model", "copy", "ae", "shift")
    per_action: dict[str, dict[str, float]] = {}
    print(f"{'action':>14} {'pairs':>5} {'model':>6} {'copy':>6} {'AE':>6} {'shift':>6}  (dB)")
    for a, name in enumerate(names):
        m = table[:, 0] == a
        if m.any():
            means = capped[m].mean(0).round(2).tolist()
            per_action[name] = {"pairs": int(m.sum()), **dict(zip(cols, means, strict=True))}
            print(f"{name:>14} {int(m.sum()):5d} " + " ".join(f"{v:6.2f}" for v in means))
    every = capped.mean(0).round(2).tolist()
    sharp = {"model": round(grads[0] / grads[1], 3), "ae": round(grads[2] / grads[1], 3)}
    print(f"{'all':>14} {len(table):5d} " + " ".join(f"{v:6.2f}" for v in every))
    print(f"sharpness (of real): model {sharp['model']}, autoencoder {sharp['ae']}")
    out = {
        "model": args.model, "sampler": vars(pred.sampler), "per_action": per_action,
        "all": dict(zip(cols, every, strict=True)), "sharpness": sharp,
    }  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
