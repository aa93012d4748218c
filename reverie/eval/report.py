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

    def nan(v: list[float | None]) -> list[float]:  # a horizon whose pairs were all identical: a gap
        return [np.nan if x is None else x for x in v]

    ax.plot(k, nan(art["curve"]), label=f"{result['predictor']}")
    ax.plot(k, nan(art["curve_copy_last"]), "--", label="copy last frame (identical pairs left out)")
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
    floor = (result.get("start_from_nothing") or {}).get("fd_floor") or []
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(fd) + 1), fd, "o-", label="generated vs real")
    if floor:  # the real world's own distance: what a perfect model would score
        ax.plot(np.arange(1, len(floor) + 1), floor, "s--", label="real vs real (floor)")
    ax.set_xlabel(f"segment ({result['drift_segment_frames']} frames each)")
    ax.set_ylabel("Frechet distance")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_title(f"start from nothing: drift ({result['drift_features']})")
    ax.legend()
    ax.grid(alpha=0.3)
    return _png(fig)


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v) if len(v) <= 12 else f"{len(v)} values"
    return str(v)


def _img(b64: str, cls: str = "") -> str:
    return f"<img class='{cls}' src='data:image/png;base64,{b64}'>"


def _array_png(a: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _confusion(result: dict[str, Any]) -> str:
    conf = result.get("idm_confusion")
    if not conf:
        return "<p>n/a (no discrete actions)</p>"
    names = conf["actions"]
    out = []
    for which in ("generated", "real"):
        m = np.asarray(conf[which])
        rows = [[names[i], *m[i].tolist(), float(m[i, i] / m[i].sum()) if m[i].sum() else None]
                for i in range(len(names))]  # fmt: skip
        out.append(f"<h3>{which} pairs (rows: action fed, columns: action judged)</h3>"
                   + _table(["action", *names, "recall"], rows))  # fmt: skip
    return "".join(out)


def _probe(result: dict[str, Any], art: dict[str, Any]) -> str:
    probe = result.get("probe")
    if not probe:
        return "<p>n/a (no actions)</p>"
    rows = [[k, v["shift_px"], v["shift_px_world"], v["change"], v["change_world"]]
            for k, v in probe["branches"].items()]  # fmt: skip
    table = _table(["branch", "shift px/step", "world's", "change/frame", "world's"], rows)
    pic = ""
    if art.get("probe") is not None:
        from reverie.eval.probe import probe_picture

        pic = _img(_array_png(probe_picture(art["probe"])), "wide")
    return (f"<p>noop drift {_fmt(probe['noop_drift'])} (world {_fmt(probe['noop_drift_world'])}, "
            f"autoencoder {_fmt(probe['noop_drift_autoencoder'])}) grey levels per frame</p>{table}{pic}")  # fmt: skip


def _start(result: dict[str, Any], art: dict[str, Any]) -> str:
    sfn = result.get("start_from_nothing") or {}
    if not sfn:
        return ""
    rows = [[m + 1, sfn["fd"][m], sfn["fd_floor"][m], sfn["fd_over_floor"][m], sfn["brightness"][m],
             sfn["brightness_real"][m], sfn["saturation"][m], sfn["saturation_real"][m],
             (sfn["action_acc"] or [None] * len(sfn["fd"]))[m]] for m in range(len(sfn["fd"]))]  # fmt: skip
    table = _table(["segment", "FD", "floor FD", "FD / floor", "brightness", "real", "saturation", "real",
                    "IDM acc"], rows)  # fmt: skip
    sheet = art.get("sheet") or []
    cells = "".join(
        f"<td><p>{html.escape(label)}</p>{_img(_array_png(gen), 'cell')}<br>{_img(_array_png(real), 'cell')}</td>"
        for label, gen, real in sheet
    )
    paths = sfn.get("fd_over_floor_sessions") or []
    spread = ""
    if len(paths) > 1:  # how far one path's number can be trusted
        rows = [[b + 1, *row] for b, row in enumerate(paths)]
        spread = "<p>FD / floor of each start alone:</p>" + _table(
            ["session", *(f"minute {m + 1}" for m in range(len(paths[0])))], rows
        )
    return (f"<p>{sfn['sessions']} session(s), {sfn['frames']} frames; the dream (top) and the real world "
            f"under the same actions (bottom) of the first.</p><table><tr>{cells}</tr></table>{table}{spread}")  # fmt: skip


def render_report(result: dict[str, Any], art: dict[str, Any]) -> str:
    """The HTML page as a string."""
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in result.items()
        if k not in ("probe", "start_from_nothing", "idm_confusion")
    )
    strips = "".join(
        f"<h3>episode seed {s}</h3><p>real</p><img src='data:image/png;base64,{_frames_png(r)}'>"
        f"<p>generated (first frame: last real context frame)</p>"
        f"<img src='data:image/png;base64,{_frames_png(g)}'>"
        for s, r, g in zip(result["seeds"], art["real_strip"], art["gen_strip"], strict=False)
    )
    drift = _img(_drift_plot(result)) if result["drift_fd_per_minute"] else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>reverie eval: {html.escape(str(result["world"]))}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}} table{{border-collapse:collapse}}
th,td{{border:1px solid #ccc;padding:4px 8px;text-align:left}} img{{image-rendering:pixelated;max-width:100%}}
.strip img{{height:64px;max-width:none}} .strip{{overflow-x:auto}} img.cell{{width:128px}}</style></head><body>
<h1>reverie eval: {html.escape(str(result["world"]))} ({html.escape(str(result["predictor"]))})</h1>
<p>Held-out seeds; every measure is defined in docs/measures.md. PSNR of identical frames is capped at
{result["psnr_cap_db"]} dB; frame pairs identical in the real episode are left out of PSNR means.</p>
<h2>numbers</h2><table>{rows}</table>
<h2>PSNR vs horizon</h2><img src='data:image/png;base64,{_psnr_plot(result, art)}'>
<h2>action probe</h2>{_probe(result, art)}
<h2>start from nothing</h2>{_start(result, art)}{drift}
<h2>action accuracy (inverse dynamics)</h2>{_confusion(result)}
<h2>real | generated</h2><div class="strip">{strips}</div>
</body></html>
"""


def write_report(path: str, result: dict[str, Any], art: dict[str, Any]) -> None:
    """Write atomically: a failed render never leaves a partial page."""
    write_atomic(path, render_report(result, art).encode())


def write_atomic(path: str, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: an interrupted write leaves nothing half-done.
    A missing folder is created."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


COMPARE_KEYS = ("psnr_tf", "ssim_tf", "psnr_rollout", "psnr_copy_last", "dtpsnr16", "idm_acc_generated",
                "idm_acc_real", "drift_fd_per_minute", "drift_fd_over_floor_per_minute", "fps")  # fmt: skip


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
