"""The study's own numbers beside caplm's: Tanti, Gatt & Camilleri (2019) on Flickr8k.

``study_results.csv`` (package data) holds the study's per-cell means over its 5 runs, read
from the authors' result files; the study ran on Flickr8k only, so a sweep is compared only
where its caption data is Flickr8k. ``study_cell`` says which of the study's cells a caplm
job sits in, ``MEASURES`` which study column stands beside which results key, and
``study_comparison`` averages caplm's seeds per cell and puts the study's value and the
ratio beside each measure.

The numbers compare only when caplm ran as the study did: its tokenisation
(``data.normaliser=study``) and its hyper-parameters.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from importlib import resources

import pandas as pd

from caplm.models.transfer.modes import BASELINE, CONTROL, WITH_LM
from caplm.report.columns import cell_columns
from caplm.report.sweep import unique_complete
from caplm.results import capgen_key, div_key, lm_key, metric_key, pplx_key, ret_key

STUDY_FILE = "study_results.csv"
#: The caption dataset the study ran on (caplm's ``data.name``).
STUDY_DATA = "flickr8k"
#: caplm's LM corpus names -> the study's ``lm_corpus`` (the in-domain corpus is Flickr8k's
#: own training captions, ``captions`` in caplm).
STUDY_CORPORA = {"captions": "flickr8k", "flickr8k": "flickr8k", "mscoco": "mscoco", "lm1b": "lm1b"}

#: The study's cell of caplm's no-transfer baseline: its generator whose LM was trained for 0
#: epochs and fine-tuned (an untrained prefix, trained with the rest), in-domain, e = 0.
NO_TRANSFER = ("partialtraining", "flickr8k", "init", 0.0, 0)

#: The measures compared: (study column, caplm results key, label). ``gen_test_geomean_pplx``
#: is taken to be OOV-corrected, like the study's LM perplexity: an assumption, since the
#: study's file does not say plain or corrected. Retrieval R@k are fractions on both sides.
MEASURES = (
    ("BLEU_4", metric_key("BLEU-4"), "BLEU-4"),
    ("METEOR", metric_key("METEOR"), "METEOR"),
    ("ROUGE_L", metric_key("ROUGE_L"), "ROUGE-L"),
    ("CIDEr", metric_key("CIDEr"), "CIDEr"),
    ("SPICE", metric_key("SPICE"), "SPICE"),
    ("lm_val_geomean_pplx_corrected", pplx_key("lm", "val", "corrected"), "LM val pplx"),
    ("lm_caption_test_geomean_pplx_plain", pplx_key("lm", "captest", "plain"), "LM captest pplx"),
    ("gen_test_geomean_pplx", pplx_key("capgen", "test", "corrected"), "gen. test pplx"),
    ("gen_vocab_used", div_key("vocab_used"), "vocab used"),
    ("gen_unique_caption_frac", div_key("unique_frac"), "unique frac"),
    ("R@1_frac", ret_key("R@1"), "R@1"),
    ("R@10_frac", ret_key("R@10"), "R@10"),
    ("median_rank", ret_key("median_rank"), "median rank"),
    ("lm_epochs_trained", lm_key("epochs"), "LM epochs"),
    ("gen_epochs", capgen_key("epochs"), "gen. epochs"),
)
#: The measures report.md shows (labels of MEASURES); study_comparison.csv has them all.
HEADLINE = ("CIDEr", "METEOR", "BLEU-4", "LM val pplx")
#: study_comparison's columns, after the grid cell's (CELL).
COMPARISON = (
    "study_experiment",
    "measure",
    "key",
    "caplm_mean",
    "caplm_std",
    "n_seeds",
    "study_mean",
    "study_runs",
    "ratio",
)


@functools.cache
def _study_table() -> pd.DataFrame:
    source = resources.files("caplm.report").joinpath(STUDY_FILE)
    with source.open("r", encoding="utf-8") as f:
        return pd.read_csv(f)


def study_results() -> pd.DataFrame:
    """The study's per-cell means (a copy of the packaged ``study_results.csv``)."""
    return _study_table().copy()


def on_study_data(table: pd.DataFrame) -> bool:
    """Whether any job of a sweep table ran on the study's caption dataset (Flickr8k)."""
    return "data" in table and bool((table["data"] == STUDY_DATA).any())


