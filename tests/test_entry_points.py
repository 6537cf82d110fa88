"""Every ``python -m caplm.X`` answers ``--help`` with exit status 0 and a usage that lists its
arguments or its config groups; each entry module stays thin (its stage's package does the
work)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import caplm

PACKAGE = Path(caplm.__file__).parent
MAX_LINES = 75  # an entry module: its usage, argument parsing and one call


def entry_points() -> list[str]:
    """``caplm.X`` for each module or package of caplm that runs as ``python -m`` (nested ones
    too, e.g. ``caplm.runtime.duplicates``)."""
    found = []
    for p in sorted(PACKAGE.rglob("*.py")):
        if p.stem == "__main__":
            found.append(".".join(p.parent.relative_to(PACKAGE.parent).parts))
        elif p.stem != "cli" and 'if __name__ == "__main__":' in p.read_text(encoding="utf-8"):
            found.append(".".join(p.with_suffix("").relative_to(PACKAGE.parent).parts))
    return found


def top_level(name: str) -> bool:
    return name.count(".") == 1


#: Run in one interpreter (one import of torch for all): each entry point with --help, its
#: exit status and what it printed.
LOOP = """
import contextlib, io, json, runpy, sys
out = {}
for name in sys.argv[1:]:
    sys.argv, buf, code = [name, "--help"], io.StringIO(), 0
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            runpy.run_module(name, run_name="__main__", alter_sys=True)
        except SystemExit as e:
            code = e.code or 0
    out[name] = [code, buf.getvalue()]
print(json.dumps(out))
"""


def test_the_entry_points_are_found():
    assert {"caplm.train", "caplm.lm", "caplm.probe", "caplm.caption", "caplm.transferability",
            "caplm.report"} <= set(entry_points())  # fmt: skip


def test_every_entry_point_answers_help_with_its_usage():
    names = entry_points()
    run = subprocess.run([sys.executable, "-c", LOOP, *names], capture_output=True, text=True,
                         timeout=300, cwd=PACKAGE.parent)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    answers = json.loads(run.stdout.strip().splitlines()[-1])
    for name in names:
        code, text = answers[name]
        assert code == 0, (name, text[-1000:])
        assert "usage" in text.lower() or "== Configuration groups ==" in text, (name, text[:500])
    for hydra_entry in ("caplm.train", "caplm.lm"):  # Hydra's help lists the config groups
        assert "data:" in answers[hydra_entry][1] and "lm:" in answers[hydra_entry][1]
    assert "JOB_DIR" in answers["caplm.caption"][1] and "--n-best" in answers["caplm.caption"][1]
    assert "SWEEP_DIR" in answers["caplm.transferability"][1]
    assert "OVERRIDE" in answers["caplm.probe"][1]


def test_entry_modules_stay_thin():
    long = {}
    for name in filter(top_level, entry_points()):
        path = PACKAGE / f"{name.split('.')[1]}.py"
        path = path if path.exists() else PACKAGE / name.split(".")[1] / "__main__.py"
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            long[name] = lines
    assert long == {}
