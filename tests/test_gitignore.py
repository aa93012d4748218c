"""Running the README's loop in a checkout leaves `git status` clean: every path it writes is ignored."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _loop_outputs() -> list[str]:
    """The paths the README's commands write: --out, --report, and a `>` redirect's target."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [ln for block in re.findall(r"```bash\n(.*?)```", text, re.S) for ln in block.splitlines()]
    outs = [m for ln in commands for m in re.findall(r"--(?:out|report)\s+(\S+)", ln.split("#")[0])]
    return sorted({o for o in outs if not o.startswith(("$", "/", "~"))})


def test_readme_loop_outputs_are_ignored() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    outs = _loop_outputs()
    assert {"data/dungeon", "runs/dyn", "sheet.png", "report.html", "out.mp4"} <= set(outs), outs
    # A file inside each output (for directories) must be ignored; tracked scripts must not be.
    paths = [o if "." in Path(o).name else f"{o}/config.json" for o in outs]
    res = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin", "-v", "-n"],
        cwd=ROOT, input="\n".join([*paths, "runs/default.sh"]), capture_output=True, text=True, check=False,
    )  # fmt: skip
    verdict = dict(ln.split("\t")[::-1] for ln in res.stdout.splitlines())
    unignored = [p for p in paths if verdict.get(p, "::").startswith("::")]
    assert not unignored, f"the README's loop writes these, but git would show them: {unignored}"
    assert verdict["runs/default.sh"].startswith("::"), "runs/*.sh are sources"
