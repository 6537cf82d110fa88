"""Reading a sweep: every ``results.json`` under a folder (searched recursively) is one job.

``scan`` returns a ``Sweep``: one table row per job with readable results (``job/`` keys lose
their prefix: ``corpus``, ``transfer``, ``size_exponent``, ``seed``, ...; ``job_dir`` is the
job's folder relative to the folder given), and what is missing: incomplete jobs, unreadable
files (named, skipped), jobs a ``multirun.yaml`` asked for that never started, and folders of
jobs that failed before they started (no ``job.json``: e.g. a refused config), which are named
but not counted as jobs.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from caplm.io import read_json
from caplm.overrides import sweep_jobs
from caplm.report.columns import CELL, FIRST_COLUMNS, REQUIRED, SETTING
from caplm.results import (
    COMPLETE,
    JOB_FILE,
    NOT_APPLICABLE,
    OVERRIDES,
    RESULTS_FILE,
    REUSED_FROM,
    STATUS,
    column,
)


class ReportError(Exception):
    """A problem with the input that the user must fix; main() prints it and exits 2."""


@dataclass
class Sweep:
    """What was found under a directory: the jobs' results and what is missing."""

    root: Path
    found: int  # job folders (with results, or Hydra's .hydra/ and a job.json)
    table: pd.DataFrame  # one row per readable results.json, complete or not
    incomplete: list[tuple[str, str]]  # (job dir, why): a folder without complete results
    skipped: list[str]  # unreadable results files, each with the reason
    never_started: list[str]  # expected by a multirun.yaml, no folder at all
    expected: int | None  # jobs the multirun.yaml files ask for; None when unknown
    notes: list[str]  # why the expected count is unknown, and the like
    not_applicable: list[str] = ()  # job dirs of grid points outside the design (not run)
    failed_to_start: list[tuple[str, str]] = ()  # (folder, why): no job.json, no results
    settings: dict = None  # job_dir -> its flat settings (job.json's identity); absent: unknown

    @property
    def total(self) -> int:
        """The jobs of this folder: those found (grid points outside the design aside) and
        those a multirun.yaml asked for that have no folder. Several multiruns into one folder
        leave the last one's multirun.yaml only: the earlier ones' jobs count as found."""
        return self.found - len(self.not_applicable) + len(self.never_started)

    @property
    def complete(self) -> pd.DataFrame:
        """Complete jobs, each distinct result once (what is averaged and plotted)."""
        return unique_complete(self.table)

    @property
    def finished(self) -> int:
        """Complete jobs, those that reused an identical job's result included."""
        return int((self.table[column(STATUS)] == COMPLETE).sum()) if len(self.table) else 0


def unique_complete(df: pd.DataFrame) -> pd.DataFrame:
    """Complete jobs, each result once: a job that reused an identical job's results (e.g. the
    no-transfer control repeated across LM corpora in one sweep) is not counted again."""
    if not len(df):
        return df
    done = df[column(STATUS)] == COMPLETE
    reused = column(REUSED_FROM)
    if reused in df:
        done &= df[reused].isna()
    return df[done]


def scan(root: str | Path) -> Sweep:
    """Read every job under ``root``. Raises ReportError when there is nothing to read."""
    root = Path(root)
    if not root.is_dir():
        raise ReportError(f"{root}: no such directory")
    # A job folder has results.json once it has finished, and Hydra's .hydra/ from its start.
    job_dirs = {p.parent for p in root.rglob(RESULTS_FILE)}
    job_dirs |= {p.parent for p in root.rglob(".hydra") if p.is_dir()}
    rows, incomplete, skipped, not_applicable, overrides, failed = [], [], [], [], {}, []
    settings = {}
    for job in sorted(job_dirs):
        rel = job.relative_to(root).as_posix()
        results = _read_results(job / RESULTS_FILE) if (job / RESULTS_FILE).exists() else None
        if results is None and not (job / JOB_FILE).exists():
            failed.append((rel, _failure(job)))
            continue
        overrides[job] = _job_overrides(job, results if isinstance(results, dict) else None)
        if isinstance(results, str):
            skipped.append(results)
            continue
        if results is None:
            incomplete.append((rel, f"no {RESULTS_FILE}"))
            continue
        if results[STATUS] == NOT_APPLICABLE:
            not_applicable.append(rel)
            continue
        if results[STATUS] != COMPLETE:
            incomplete.append((rel, f"status {results[STATUS]!r}"))
        rows.append({"job_dir": rel, **results})
        found = _settings(job, results)
        if found is not None:
            settings[rel] = found
    if not rows:
        found = f" ({len(skipped)} unreadable)" if skipped else ""
        raise ReportError(f"{root}: no readable {RESULTS_FILE} found{found}; nothing to report")
    expected, never_started, notes = _expected_jobs(root, overrides)
    table = _tidy(_split_settings(rows, settings))
    return Sweep(root, len(job_dirs) - len(failed), table, incomplete, skipped, never_started,
                 expected, notes, not_applicable, failed, settings)  # fmt: skip


