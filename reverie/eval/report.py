"""The eval report: one self-contained HTML page (plots and frames embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import tempfile
from typing import Any

import numpy as np

__all__ = ["compare", "render_report", "write_report"]


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _frames_png(frames: np.ndarray) -> str:
    """A strip of frames (T, H, W, 3) side by side, as base64 PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.concatenate(list(frames), axis=1)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _psnr_plot(result: dict[str, Any], art: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    k = np.arange(1, len(art["curve"]) + 1)
    ax.plot(k, art["curve"], label=f"{result['predictor']}")
    ax.plot(k, art["curve_copy_last"], "--", label="copy last frame")
    ax.set_xscale("log")
    ax.set_xlabel("horizon k (frames)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title("rollout PSNR vs horizon (real actions)")
    ax.legend()
    ax.grid(alpha=0.3)
    return _png(fig)


def _drift_plot(result: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fd = result["drift_fd_per_minute"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(fd) + 1), fd, "o-")
    ax.set_xlabel(f"segment ({result['drift_segment_frames']} frames each)")
    ax.set_ylabel("Frechet distance")
    ax.set_title(f"drift: generated vs real features ({result['drift_features']})")
    ax.grid(alpha=0.3)
    dt = result.get("drift_dtpsnr_per_minute")
    if dt:  # the action response on a second axis: FD up and dtPSNR down is a model losing control
        ax.set_ylabel("Frechet distance (o)")
        ax2 = ax.twinx()
        ax2.plot(np.arange(1, len(dt) + 1), dt, "s--", color="tab:orange")
        ax2.set_ylabel("dtPSNR@16 from the drifted state, dB (s)")
    return _png(fig)


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"@{k}: {_fmt(x)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v) if len(v) <= 12 else f"{len(v)} values"
    return str(v)


def render_report(result: dict[str, Any], art: dict[str, Any]) -> str:
    """The HTML page as a string."""
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in result.items()
    )
    strips = "".join(
        f"<h3>episode seed {s}</h3><p>real</p><img src='data:image/png;base64,{_frames_png(r)}'>"
        f"<p>generated (first frame: last real context frame)</p>"
        f"<img src='data:image/png;base64,{_frames_png(g)}'>"
        for s, r, g in zip(result["seeds"], art["real_strip"], art["gen_strip"], strict=False)
    )
    drift = (
        f"<img src='data:image/png;base64,{_drift_plot(result)}'>" if result["drift_fd_per_minute"] else ""
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>reverie eval: {html.escape(str(result["world"]))}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} table{{border-collapse:collapse}}
th,td{{border:1px solid #ccc;padding:4px 8px;text-align:left}} img{{image-rendering:pixelated;max-width:100%}}
.strip img{{height:64px;max-width:none}} .strip{{overflow-x:auto}}</style></head><body>
<h1>reverie eval: {html.escape(str(result["world"]))} ({html.escape(str(result["predictor"]))})</h1>
<p>Held-out seeds; definitions in DESIGN.md "Measures". PSNR of identical frames is capped at
{result["psnr_cap_db"]} dB.</p>
<h2>numbers</h2><table>{rows}</table>
<h2>PSNR vs horizon</h2><img src='data:image/png;base64,{_psnr_plot(result, art)}'>
<h2>drift</h2>{drift}
<h2>real | generated</h2><div class="strip">{strips}</div>
</body></html>
"""


def write_report(path: str, result: dict[str, Any], art: dict[str, Any]) -> None:
    """Write atomically: a failed render never leaves a partial page."""
    page = render_report(result, art)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(page)
    os.replace(tmp, path)


COMPARE_KEYS = ("psnr_tf", "ssim_tf", "psnr_rollout", "psnr_copy_last", "dtpsnr16", "idm_acc_generated",
                "idm_acc_real", "drift_fd_per_minute", "drift_dtpsnr_per_minute", "fps")  # fmt: skip


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-measure values of two results and b - a where both are numbers."""
    out = []
    for key in COMPARE_KEYS:
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            for k in va:
                out.append(_row(f"{key}@{k}", va.get(k), vb.get(k)))
        elif isinstance(va, list) and isinstance(vb, list):
            out.append(_row(f"{key} (mean)", _mean(va), _mean(vb)))
        else:
            out.append(_row(key, va, vb))
    return out


def _mean(v: list[float]) -> float | None:
    return float(np.mean(v)) if v else None


def _row(name: str, a: Any, b: Any) -> dict[str, Any]:
    num = isinstance(a, int | float) and isinstance(b, int | float)
    return {"measure": name, "a": a, "b": b, "delta": (b - a) if num else None}


def load_result(path: str) -> dict[str, Any]:
    from reverie.errors import ReverieError

    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ReverieError(
            f"cannot read eval result {path}: {e}; accepted: a file from `reverie eval --json`"
        ) from e
    if not isinstance(data, dict) or "psnr_rollout" not in data:
        raise ReverieError(f"{path} is not a `reverie eval --json` result (no psnr_rollout)")
    return data
