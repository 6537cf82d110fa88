"""``python -m caplm.report <sweep dir>``: results files -> tables, plots, rank correlations.

Every ``results.json`` under the directory (searched recursively) is one job. The report
answers the study's question: does an LM with lower perplexity give a better caption
generator when its embedding and RNN are transferred?

Outputs (default ``<dir>/report/``): ``results.csv`` and ``results.md`` (one row per job),
``summary.csv`` (mean, std and n over seeds per grid cell), ``correlations.csv``, PNG plots
and ``report.md``. Table columns are the results keys (see ``caplm.results``), except that
``job/`` keys lose their prefix (``corpus``, ``transfer``, ``size_exponent``, ``seed``, ...);
``job_dir`` is the job's folder relative to the directory given.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml
from scipy import stats

from caplm.io import read_json, write_text
from caplm.results import (
    COMPLETE,
    RESULTS_FILE,
    SPICE_STATUS,
    TRANSFER_MODES,
    div_key,
    metric_key,
    pplx_key,
    ret_key,
)

# A grid cell: jobs that differ only in their seed. Seeds are the runs we average over.
CELL = ("data", "corpus", "transfer", "size_exponent", "lm_max_epochs")
REQUIRED = ("job/status", "job/corpus", "job/transfer", "job/size_exponent", "job/seed")
FIRST_COLUMNS = ("job_dir", "experiment", *CELL, "seed", "status")
BASELINE, CONTROL = TRANSFER_MODES[0], TRANSFER_MODES[3]  # drawn as reference lines
LM_PPLX = pplx_key("lm", "captest")  # the x of the headline: LM perplexity on caption test
GEN_PPLX = pplx_key("capgen", "test")
HEADLINE_METRIC = "CIDEr"
PLOT_METRICS = ("CIDEr", "METEOR")
ALPHA = 0.05  # a correlation counts as significant when both tests give p < ALPHA


class ReportError(Exception):
    """A problem with the input that the user must fix; main() prints it and exits 2."""


@dataclass
class Sweep:
    """What was found under a directory: the jobs' results and what is missing."""

    root: Path
    found: int  # job folders (with results or Hydra's .hydra/)
    table: pd.DataFrame  # one row per readable results.json, complete or not
    incomplete: list[tuple[str, str]]  # (job dir, why): a folder without complete results
    skipped: list[str]  # unreadable results files, each with the reason
    never_started: list[str]  # expected by a multirun.yaml, no folder at all
    expected: int | None  # jobs the multirun.yaml files ask for; None when unknown
    notes: list[str]  # why the expected count is unknown, and the like

    @property
    def complete(self) -> pd.DataFrame:
        """Complete jobs, each distinct result once (what is averaged and plotted)."""
        return unique_complete(self.table)

    @property
    def finished(self) -> int:
        """Complete jobs, those that reused an identical job's result included."""
        return int((self.table["status"] == COMPLETE).sum()) if len(self.table) else 0


def unique_complete(df: pd.DataFrame) -> pd.DataFrame:
    """Complete jobs, each result once: a job that reused an identical job's results (e.g. the
    no-transfer control repeated across LM corpora in one sweep) is not counted again."""
    if not len(df):
        return df
    done = df["status"] == COMPLETE
    if "reused_from" in df:
        done &= df["reused_from"].isna()
    return df[done]


def scan(root: str | Path) -> Sweep:
    """Read every job under ``root``. Raises ReportError when there is nothing to read."""
    root = Path(root)
    if not root.is_dir():
        raise ReportError(f"{root}: no such directory")
    # A job folder has results.json once it has finished, and Hydra's .hydra/ from its start.
    job_dirs = {p.parent for p in root.rglob(RESULTS_FILE)}
    job_dirs |= {p.parent for p in root.rglob(".hydra") if p.is_dir()}
    rows, incomplete, skipped, overrides = [], [], [], {}
    for job in sorted(job_dirs):
        rel = job.relative_to(root).as_posix()
        results = _read_results(job / RESULTS_FILE) if (job / RESULTS_FILE).exists() else None
        overrides[job] = _job_overrides(job, results if isinstance(results, dict) else None)
        if isinstance(results, str):
            skipped.append(results)
            continue
        if results is None:
            incomplete.append((rel, f"no {RESULTS_FILE}"))
            continue
        if results["job/status"] != COMPLETE:
            incomplete.append((rel, f"status {results['job/status']!r}"))
        rows.append({"job_dir": rel, **results})
    if not rows:
        found = f" ({len(skipped)} unreadable)" if skipped else ""
        raise ReportError(f"{root}: no readable {RESULTS_FILE} found{found}; nothing to report")
    expected, never_started, notes = _expected_jobs(root, overrides)
    table = _tidy(rows)
    return Sweep(root, len(job_dirs), table, incomplete, skipped, never_started, expected, notes)