def collect(root: str | Path) -> pd.DataFrame:
    """One row per job with readable results (see the module doc for the columns).

    Unreadable results files are named in a warning and skipped.
    """
    sweep = scan(root)
    for problem in sweep.skipped:
        warnings.warn(f"skipped {problem}", stacklevel=2)
    return sweep.table


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


def _settings(job: Path, results: dict) -> dict | None:
    """The settings that determine a job's results (its job.json's ``identity``, the seed
    aside), flat: ``{"lm.lr": 0.001, ...}``; a job that reused another's, that job's."""
    source = job.parent / results[REUSED_FROM] if results.get(REUSED_FROM) else job
    try:
        identity = read_json(source / JOB_FILE).get("identity") or {}
    except (OSError, ValueError):  # older jobs, or one killed while writing it
        return None
    identity = {k: v for k, v in identity.items() if k != "seed"}
    return _flat(identity)


def _flat(node, where: str = "") -> dict:
    if isinstance(node, dict) and node:
        return {k: v for key, sub in node.items() for k, v in _flat(sub, f"{where}{key}.").items()}
    value = json.dumps(node, sort_keys=True) if isinstance(node, dict | list) else node
    return {where[:-1]: value}


def _split_settings(rows: list[dict], settings: dict[str, dict]) -> list[dict]:
    """``rows`` with a column ``cfg.<key>`` for each setting that splits a grid cell (CELL):
    complete jobs of one cell that differ in it are not seeds of one setting. A setting that
    follows from the cell and the settings taken before it (every ``lm.*`` of an ``lm`` name)
    adds no column; ``*.name`` keys and shallower keys are taken first."""
    done = [r for r in rows if r.get(STATUS) == COMPLETE and not r.get(REUSED_FROM)]
    if not done:
        return rows
    cells = [tuple(str(r.get(f"job/{c}", r.get(c))) for c in CELL) for r in done]
    groups = len(set(cells))
    keys = sorted({k for r in done for k in settings.get(r["job_dir"], {})},
                  key=lambda k: (not k.endswith(".name"), k.count("."), k))  # fmt: skip
    split = []
    for key in keys:
        more = [(*cell, str(settings.get(r["job_dir"], {}).get(key)))
                for cell, r in zip(cells, done, strict=True)]  # fmt: skip
        if len(set(more)) > groups:
            split.append(key)
            cells, groups = more, len(set(more))
    return [
        {**r, **{SETTING + k: settings.get(r["job_dir"], {}).get(k) for k in split}} for r in rows
    ]


def _failure(job: Path) -> str:
    """Why a job folder holds no job.json: the last error its log names (caplm logs a refused
    config there), else what the folder lacks."""
    errors = [
        line.split("] - ", 1)[-1]
        for log in sorted(job.glob("*.log"))
        for line in log.read_text(errors="replace").splitlines()
        if "][ERROR]" in line
    ]
    return errors[-1] if errors else f"no {JOB_FILE}: it stopped before its work began"


def _job_overrides(job: Path, results: dict | None) -> frozenset[str]:
    hydra_file = job / ".hydra" / "overrides.yaml"
    if hydra_file.exists():
        try:
            return frozenset(yaml.safe_load(hydra_file.read_text()) or [])
        except (yaml.YAMLError, TypeError):
            pass
    return frozenset((results or {}).get(OVERRIDES) or [])


def _tidy(rows: list[dict]) -> pd.DataFrame:
    def value(v):
        if isinstance(v, list) and all(isinstance(s, str) for s in v):
            return " ".join(v)  # overrides read best as a command line
        return json.dumps(v) if isinstance(v, (list, dict)) else v

    df = pd.DataFrame([{column(k): value(v) for k, v in r.items()} for r in rows])
    _per_word_from_corrected(df)
    first = [c for c in FIRST_COLUMNS if c in df]
    at = first.index("seed") if "seed" in first else len(first)
    first[at:at] = [c for c in df if c.startswith(SETTING)]  # the cell's settings, after CELL
    df = df[first + [c for c in df.columns if c not in first]]
    order = [c for c in (*CELL, *(c for c in df if c.startswith(SETTING)), "seed") if c in df]
    return df.sort_values(order, na_position="first", kind="stable").reset_index(drop=True)


def _per_word_from_corrected(df: pd.DataFrame) -> None:
    """Results written before per-word perplexity existed: a word vocabulary's per-word
    perplexity is its corrected one, so fill it in from that."""
    for col in [c for c in df.columns if "_pplx_corrected_" in c]:
        per_word = col.replace("_pplx_corrected_", "_pplx_per_word_")
        if per_word not in df:
            df[per_word] = df[col]
        else:
            df[per_word] = df[per_word].fillna(df[col])


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
    hydra = (yaml.safe_load(sweep_file.read_text()) or {}).get("hydra") or {}
    sweeper = hydra.get("sweeper") or {}
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        raise ValueError(f"sweeper {sweeper.get('_target_')!r} is not Hydra's basic sweeper")
    # As BasicSweeper does: config params first, then the command line (which wins).
    args = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    args += (hydra.get("overrides") or {}).get("task") or []
    return [frozenset(job) for job in sweep_jobs(args)]


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
