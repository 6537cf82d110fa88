"""The study's own numbers beside caplm's: Tanti, Gatt & Camilleri (2019) on Flickr8k.

``study_results.csv`` (package data) holds the study's per-cell means over its 5 runs, read
from the authors' result files; the study ran on Flickr8k only, so a sweep is compared only
where its caption data is Flickr8k. ``study_cell`` says which of the study's cells a caplm
job sits in, ``MEASURES`` which study column stands beside which results key, and
``study_comparison`` averages caplm's seeds per cell and puts the study's value and the
ratio beside each measure.

The numbers compare only when caplm ran as the study did: its tokenisation
(``data.normaliser=study``) and its hyper-parameters (``conf/study/<corpus>.yaml``).
``departures`` names each setting of a job (its job.json) that differs from those, and
``study_comparison`` lists them per cell. An LM-only job (``python -m caplm.lm``) is compared
on the LM measures with the mean of the study's two transfer modes' LMs of its cell.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from importlib import resources

import pandas as pd

from caplm import CONF_DIR
from caplm.models.transfer.modes import BASELINE, CONTROL
from caplm.report.columns import cell_columns
from caplm.report.sweep import unique_complete
from caplm.results import capgen_key, div_key, lm_key, metric_key, pplx_key, ret_key

STUDY_FILE = "study_results.csv"
#: The caption dataset the study ran on (caplm's ``data.name``).
STUDY_DATA = "flickr8k"
#: caplm's LM corpus names -> the study's ``lm_corpus`` (the in-domain corpus is Flickr8k's
#: own training captions, ``captions`` in caplm).
STUDY_CORPORA = {"captions": "flickr8k", "flickr8k": "flickr8k", "mscoco": "mscoco", "lm1b": "lm1b"}

#: ``job/transfer`` of an LM-only job (``python -m caplm.lm``).
LM_ONLY = "lm_only"
#: The study's settings of a caplm LM corpus's cell (``conf/study/<file>.yaml``); the
#: generator-only modes (no corpus) are compared with the in-domain cell's.
STUDY_SETTINGS = {
    "captions": "flickr8k",
    "flickr8k": "flickr8k",
    "mscoco": "mscoco",
    "lm1b": "lm1b",
}
#: Settings compared with the study's (flat keys of a job's job.json, by prefix).
COMPARED = ("lm.", "model.", "generation.", "data.normaliser", "data.min_word_freq",
            "data.max_caption_len")  # fmt: skip
#: A partial-training cell's LM stops after lm_max_epochs on purpose.
PARTIAL_FIT = ("lm.fit.max_epochs", "lm.fit.early_stopping", "lm.fit.patience")

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
#: What an LM-only job is compared on: the LM's measures.
LM_MEASURES = tuple(m for m in MEASURES if m[1].startswith("lm/"))
#: The measures report.md shows (labels of MEASURES); study_comparison.csv has them all.
HEADLINE = ("CIDEr", "METEOR", "BLEU-4", "LM val pplx")
#: study_comparison's columns, after the grid cell's (CELL).
COMPARISON = (
    "departs_from_study",
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
def _packaged() -> pd.DataFrame:
    source = resources.files("caplm.report").joinpath(STUDY_FILE)
    with source.open("r", encoding="utf-8") as f:
        return pd.read_csv(f)


@functools.cache
def _study_table() -> pd.DataFrame:
    """The study's table and, per main-grid cell (corpus, exponent), an ``lm_only`` row: its
    init and frozen rows' means (each mode trained its own LMs), their runs summed."""
    study = _packaged()
    main = study[study["experiment"] == "langmodtrans"]  # its init and frozen rows
    rows = []
    for (corpus, e), group in main.groupby(["lm_corpus", "size_exponent"], sort=False):
        row = group.mean(numeric_only=True)
        row["runs"] = group["runs"].sum()
        rows.append({**row, "experiment": "langmodtrans", "lm_corpus": corpus,
                     "transfer": LM_ONLY, "size_exponent": e})  # fmt: skip
    return pd.concat([study, pd.DataFrame(rows, columns=study.columns)], ignore_index=True)