def collect(root: str | Path) -> pd.DataFrame:
    """One row per job with readable results (see the module doc for the columns).

    Unreadable results files are named in a warning and skipped.
    """
    sweep = scan(root)
    for problem in sweep.skipped:
        warnings.warn(f"skipped {problem}", stacklevel=2)
    return sweep.table


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std (sample, over seeds) of every numeric column per grid cell, plus n.

    Only complete jobs count. Columns: the cell's keys, ``n``, then ``<key>.mean`` and
    ``<key>.std`` for each numeric results key (std is NaN where n = 1).
    """
    done = unique_complete(df)
    cell = [c for c in CELL if c in done]
    values = [
        c
        for c in done.columns
        if c not in cell and c != "seed" and pd.api.types.is_numeric_dtype(done[c])
    ]
    groups = done.groupby(cell, dropna=False, sort=True)
    mean, std = groups[values].mean(), groups[values].std()
    columns = {"n": groups.size()}
    for c in values:
        columns[f"{c}.mean"], columns[f"{c}.std"] = mean[c], std[c]
    return pd.DataFrame(columns).reset_index()


def correlations(df: pd.DataFrame, metric: str = HEADLINE_METRIC) -> pd.DataFrame:
    """Spearman and Kendall rank correlation of LM perplexity with a caption metric.

    One point per grid cell (the mean over its seeds), per transfer mode that has LM
    perplexities (and per target data set when there are several). A negative correlation
    means lower perplexity went with a higher metric: better LMs transferred better.
    """
    cells = summarize(df)
    x, y = f"{LM_PPLX}.mean", f"{metric_key(metric)}.mean"
    columns = ["transfer", "n", "spearman_rho", "spearman_p", "kendall_tau", "kendall_p"]
    if x not in cells or y not in cells:
        return pd.DataFrame(columns=[*columns, "verdict"])
    cells = cells.dropna(subset=[x, y])
    by_data = "data" in cells and cells["data"].nunique() > 1
    keys = ["data", "transfer"] if by_data else ["transfer"]
    rows = []
    for key, group in cells.groupby(keys, sort=True):
        label = " / ".join(str(k) for k in key)
        row = dict(zip(keys, key, strict=True))
        row["n"] = n = len(group)
        if n >= 3 and group[x].nunique() > 1 and group[y].nunique() > 1:
            rho, rho_p = stats.spearmanr(group[x], group[y])
            tau, tau_p = stats.kendalltau(group[x], group[y])
            row.update(spearman_rho=rho, spearman_p=rho_p, kendall_tau=tau, kendall_p=tau_p)
        row["verdict"] = _verdict(label, metric, row)
        rows.append(row)
    return pd.DataFrame(rows, columns=[*(["data"] if by_data else []), *columns, "verdict"])


def _verdict(label: str, metric: str, row: dict) -> str:
    n = row["n"]
    if n < 3:
        return f"{label}: too few LMs to correlate (n = {n})"
    if "spearman_rho" not in row:
        return f"{label}: n = {n} LMs, but perplexity or {metric} does not vary: no correlation"
    rho, tau = row["spearman_rho"], row["kendall_tau"]
    numbers = (
        f"Spearman rho = {rho:+.2f} (p {_p(row['spearman_p'])}), "
        f"Kendall tau = {tau:+.2f} (p {_p(row['kendall_p'])}), n = {n} LMs"
    )
    if max(row["spearman_p"], row["kendall_p"]) >= ALPHA:
        said = "no significant correlation: lower LM perplexity did not significantly go"
        said += f" with higher {metric}"
    elif rho < 0:
        said = f"lower LM perplexity went with higher {metric}: better LMs did transfer better"
    else:
        said = f"lower LM perplexity went with lower {metric}: better LMs transferred worse"
    return f"{label}: {numbers}: {said}"


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.2f}" if p >= 0.01 else f"= {p:.3f}"


# -- reading ------------------------------------------------------------------------------


def _read_results(path: Path) -> dict | str:
    """The results object, or a string saying why the file cannot be used."""
    try:
        obj = read_json(path)
    except ValueError as err:  # read_json's message names the file
        return str(err)
    except OSError as err:
        return f"{path}: cannot be read ({err.strerror})"
    if not isinstance(obj, dict):
        return f"{path}: not a JSON object but {type(obj).__name__}"
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        return f"{path}: missing keys {', '.join(missing)}"
    return obj


def _job_overrides(job: Path, results: dict | None) -> frozenset[str]:
    hydra_file = job / ".hydra" / "overrides.yaml"
    if hydra_file.exists():
        try:
            return frozenset(yaml.safe_load(hydra_file.read_text()) or [])
        except (yaml.YAMLError, TypeError):
            pass
    return frozenset((results or {}).get("job/overrides") or [])


def _tidy(rows: list[dict]) -> pd.DataFrame:
    def column(key: str) -> str:
        return key.removeprefix("job/")

    def value(v):
        if isinstance(v, list) and all(isinstance(s, str) for s in v):
            return " ".join(v)  # overrides read best as a command line
        return json.dumps(v) if isinstance(v, (list, dict)) else v

    df = pd.DataFrame([{column(k): value(v) for k, v in r.items()} for r in rows])
    first = [c for c in FIRST_COLUMNS if c in df]
    df = df[first + [c for c in df.columns if c not in first]]
    order = [c for c in (*CELL, "seed") if c in df]
    return df.sort_values(order, na_position="first", kind="stable").reset_index(drop=True)


def _expected_jobs(
    root: Path, found: dict[Path, frozenset[str]]
) -> tuple[int | None, list[str], list[str]]:
    """Jobs asked for by each multirun.yaml under root, and those that have no folder."""
    expected, never_started, notes = 0, [], []
    sweeps = sorted(root.rglob("multirun.yaml"))
    for sweep_file in sweeps:
        rel = sweep_file.parent.relative_to(root).as_posix()
        try:
            grid = _sweep_grid(sweep_file)
        except Exception as err:  # noqa: BLE001 -- the count is optional; never fail on it
            notes.append(f"could not derive the expected jobs of {rel}/multirun.yaml: {err}")
            expected = None
            continue
        started = {o for job, o in found.items() if sweep_file.parent in job.parents}
        prefix = "" if rel == "." else f"{rel}: "
        never_started += [prefix + " ".join(sorted(g)) for g in grid if g not in started]
        if expected is not None:
            expected += len(grid)
    return (expected if sweeps else None), never_started, notes


def _sweep_grid(sweep_file: Path) -> list[frozenset[str]]:
    """The override sets Hydra's basic sweeper launches: the product of every sweep."""
    from hydra.core.override_parser.overrides_parser import OverridesParser  # slow import

    hydra = (yaml.safe_load(sweep_file.read_text()) or {}).get("hydra") or {}
    sweeper = hydra.get("sweeper") or {}
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        raise ValueError(f"sweeper {sweeper.get('_target_')!r} is not Hydra's basic sweeper")
    # As BasicSweeper does: config params first, then the command line (which wins).
    args = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    args += (hydra.get("overrides") or {}).get("task") or []
    choices: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(args):
        key = override.get_key_element()
        if not override.is_sweep_override():
            choices[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            choices[key] = [f"{key}={v}" for v in override.sweep_string_iterator()]
        else:
            raise ValueError(f"{key}: an interval sweep has no fixed list of jobs")
    return [frozenset(job) for job in itertools.product(*choices.values())]


# -- writing ------------------------------------------------------------------------------

# The Markdown summary's columns: (header, results key).
KEY_COLUMNS = (
    ("CIDEr", metric_key("CIDEr")),
    ("METEOR", metric_key("METEOR")),
    ("BLEU-4", metric_key("BLEU-4")),
    ("ROUGE-L", metric_key("ROUGE_L")),
    ("SPICE", metric_key("SPICE")),
    ("LM pplx", LM_PPLX),
    ("gen. pplx", GEN_PPLX),
    ("vocab used", div_key("vocab_used")),
    ("unique frac", div_key("unique_frac")),
    ("R@1", ret_key("R@1")),
    ("R@10", ret_key("R@10")),
)
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
    from caplm.report_plots import plot_report  # matplotlib is slow to import; only here

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


# -- command line -------------------------------------------------------------------------


def latest_sweep(parent: str | Path) -> Path:
    """The immediate subdirectory of ``parent`` whose newest results.json is the newest.

    A folder's own modification time misses files written deeper down, so the results
    files' times decide.
    """
    parent = Path(parent)
    if not parent.is_dir():
        raise ReportError(f"{parent}: no such directory")
    newest = {}
    for sub in parent.iterdir():
        times = [p.stat().st_mtime for p in sub.rglob(RESULTS_FILE)] if sub.is_dir() else []
        if times:
            newest[sub] = max(times)
    if not newest:
        raise ReportError(f"{parent}: no subdirectory holds a {RESULTS_FILE}")
    return max(newest, key=newest.get)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m caplm.report",
        description="Tables, plots and rank correlations from a sweep's results.json files.",
    )
    parser.add_argument("dir", type=Path, help="a sweep folder, searched recursively")
    parser.add_argument("--out", type=Path, help="where the report goes (default: DIR/report)")
    parser.add_argument(
        "--latest", action="store_true", help="report the newest subfolder of DIR with results"
    )
    args = parser.parse_args(argv)
    try:
        root = latest_sweep(args.dir) if args.latest else args.dir
        sweep = scan(root)
        for why in sweep.skipped:
            print(f"caplm.report: warning: skipped {why}", file=sys.stderr)
        if sweep.complete.empty:
            raise ReportError(f"{root}: no complete job yet ({len(sweep.incomplete)} incomplete)")
    except ReportError as err:
        print(f"caplm.report: {err}", file=sys.stderr)
        return 2
    out = args.out or root / "report"
    verdicts = write_report(sweep, out)
    print(
        f"{sweep.finished} complete jobs ({len(sweep.complete)} distinct results) from {root}; "
        f"report: {out / 'report.md'}"
    )
    for line in verdicts:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
