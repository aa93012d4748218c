"""Speed of one generated frame: the dynamics model stepping with a full KV cache.

python -m reverie.models.bench_dynamics --preset small --steps 1 2 4 --threads 2

Prints one JSON line per setting: p50/p90 milliseconds per frame (all sampling steps plus the pass
that appends the frame to the cache) after warm-up, with the cache already holding max_context frames.
Untrained weights cost the same as trained ones. Modes: "bf16" (weights cast once, what play uses),
"autocast" (fp32 weights, bf16 autocast entered per frame: pays a weight cast every frame), "fp32".
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from collections.abc import Iterator
from contextlib import nullcontext

import torch

from reverie.models.dit import DiT, preset
from reverie.models.sampler import Rollout, SamplerConfig

MODES = ("bf16", "autocast", "fp32")


def bench_dynamics(
    preset_name: str = "small",
    steps: tuple[int, ...] = (1, 2, 4),
    modes: tuple[str, ...] = ("bf16",),
    threads: int = 2,
    frames: int = 200,
    warmup: int = 20,
    batch: int = 1,
    latent: tuple[int, int, int] = (12, 8, 8),  # the 64x64 autoencoder's latents: 64 tokens per frame
) -> Iterator[dict]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = preset(preset_name, latent_channels=latent[0])
    base = DiT(cfg).eval()
    with torch.no_grad():  # adaLN-Zero starts at identity; random weights make every op do real work
        for p in base.parameters():
            p.add_(0.02 * torch.randn_like(p))
    for mode in modes:
        model = copy.deepcopy(base).to(torch.bfloat16) if mode == "bf16" else base
        for n_steps in steps:
            rollout = Rollout(model, SamplerConfig(steps=n_steps))
            g = torch.Generator().manual_seed(0)
            act = torch.zeros(batch, dtype=torch.long)
            ctx = torch.randn(batch, cfg.max_context, *latent)
            amp = torch.autocast("cpu", dtype=torch.bfloat16) if mode == "autocast" else nullcontext()
            with amp:
                rollout.reset(ctx, torch.zeros(batch, cfg.max_context, dtype=torch.long), None, generator=g)
            times = []
            for i in range(warmup + frames):
                t0 = time.perf_counter()
                amp = torch.autocast("cpu", dtype=torch.bfloat16) if mode == "autocast" else nullcontext()
                with amp:
                    rollout.step(act, g)
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
            times.sort()
            yield {
                "bench": "dynamics_step",
                "preset": preset_name,
                "params_m": round(base.num_params() / 1e6, 2),
                "tokens_per_frame": latent[1] * latent[2] // cfg.patch**2,
                "context_frames": cfg.max_context,
                "steps": n_steps,
                "mode": mode,
                "threads": threads,
                "batch": batch,
                "ms_p50": round(1e3 * times[len(times) // 2], 2),
                "ms_p90": round(1e3 * times[int(len(times) * 0.9)], 2),
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--modes", nargs="+", default=["bf16"], choices=MODES)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--batch", type=int, default=1)
    a = ap.parse_args()
    for row in bench_dynamics(a.preset, tuple(a.steps), tuple(a.modes), a.threads, a.frames, batch=a.batch):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
