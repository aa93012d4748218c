"""Look at a store: a text/JSON summary (`reverie data info`) and a labelled contact sheet (`data show`)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from reverie.data.seeds import seed_ranges
from reverie.data.store import EpisodeStore


def describe_seeds(seeds: list[int | None]) -> str:
    """[0, 1, 2, 5, None] -> '0-2, 5 (+1 without seed)'."""
    runs = seed_ranges(seeds)
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs) or "none"
    missing = sum(s is None for s in seeds)
    return text + (f" (+{missing} without seed)" if missing and runs else "")


def summarize(store: EpisodeStore, *, max_captions: int = 5) -> dict[str, Any]:
    """Everything `reverie data info` shows; reads every episode once (actions and captions)."""
    spec = store.spec
    lengths = store.lengths
    discrete = np.zeros(spec.n, np.int64) if spec.is_discrete else None
    box: list[np.ndarray] = []
    captions: Counter[str] = Counter()
    for i in range(len(store)):
        ep = store.read(i)
        if discrete is not None and ep.act is not None:
            discrete += np.bincount(ep.act, minlength=spec.n)
        elif ep.act is not None:
            box.append(ep.act)
        captions.update(c for c in ep.captions if c)
    actions: dict[str, Any] | None = None
    if discrete is not None:
        names = list(spec.names or ()) or [str(k) for k in range(spec.n)]
        actions = {"histogram": dict(zip(names, discrete.tolist()))}
    elif box:
        a = np.concatenate(box)  # (N, D)
        names = list(spec.names or ()) or [str(k) for k in range(a.shape[1])]
        actions = {
            n: {
                "mean": float(a[:, k].mean()),
                "std": float(a[:, k].std()),
                "min": float(a[:, k].min()),
                "max": float(a[:, k].max()),
            }
            for k, n in enumerate(names)
        }
    meta = store.meta
    return {
        "path": store.path,
        "world": store.world,
        "episodes": len(store),
        "frames": int(lengths.sum()),
        "length": {"min": int(lengths.min()), "mean": float(lengths.mean()), "max": int(lengths.max())}
        if len(lengths)
        else None,
        "size": str(store.size),
        "fps": store.fps,
        "action_spec": store.action_spec,
        "actions": actions,
        "captions": {
            "distinct": len(captions),
            "examples": [[c, n] for c, n in captions.most_common(max_captions)],
        },
        "seeds": describe_seeds(store.seeds),
        "streams": _streams(store),
        "version": meta["version"],
        "created": meta["created"],
    }


def _streams(store: EpisodeStore) -> dict[str, Any]:
    """Action streams written after recording (e.g. latent actions): name -> spec, or the reason it is stale."""
    from reverie.data.streams import list_streams, read_stream
    from reverie.errors import ReverieError

    out: dict[str, Any] = {}
    for name in list_streams(store):
        try:
            out[name] = read_stream(store, name)[0]
        except ReverieError as e:
            out[name] = {"stale": str(e)}
    return out


def contact_sheet(store: EpisodeStore, *, episodes: int = 6, frames: int = 8, scale: int = 2) -> Any:
    """A PIL image: one row per episode (spread over the store), `frames` frames spread over each
    episode, each tile labelled 'ep E  t T'."""
    from PIL import Image, ImageDraw

    n_ep = min(episodes, len(store))
    rows: Any = np.unique(np.linspace(0, len(store) - 1, n_ep).round().astype(int)) if n_ep else []
    w, h = store.size.width * scale, store.size.height * scale
    label_h = 12
    sheet = Image.new("RGB", (frames * (w + 2) + 2, max(1, len(rows)) * (h + label_h + 2) + 2), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for r, i in enumerate(rows):
        T = int(store.lengths[i])
        ep = store.read(int(i))
        for c, t in enumerate(np.unique(np.linspace(0, T - 1, min(frames, T)).round().astype(int))):
            x, y = 2 + c * (w + 2), 2 + r * (h + label_h + 2)
            draw.text((x, y), f"ep {i}  t {t}", fill=(220, 220, 220))
            tile = Image.fromarray(ep.obs[t]).resize((w, h), Image.Resampling.NEAREST)
            sheet.paste(tile, (x, y + label_h))
    return sheet
