"""Writing the report: CSV and Markdown tables, the plots, and ``report.md``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from caplm.io import write_text
from caplm.report.columns import (
    ALPHA,
    CELL,
    GEN_PPLX,
    HEADLINE_METRIC,
    KEY_COLUMNS,
    LM_PPLX,
)
from caplm.report.plots import plot_report
from caplm.report.summary import correlations, summarize
from caplm.report.sweep import Sweep
from caplm.results import SPICE_STATUS, metric_key

NO_PLOTS = "- none: no complete job transferred an LM with a perplexity or corpus size"


def write_report(sweep: Sweep, out: str | Path) -> list[str]:
    """Write the tables, plots and report.md under ``out``; return the verdict lines."""
    out = Path(out)
    cells = summarize(sweep.table)
    corr = correlations(sweep.table)
    write_text(out / "results.csv", sweep.table.to_csv(index=False))
    write_text(out / "results.md", f"# Results: `{sweep.root}`\n\n" + markdown_table(sweep.table))
    write_text(out / "summary.csv", cells.to_csv(index=False))
    write_text(out / "correlations.csv", corr.to_csv(index=False))
    plots = plot_report(sweep.complete, cells, out)
    write_text(out / "report.md", _report_md(sweep, cells, corr, plots))
    return list(corr["verdict"])


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub Markdown table (pandas' to_markdown would need the tabulate package)."""

    def cell(v) -> str:
        if pd.api.types.is_scalar(v) and pd.isna(v):
            return ""
        if isinstance(v, float):
            return _number(v)
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(c) for c in df.columns) + " |", "|" + "---|" * df.shape[1]]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _number(v: float) -> str:
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def _mean_std(mean: float, std: float) -> str:
    if pd.isna(mean):
        return ""
    digits = 3 if abs(mean) < 10 else 1 if abs(mean) < 100 else 0
    return f"{mean:.{digits}f}" + ("" if pd.isna(std) else f" ± {std:.{digits}f}")


def _reused_note(reused: int) -> str:
    if not reused:
        return ""
    return (
        f"; {reused} of them reused the result of an identical job (e.g. a control repeated "
        "across LM corpora) and count once below"
    )


def _report_md(sweep: Sweep, cells: pd.DataFrame, corr: pd.DataFrame, plots: dict) -> str:
    done = sweep.complete
    total = sweep.expected if sweep.expected is not None else sweep.found
    counted = "expected from multirun.yaml" if sweep.expected is not None else "job folders found"
    problems = [f"`{job}`: {why}" for job, why in sweep.incomplete]
    problems += [f"never started: `{job}`" for job in sweep.never_started]
    problems += [f"unreadable, skipped: {why}" for why in sweep.skipped]
    md = [
        f"# caplm report: `{sweep.root}`",
        "",
        f"**{sweep.finished} of {total} jobs complete** ({total} {counted}; "
        f"{len(sweep.incomplete)} incomplete, {len(sweep.never_started)} never started, "
        f"{len(sweep.skipped)} unreadable){_reused_note(sweep.finished - len(done))}. "
        "Per-job tables: [results.md](results.md), [results.csv](results.csv).",
        "",
        "## Summary: mean ± std over seeds per grid cell",
        "",
        _summary_md(cells),
        f"LM pplx: `{LM_PPLX}`; gen. pplx: `{GEN_PPLX}`; std is the sample standard "
        "deviation over seeds (none shown where n = 1). All columns: "
        "[summary.csv](summary.csv).",
        "",
        f"## Does a better LM transfer better? ({HEADLINE_METRIC} against LM perplexity)",
        "",
        f"Rank correlation of `{LM_PPLX}` with `{metric_key(HEADLINE_METRIC)}` across LMs, "
        "one point per grid cell (the mean over its seeds), per transfer mode. A negative "
        "correlation means lower perplexity went with higher CIDEr, i.e. better LMs "
        f"transferred better; it counts as significant when both p < {ALPHA}.",
        "",
        *([f"- {v}" for v in corr["verdict"]] or ["- no transfer mode has LM perplexities"]),
        "",
        "## Plots",
        "",
        *([f"![{caption}]({name})\n" for name, caption in plots.items()] or [NO_PLOTS, ""]),
        "## SPICE",
        "",
        *_spice_md(done),
        "",
        "## Incomplete and missing jobs",
        "",
        *([f"- {p}" for p in problems] or ["- none"]),
        *[f"- note: {n}" for n in sweep.notes],
    ]
    return "\n".join(md) + "\n"


def _summary_md(cells: pd.DataFrame) -> str:
    # Cell keys with one value everywhere say nothing per row: state them once above.
    keys = [c for c in CELL if c in cells]
    same = [c for c in keys if cells[c].nunique(dropna=False) == 1]
    table = cells[[c for c in keys if c not in same] + ["n"]].copy()
    for header, key in KEY_COLUMNS:
        if f"{key}.mean" in cells and cells[f"{key}.mean"].notna().any():
            table[header] = [
                _mean_std(m, s)
                for m, s in zip(cells[f"{key}.mean"], cells[f"{key}.std"], strict=True)
            ]
    fixed = [f"{c} = {cells[c].iloc[0]}" for c in same if pd.notna(cells[c].iloc[0])]
    return (f"In every cell: {', '.join(fixed)}.\n\n" if fixed else "") + markdown_table(table)


def _spice_md(done: pd.DataFrame) -> list[str]:
    if SPICE_STATUS not in done:
        return [f"- no `{SPICE_STATUS}` in the results"]
    counts = done[SPICE_STATUS].fillna("(not given)").value_counts()
    return [f"- {status}: {n} job{'s' if n != 1 else ''}" for status, n in counts.items()]
