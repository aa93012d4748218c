"""The pictures in the README: the player in a real browser, and a real-vs-dream rollout strip.

    .venv/bin/python runs/readme_media.py --model default --out docs

player_10s.png, player_60s.png: Chromium (Debian's, driven by Playwright) plays the model with the
keyboard (walk, turn, walk, look round, in a loop), and the page is photographed after 10 s and after
60 s of play, what a player sees after a first look and after a minute. rollout.png: a held-out Dungeon episode (seed 1,000,000)
and the model's rollout from the same 8 real context frames under the same actions, every 4th frame.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from reverie.worlds import DUNGEON_ID

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip


PLAY = (("w", 1500), ("ArrowRight", 600), ("w", 1200), ("ArrowLeft", 900), ("s", 500), ("", 700))


def screenshot(model: str, out: Path, at_s: tuple[int, ...] = (10, 60)) -> list[Path]:
    import time

    from playwright.sync_api import sync_playwright

    from reverie.engine.model_backend import ModelConfig
    from reverie.engine.views import make_backends
    from reverie.serve.app import BackgroundServer, ServeConfig, create_app

    backends = make_backends(model, DUNGEON_ID, "64x64", False, ModelConfig())  # its own settings
    dream = backends["dream"]
    cfg = ServeConfig(world=dream.world, model=model, size=str(dream.size), fps=30)
    with BackgroundServer(create_app(cfg, backends)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1100, "height": 720})
        page.goto(url + "/")
        page.wait_for_function("() => window.__reverie.framesDrawn > 10", timeout=60000)
        start, shots, i = time.monotonic(), [], 0
        for at in at_s:
            while time.monotonic() - start < at:
                key, ms = PLAY[i % len(PLAY)]
                i += 1
                if key:
                    page.keyboard.down(key)
                page.wait_for_timeout(ms)
                if key:
                    page.keyboard.up(key)
            shots.append(out / f"player_{at}s.png")
            page.screenshot(path=str(shots[-1]))
        browser.close()
    return shots


def rollout_strip(model: str, path: Path, seed: int = 1_000_000, context: int = 8, frames: int = 32) -> None:
    from PIL import Image

    from reverie.eval.rollout import ModelPredictor, collect_real
    from reverie.generate.output import strip

    real = collect_real(DUNGEON_ID, "64x64", [seed], context + frames, spare_seeds=[seed + 1, seed + 2])
    pred = ModelPredictor(model, seed=0)  # the model's own play settings
    pred.reset(real.obs[:, :context], real.act[:, :context], real.seeds)
    dream = np.stack([pred.step(real.act[:, context + k])[0] for k in range(frames)])  # (T, H, W, 3)
    picks = list(range(3, frames, 4))  # frames 4, 8, ..., 32 after the context
    sheet = strip([real.obs[0, context:][picks], dream[picks]], count=len(picks))  # real row, dream row
    Image.fromarray(sheet).resize((sheet.shape[1] * 3, sheet.shape[0] * 3), Image.NEAREST).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="run dir or `default`")
    ap.add_argument("--out", default="docs", help="directory for player_10s.png, player_60s.png, rollout.png")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rollout_strip(args.model, out / "rollout.png")
    shots = screenshot(args.model, out)
    print(f"wrote {out / 'rollout.png'} and {', '.join(map(str, shots))}")


if __name__ == "__main__":
    main()
