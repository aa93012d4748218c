"""The action probe (docs/measures.md): from the same real context, short branches under one constant
action each (turn left, turn right, forward, back, strafe, noop; Drive: steer, throttle, brake), the
model beside the simulator doing the same.

Per branch: the horizontal shift per step (px) measured on the frames, against the simulator's, and
the mean absolute change per frame; the noop branch's change is the noop drift ("boiling" when the
player stands still). `probe_picture` draws the grid the report and `reverie eval --probe` show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from reverie.eval.image_stats import frame_change, horizontal_shift
from reverie.eval.rollout import Predictor, RealEpisodes
from reverie.worlds import DRIVE_ID, DUNGEON_ID
from reverie.worlds.action_spec import ActionSpec

__all__ = ["Branch", "ProbeResult", "action_probe", "probe_branches", "probe_picture"]

# Discrete branches by action name, per built-in world; other worlds probe every action.
NAMED_BRANCHES = {
    DUNGEON_ID: ("noop", "turn_left", "turn_right", "forward", "back", "strafe_left", "strafe_right"),
    DRIVE_ID: ("noop", "left", "right", "accelerate", "brake"),
}  # fmt: skip


@dataclass
class Branch:
    label: str
    action: Any  # int (discrete) or float32 vector (box)


def probe_branches(world: str, spec: dict[str, Any]) -> list[Branch]:
    """The constant-action branches for an action space; the first is always the null action."""
    actions = ActionSpec.of(spec)
    if actions.is_discrete:
        names = [str(n) for n in actions.names or range(actions.n)]
        wanted = [n for n in NAMED_BRANCHES.get(world, names) if n in names]
        if names[0] not in wanted:
            wanted.insert(0, names[0])
        return [Branch(n, names.index(n)) for n in wanted]
    if actions.is_box:
        low = np.asarray(actions.low, np.float32).reshape(-1)
        high = np.asarray(actions.high, np.float32).reshape(-1)
        names = list(actions.names or [f"a{i}" for i in range(low.size)])
        null = np.clip(np.zeros_like(low), low, high)
        out = [Branch("noop", null)]
        for i, name in enumerate(names):
            for v in (low[i], high[i]):  # each component at each end of its range, the others at rest
                if v != null[i]:
                    a = null.copy()
                    a[i] = v
                    out.append(Branch(f"{name}={v:+g}", a))
        return out
    return []


@dataclass
class ProbeResult:
    fields: dict[str, Any]  # the JSON part
    generated: np.ndarray  # (n_branches, L, H, W, 3) of the first context
    world: np.ndarray  # the simulator's frames, same shape
    start: np.ndarray  # (H, W, 3) the last context frame
    labels: list[str]


def _branch_rows(real: RealEpisodes, context: int, branches: list[Branch], length: int) -> RealEpisodes:
    """Rows ordered branch-major: row i * n + c is branch i from context c."""
    n = len(real.seeds)
    obs = np.concatenate([real.obs[:, :context]] * len(branches))
    acts = []
    for br in branches:
        a = real.act[:, :context]
        tail = np.broadcast_to(np.asarray(br.action, dtype=a.dtype), (n, length, *a.shape[2:]))
        acts.append(np.concatenate([a, tail], 1))
    pad = np.repeat(obs[:, -1:], length, axis=1)  # no real frames after the context: never scored
    return RealEpisodes(np.concatenate([obs, pad], 1), np.concatenate(acts), list(real.seeds) * len(branches),
                        real.action_spec, real.rows(list(range(n)) * len(branches)))  # fmt: skip


def _roll(
    pred: Predictor, rows: RealEpisodes, context: int, length: int, tick: Callable[[int], None]
) -> np.ndarray:
    pred.reset(rows.obs[:, :context], rows.act[:, :context], rows.seeds, rows.caption_at(context - 1))
    out = []
    for j in range(length):
        out.append(pred.step(rows.act[:, context + j]))
        tick(len(rows.seeds))
    return np.stack(out, 1)  # (R, L, H, W, 3)


def action_probe(
    predictor: Predictor,
    simulator: Predictor,
    real: RealEpisodes,
    context: int,
    branches: list[Branch],
    length: int = 16,
    autoencode: Callable[[np.ndarray], np.ndarray] | None = None,
    tick: Callable[[int], None] = lambda n: None,
) -> ProbeResult:
    """Run every branch from each episode's context, for the predictor and the simulator."""
    n = len(real.seeds)
    rows = _branch_rows(real, context, branches, length)
    gen = _roll(predictor, rows, context, length, tick)
    sim = _roll(simulator, rows, context, length, lambda k: None)
    start = rows.obs[:, context - 1 : context]

    def per_step(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seq = np.concatenate([start, frames], 1)  # (R, 1 + L, H, W, 3)
        shift = horizontal_shift(seq[:, :-1], seq[:, 1:])  # (R, L)
        change = frame_change(seq[:, :-1], seq[:, 1:])
        return shift.reshape(len(branches), n, length), change.reshape(len(branches), n, length)

    g_shift, g_change = per_step(gen)
    s_shift, s_change = per_step(sim)
    table = {
        br.label: {
            "shift_px": float(g_shift[i].mean()),
            "shift_px_world": float(s_shift[i].mean()),
            "change": float(g_change[i].mean()),
            "change_world": float(s_change[i].mean()),
        }
        for i, br in enumerate(branches)
    }
    noop_ae = None
    if autoencode is not None:  # the autoencoder's own frame-to-frame noise on the world's noop branch
        seq = np.concatenate([start[:n], sim[:n]], 1)
        rec = autoencode(seq.reshape(-1, *seq.shape[2:])).reshape(seq.shape)
        noop_ae = float(frame_change(rec[:, :-1], rec[:, 1:]).mean())
    first = branches[0].label
    fields = {
        "branches": table,
        "noop_drift": table[first]["change"],
        "noop_drift_world": table[first]["change_world"],
        "noop_drift_autoencoder": noop_ae,
        "contexts": n,
        "frames": length,
    }
    idx = [i * n for i in range(len(branches))]  # the first context's row of each branch
    return ProbeResult(fields, gen[idx], sim[idx], rows.obs[0, context - 1], [b.label for b in branches])


def probe_picture(probe: ProbeResult, every: int = 2) -> np.ndarray:
    """One row per branch: its label, the simulator's frames, then the model's (every `every`-th frame)."""
    from PIL import Image, ImageDraw

    H, W = probe.start.shape[:2]
    label_w, gap = max(96, W), max(8, W // 8)
    cols = list(range(every - 1, probe.generated.shape[1], every))
    width = label_w + W + 2 * len(cols) * W + 2 * gap
    header = 14
    img = Image.new("RGB", (width, header + len(probe.labels) * (H + 4)), (24, 24, 24))
    draw = ImageDraw.Draw(img)
    x_sim = label_w + W + gap
    x_gen = x_sim + len(cols) * W + gap
    draw.text((label_w, 1), "context", fill=(200, 200, 200))
    draw.text((x_sim, 1), "simulator", fill=(200, 200, 200))
    draw.text((x_gen, 1), "model", fill=(200, 200, 200))
    for r, label in enumerate(probe.labels):
        y = header + r * (H + 4)
        row = probe.fields["branches"][label]
        draw.text((2, y + 2), label, fill=(230, 230, 230))
        draw.text((2, y + 16), f"{row['shift_px']:+.1f} px", fill=(150, 200, 255))
        draw.text((2, y + 28), f"({row['shift_px_world']:+.1f})", fill=(150, 150, 150))
        img.paste(Image.fromarray(probe.start), (label_w, y))
        for j, t in enumerate(cols):
            img.paste(Image.fromarray(probe.world[r, t]), (x_sim + j * W, y))
            img.paste(Image.fromarray(probe.generated[r, t]), (x_gen + j * W, y))
    return np.asarray(img)
