"""Module names say their stage: no two modules under caplm/ share a name, and
docs/architecture.md lists every one."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import caplm

PACKAGE = Path(caplm.__file__).parent
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"
#: The generated datasets' sub-packages have the same parts by design (scene, grammar, render,
#: settings, dataset): a stem may repeat among them, and nowhere else.
PARALLEL = ("caplm/data/shapes/", "caplm/data/scenes/")


def modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if p.stem not in ("__init__", "__main__")]


def test_no_two_modules_share_a_stem():
    where = defaultdict(list)
    for p in modules():
        where[p.stem].append(str(p.relative_to(PACKAGE.parent)))
    shared = {stem: paths for stem, paths in where.items() if len(paths) > 1}
    assert {s: ps for s, ps in shared.items() if not all(p.startswith(PARALLEL) for p in ps)} == {}


def test_architecture_md_lists_every_module():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    listed = set(re.findall(r"`(caplm/[\w/]+\.py)`", text))
    missing = [str(p.relative_to(PACKAGE.parent)) for p in modules()]
    assert [m for m in missing if m not in listed] == []
