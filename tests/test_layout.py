"""The package layout (docs/architecture.md): imports only go down the pipeline, no cycle, no
import hidden in a function to dodge one, and the report never loads torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import caplm

PACKAGE = Path(caplm.__file__).parent
#: Each layer may import itself and the layers before it (docs/architecture.md).
LAYERS = (
    ("caplm", "caplm.io", "caplm.results", "caplm.overrides", "caplm.hf"),
    ("caplm.data",),
    ("caplm.models",),
    ("caplm.evaluation",),
    ("caplm.runtime",),
    (
        "caplm.train",
        "caplm.lm",
        "caplm.probe",
        "caplm.caption",
        "caplm.transferability",
        "caplm.plan",
        "caplm.hf_tiny",
    ),
)
#: The report reads results files: it may use the base layer and the pure-Python transfer modes.
REPORT = "caplm.report"
REPORT_MAY_USE = (
    "caplm",
    "caplm.io",
    "caplm.results",
    "caplm.overrides",
    "caplm.models.transfer.modes",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def internal_imports(path: Path) -> list[tuple[str, bool]]:
    """(imported caplm module, imported at module level) for each import of ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("caplm"):
            found.append((node.module, id(node) in top))
        elif isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names if a.name.startswith("caplm")]
    return found


def graph() -> dict[str, list[tuple[str, bool]]]:
    return {module_name(p): internal_imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int | None:
    for i, names in enumerate(LAYERS):
        for name in names:
            if module == name or (name != "caplm" and module.startswith(name + ".")):
                return i
    return None


def test_every_module_has_a_place_in_the_layout():
    homeless = [m for m in graph() if layer(m) is None and not m.startswith(REPORT)]
    assert homeless == []


def test_imports_only_go_down_the_pipeline():
    upward = []
    for module, imports in graph().items():
        if module.startswith(REPORT):
            upward += [
                (module, target)
                for target, _ in imports
                if not target.startswith(REPORT) and target not in REPORT_MAY_USE
            ]
            continue
        upward += [
            (module, target)
            for target, _ in imports
            if target.startswith(REPORT) or (layer(target) or 0) > layer(module)
        ]
    assert upward == []


def test_no_caplm_import_inside_a_function():
    hidden = [(m, t) for m, imports in graph().items() for t, at_top in imports if not at_top]
    assert hidden == []


def test_no_import_cycle_between_modules():
    modules = graph()
    edges = {
        m: {t for t, _ in imports if t in modules and t != m} for m, imports in modules.items()
    }
    cycles, done = [], set()

    def visit(node, path):
        if node in path:
            cycles.append(path[path.index(node) :] + [node])
            return
        if node in done:
            return
        for nxt in sorted(edges[node]):
            visit(nxt, [*path, node])
        done.add(node)

    for module in sorted(edges):
        visit(module, [])
    assert cycles == []


def test_the_report_loads_neither_torch_nor_lightning():
    code = "import sys, caplm.report; print(sorted({'torch', 'lightning'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