def study_cell(job: Mapping) -> tuple | None:
    """The study's cell a caplm job (a row of the sweep table) sits in, or None.

    - Only jobs on Flickr8k (``data``) match: the study ran nothing else.
    - ``random_frozen``, whatever its corpus and exponent: ``("randomrnn",)``.
    - ``init``/``frozen`` of an experiment whose name has "partial" (LMs stopped after
      ``lm_max_epochs`` epochs): ``("partialtraining", lm_corpus, transfer, size_exponent,
      lm_max_epochs)``. The study has these for the in-domain corpus at exponent 0, k 0..15
      (its "earlystop" rows for k 0..13, "noearlystop" for 14 and 15).
    - other ``init``/``frozen`` jobs, the main grid (``lm_max_epochs`` ignored: the study
      stopped early): ``("langmodtrans", lm_corpus, transfer, size_exponent)``.

    - ``none`` (no transfer): the study's generator with an LM of 0 epochs, fine-tuned
      (``NO_TRANSFER``).

    ``lm_corpus`` is the study's name for the job's corpus (``STUDY_CORPORA``); a corpus the
    study did not use matches nothing. A key the study has no row for
    (e.g. the in-domain corpus at exponent 0.5) matches nothing either.
    """
    transfer = job.get("transfer")
    if job.get("data") != STUDY_DATA:
        return None
    if transfer == CONTROL:
        return ("randomrnn",)
    if transfer == BASELINE:  # the study's no-transfer generator: an LM of 0 epochs, fine-tuned
        return NO_TRANSFER
    corpus = STUDY_CORPORA.get(job.get("corpus"))
    if transfer not in WITH_LM or corpus is None or _missing(job.get("size_exponent")):
        return None
    cell = (corpus, transfer, float(job["size_exponent"]))
    if "partial" not in str(job.get("experiment", "")):
        return ("langmodtrans", *cell)
    epochs = job.get("lm_max_epochs")
    return None if _missing(epochs) else ("partialtraining", *cell, int(epochs))


def _study_row_cell(row: Mapping) -> tuple:
    """``study_cell``'s key for a row of the study's table."""
    experiment = row["experiment"]
    if experiment == "randomrnn":
        return ("randomrnn",)
    cell = (row["lm_corpus"], row["transfer"], float(row["size_exponent"]))
    if experiment == "langmodtrans":
        return ("langmodtrans", *cell)
    if experiment.startswith("partialtraining"):
        return ("partialtraining", *cell, int(row["lm_max_epochs"]))
    raise ValueError(f"{STUDY_FILE}: unknown experiment {experiment!r}")


@functools.cache
def _study_cells() -> dict[tuple, int]:
    """The study's cells -> their row in the study's table (one row per cell)."""
    cells = {}
    for i, row in enumerate(_study_table().to_dict("records")):
        cell = _study_row_cell(row)
        if cell in cells:
            raise ValueError(f"{STUDY_FILE}: two rows for the cell {cell}")
        cells[cell] = i
    return cells


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def study_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """caplm's mean over seeds beside the study's, per matched cell and measure.

    Complete jobs count, each distinct result once (``unique_complete``); jobs are grouped
    by their grid cell (``CELL``) and the study's cell they match (``study_cell``). One row
    per group and measure of ``MEASURES``, with the cell's columns, ``study_experiment``,
    ``measure`` (the label), ``key`` (caplm's results key), ``caplm_mean``, ``caplm_std``
    (sample std, blank for n < 2), ``n_seeds`` (jobs with a value), ``study_mean``,
    ``study_runs`` and ``ratio`` (caplm / study). A measure caplm did not record (a column
    absent or null, e.g. SPICE skipped) or the study lacks is left blank. Rows follow the
    study's table. No row when nothing ran on Flickr8k.
    """
    done = unique_complete(table)
    keys = cell_columns(done)
    columns = [*keys, *COMPARISON]
    if not len(done):
        return pd.DataFrame(columns=columns)
    where = _study_cells()
    matched = done.assign(_row=[where.get(study_cell(job)) for job in done.to_dict("records")])
    matched = matched[matched["_row"].notna()]
    study = _study_table()
    rows = []
    for (*_, row), jobs in matched.groupby([*keys, "_row"], dropna=False, sort=False):
        cell = {c: jobs[c].iloc[0] for c in keys}
        rows += [_compare(cell, jobs, study.iloc[int(row)], measure) for measure in MEASURES]
    out = pd.DataFrame(rows, columns=[*columns, "_row"])
    return out.sort_values("_row", kind="stable").drop(columns="_row").reset_index(drop=True)


def _compare(cell: dict, jobs: pd.DataFrame, study_row: pd.Series, measure: tuple) -> dict:
    """One row of study_comparison: a measure of one cell, ours beside the study's."""
    study_column, key, label = measure
    ours = jobs[key] if key in jobs else pd.Series(dtype=float)
    ours = pd.to_numeric(ours, errors="coerce").dropna()
    mean, theirs = ours.mean(), float(study_row[study_column])
    ratio = mean / theirs if len(ours) and not math.isnan(theirs) and theirs != 0 else math.nan
    return {
        **cell,
        "study_experiment": study_row["experiment"],
        "measure": label,
        "key": key,
        "caplm_mean": mean,
        "caplm_std": ours.std(),
        "n_seeds": len(ours),
        "study_mean": theirs,
        "study_runs": int(study_row["runs"]),
        "ratio": ratio,
        "_row": study_row.name,
    }