@functools.cache
def study_settings(name: str) -> dict:
    """The study's settings of one cell, flat (``{"lm.lr": 0.00249, ...}``): ``train``
    composed with ``data=flickr8k +study=<name>``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    hydra = GlobalHydra.instance()
    held = hydra.hydra if hydra.is_initialized() else None  # a Hydra run's: kept
    hydra.clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("train", overrides=["data=flickr8k", f"+study={name}"])
    finally:
        hydra.clear()
        if held is not None:
            hydra.initialize(held)
    groups = {
        g: OmegaConf.to_container(cfg[g], resolve=True) for g in ("lm", "model", "generation")
    }
    groups["data"] = {k: cfg.data[k] for k in ("normaliser", "min_word_freq", "max_caption_len")}
    return _flat(groups)


def _flat(node, where: str = "") -> dict:
    if isinstance(node, dict) and node:
        return {k: v for key, sub in node.items() for k, v in _flat(sub, f"{where}{key}.").items()}
    return {where[:-1]: node}


def departures(settings: Mapping | None, job: Mapping) -> list[str]:
    """The settings of a job (flat, from its job.json) that differ from the study's for its
    cell, each ``key=ours (study: theirs)``; ``None`` settings (no job.json): one line saying
    they are unknown. Names (``lm.name``) and keys the study's settings lack are not compared."""
    if settings is None:
        return ["settings unknown (no job.json)"]
    study = study_settings(STUDY_SETTINGS.get(str(job.get("corpus")), "flickr8k"))
    partial = "partial" in str(job.get("experiment", ""))
    out = []
    for key, ours in sorted(settings.items()):
        if not key.startswith(COMPARED) or key.endswith(".name") or key not in study:
            continue
        if partial and key in PARTIAL_FIT:
            continue
        theirs = study[key]
        same = ours == theirs or (
            _number(ours) and _number(theirs) and math.isclose(ours, theirs, rel_tol=1e-9)
        )
        if not same:
            out.append(f"{key}={ours} (study: {theirs})")
    return out


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def study_results() -> pd.DataFrame:
    """The study's per-cell means (a copy of the packaged ``study_results.csv``)."""
    return _packaged().copy()


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
    if not isinstance(transfer, str) or corpus is None or _missing(job.get("size_exponent")):
        return None
    cell = (corpus, transfer, float(job["size_exponent"]))
    if "partial" not in str(job.get("experiment", "")) or transfer == LM_ONLY:
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


def study_comparison(table: pd.DataFrame, settings: Mapping | None = None) -> pd.DataFrame:
    """caplm's mean over seeds beside the study's, per matched cell and measure.

    Complete jobs count, each distinct result once (``unique_complete``); jobs are grouped
    by their grid cell (``CELL``) and the study's cell they match (``study_cell``). One row
    per group and measure of ``MEASURES``, with the cell's columns, ``study_experiment``,
    ``measure`` (the label), ``key`` (caplm's results key), ``caplm_mean``, ``caplm_std``
    (sample std, blank for n < 2), ``n_seeds`` (jobs with a value), ``study_mean``,
    ``study_runs`` and ``ratio`` (caplm / study). A measure caplm did not record (a column
    absent or null, e.g. SPICE skipped) or the study lacks is left blank. Rows follow the
    study's table. No row when nothing ran on Flickr8k. ``departs_from_study``: the settings
    of the cell's jobs that differ from the study's (:func:`departures`; ``settings``: each
    job's flat settings by ``job_dir``, as ``Sweep.settings``), "; "-joined, blank when none.
    LM-only cells are compared on the LM measures alone (``LM_MEASURES``).
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
        said: dict[str, None] = {}
        for job in jobs.to_dict("records"):
            found = (settings or {}).get(job.get("job_dir"))
            said.update(dict.fromkeys(departures(found, job)))
        cell["departs_from_study"] = "; ".join(said)
        measures = LM_MEASURES if cell.get("transfer") == LM_ONLY else MEASURES
        rows += [_compare(cell, jobs, study.iloc[int(row)], measure) for measure in measures]
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
