import json
import math
import sys
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from caplm.report import scan, write_report
from caplm.report.study import (
    MEASURES,
    on_study_data,
    study_cell,
    study_comparison,
    study_results,
)
from caplm.results import RESULTS_FILE, metric_key, pplx_key, ret_key

CIDER, SPICE, R1 = metric_key("CIDEr"), metric_key("SPICE"), ret_key("R@1")
LM_VAL = pplx_key("lm", "val", "corrected", "geomean")
ROOT = Path(__file__).resolve().parents[2]


def job(corpus, transfer, e, seed, *, data="flickr8k", experiment="paper_grid", epochs=20, **kv):
    """One row of a sweep table (``job/`` keys without their prefix, results keys as is)."""
    row = {
        "experiment": experiment,
        "data": data,
        "corpus": corpus,
        "transfer": transfer,
        "size_exponent": e,
        "lm_max_epochs": epochs,
        "seed": seed,
        "status": "complete",
    }
    return {**row, **kv}


def compared(rows, measure="CIDEr") -> pd.DataFrame:
    """study_comparison of ``rows``, only the rows of one measure."""
    out = study_comparison(pd.DataFrame(rows))
    return out[out["measure"] == measure].reset_index(drop=True)


def one(df: pd.DataFrame, **where) -> pd.Series:
    hit = df
    for column, value in where.items():
        hit = hit[hit[column] == value]
    assert len(hit) == 1, where
    return hit.iloc[0]


def test_study_results_ship_as_package_data():
    packaged = resources.files("caplm.report").joinpath("study_results.csv")
    assert packaged.is_file()
    study = study_results()
    assert len(study) == 59
    row = one(
        study,
        experiment="langmodtrans",
        lm_corpus="flickr8k",
        transfer="frozen",
        size_exponent=-1.0,
    )
    assert row["CIDEr"] == pytest.approx(0.4671) and row["runs"] == 5
    study.loc[:, "CIDEr"] = 0.0  # a copy: the next caller still gets the study's numbers
    assert study_results()["CIDEr"].iloc[0] == pytest.approx(0.4671)
    if sys.version_info >= (3, 11):
        import tomllib

        config = tomllib.loads((ROOT / "pyproject.toml").read_text())
        assert "study_results.csv" in config["tool"]["setuptools"]["package-data"]["caplm.report"]
    columns = set(study.columns)
    assert {study_column for study_column, _, _ in MEASURES} <= columns


def test_study_cell_maps_caplm_corpora_and_modes_to_the_studys():
    assert study_cell(job("captions", "frozen", -1.0, 1)) == (
        "langmodtrans",
        "flickr8k",
        "frozen",
        -1.0,
    )
    assert study_cell(job("flickr8k", "init", 0, 1)) == ("langmodtrans", "flickr8k", "init", 0.0)
    assert study_cell(job("lm1b", "init", 0.5, 1))[1] == "lm1b"
    assert study_cell(job("none", "random_frozen", None, 1)) == ("randomrnn",)
    partial = job("captions", "init", 0.0, 1, experiment="partial_training", epochs=3)
    assert study_cell(partial) == ("partialtraining", "flickr8k", "init", 0.0, 3)
    # no transfer: the study's generator whose LM had 0 epochs, fine-tuned (CIDEr 0.451)
    assert study_cell(job("none", "none", None, 1)) == (
        "partialtraining",
        "flickr8k",
        "init",
        0.0,
        0,
    )
    assert study_cell(job("sotu", "frozen", 0.0, 1)) is None  # a corpus it did not use
    assert study_cell(job("captions", "frozen", 0.0, 1, data="shapes")) is None


def test_main_grid_means_beside_the_studys_with_ratios():
    rows = [
        job("captions", "frozen", -1.0, s, **{CIDER: c, LM_VAL: p})
        for s, c, p in ((1, 0.46, 44.0), (2, 0.47, 46.0), (3, 0.48, 48.0))
    ]
    rows += [job("mscoco", "init", 0.5, s, **{CIDER: c}) for s, c in ((1, 0.40), (2, 0.50))]
    rows += [job("lm1b", "frozen", -1.0, 1, **{CIDER: 0.25})]
    rows += [job("captions", "init", 0.5, 1, **{CIDER: 0.5})]  # the study has no e=0.5 here
    rows += [job("sotu", "frozen", 0.0, 1, **{CIDER: 0.3}), job("none", "none", None, 1)]
    cider = compared(rows)
    assert len(cider) == 4  # 3 LM cells and the no-transfer baseline
    baseline = one(cider, transfer="none")
    assert baseline["study_mean"] == pytest.approx(0.451) and math.isnan(baseline["caplm_mean"])
    frozen = one(cider, corpus="captions", transfer="frozen")
    assert frozen["study_experiment"] == "langmodtrans" and frozen["size_exponent"] == -1.0
    assert frozen["caplm_mean"] == pytest.approx(0.47)
    assert frozen["caplm_std"] == pytest.approx(0.01)
    assert frozen["n_seeds"] == 3 and frozen["study_runs"] == 5
    assert frozen["study_mean"] == pytest.approx(0.4671)
    assert frozen["ratio"] == pytest.approx(0.47 / 0.4671)
    mscoco = one(cider, corpus="mscoco")
    assert mscoco["study_mean"] == pytest.approx(0.4711)
    assert mscoco["ratio"] == pytest.approx(0.45 / 0.4711)
    lm1b = one(cider, corpus="lm1b")
    assert lm1b["study_mean"] == pytest.approx(0.2447) and math.isnan(lm1b["caplm_std"])
    pplx = one(compared(rows, "LM val pplx"), corpus="captions")
    assert pplx["key"] == LM_VAL and pplx["study_mean"] == pytest.approx(46.27)
    assert pplx["ratio"] == pytest.approx(46.0 / 46.27)
    # every measure of the mapping, once per matched cell
    assert len(study_comparison(pd.DataFrame(rows))) == 4 * len(MEASURES)


def test_random_frozen_jobs_match_the_randomrnn_row():
    rows = [
        job("none", "random_frozen", None, s, epochs=None, **{CIDER: c})
        for s, c in ((1, 0.33), (2, 0.35))
    ]
    rows += [job("captions", "random_frozen", 0.0, 3, **{CIDER: 0.34})]  # same study cell
    cider = compared(rows)
    assert set(cider["study_experiment"]) == {"randomrnn"}
    control = one(cider, corpus="none")
    assert control["caplm_mean"] == pytest.approx(0.34) and control["n_seeds"] == 2
    assert control["study_mean"] == pytest.approx(0.3409)
    assert control["ratio"] == pytest.approx(0.34 / 0.3409)
    pplx = one(compared(rows, "LM val pplx"), corpus="none")  # the study has none for it
    assert math.isnan(pplx["study_mean"]) and math.isnan(pplx["ratio"])


def test_partial_training_matches_by_lm_epochs_and_transfer():
    partial = {"experiment": "partial_training"}
    rows = [
        job("captions", "frozen", 0.0, 1, epochs=2, **partial, **{CIDER: 0.40}),
        job("captions", "init", 0.0, 1, epochs=2, **partial, **{CIDER: 0.50}),
        job("captions", "init", 0.0, 1, epochs=14, **partial, **{CIDER: 0.45}),
        job("captions", "frozen", 0.0, 1, epochs=20, **partial, **{CIDER: 0.1}),  # no k=20
        job("captions", "frozen", -1.0, 1, epochs=2, **partial, **{CIDER: 0.1}),  # only e=0
        job("captions", "frozen", 0.0, 1, epochs=2, **{CIDER: 0.47}),  # main grid, same cell
    ]
    cider = compared(rows)
    assert len(cider) == 4
    frozen2 = one(cider, study_experiment="partialtraining_earlystop", transfer="frozen")
    assert frozen2["study_mean"] == pytest.approx(0.4577)
    assert frozen2["ratio"] == pytest.approx(0.40 / 0.4577)
    init2 = one(cider, study_experiment="partialtraining_earlystop", transfer="init")
    assert init2["lm_max_epochs"] == 2 and init2["study_mean"] == pytest.approx(0.4630)
    init14 = one(cider, study_experiment="partialtraining_noearlystop")
    assert init14["transfer"] == "init" and init14["study_mean"] == pytest.approx(0.4746)
    main = one(cider, study_experiment="langmodtrans")
    assert main["caplm_mean"] == pytest.approx(0.47) and main["study_mean"] == pytest.approx(0.4764)


def test_no_comparison_off_flickr8k():
    shapes = [job("captions", "frozen", -1.0, s, data="shapes", **{CIDER: 0.9}) for s in (1, 2)]
    assert not on_study_data(pd.DataFrame(shapes))
    out = study_comparison(pd.DataFrame(shapes))
    assert out.empty and {"study_mean", "ratio", "corpus"} <= set(out.columns)
    mixed = shapes + [job("captions", "frozen", -1.0, 1, **{CIDER: 0.45})]
    assert on_study_data(pd.DataFrame(mixed))
    cider = compared(mixed)
    assert list(cider["data"]) == ["flickr8k"] and cider["caplm_mean"].item() == pytest.approx(0.45)


def test_absent_or_null_measures_are_left_blank():
    rows = [job("captions", "init", 0.0, s, **{CIDER: 0.48, SPICE: None}) for s in (1, 2)]
    out = study_comparison(pd.DataFrame(rows))  # no R@1 column at all, SPICE null
    for measure in ("SPICE", "R@1"):
        row = one(out, measure=measure)
        assert math.isnan(row["caplm_mean"]) and math.isnan(row["ratio"])
        assert row["n_seeds"] == 0 and not math.isnan(row["study_mean"])
    assert one(out, measure="R@1")["key"] == R1
    assert one(out, measure="CIDEr")["ratio"] == pytest.approx(0.48 / 0.4784)


def test_only_complete_distinct_results_are_averaged():
    rows = [job("captions", "frozen", 0.0, s, **{CIDER: 0.46 + 0.02 * s}) for s in (1, 2)]
    rows += [{**job("captions", "frozen", 0.0, 3, **{CIDER: 9.0}), "status": "failed"}]
    rows += [{**rows[0], "reused_from": "0", "seed": 4}]  # an identical job's result, again
    row = compared(rows).iloc[0]
    assert row["n_seeds"] == 2 and row["caplm_mean"] == pytest.approx(0.49)


def write_jobs(root: Path, rows: list[dict]) -> None:
    """A sweep folder: one results.json per row (``job/`` keys as caplm.train writes them)."""
    results_parts = ("lm/", "capgen/", "transfer/")
    for i, row in enumerate(rows):
        results = {k if k.startswith(results_parts) else f"job/{k}": v for k, v in row.items()}
        (root / str(i)).mkdir(parents=True)
        (root / str(i) / RESULTS_FILE).write_text(json.dumps(results))


def test_write_report_puts_the_study_beside_ours(tmp_path):
    grid = [
        job("captions", "frozen", -1.0, s, **{CIDER: c, LM_VAL: p, metric_key("METEOR"): 0.19})
        for s, c, p in ((1, 0.46, 45.0), (2, 0.47, 46.0), (3, 0.48, 47.0))
    ]
    grid += [job("none", "random_frozen", None, 1, epochs=None, **{CIDER: 0.3409})]
    write_jobs(tmp_path / "flickr", grid)
    write_report(scan(tmp_path / "flickr"), tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    section = md[md.index("## The study's numbers beside ours") : md.index("## Plots")]
    assert "`data.normaliser=study`" in section and "hyper-parameters" in section
    assert "| CIDEr ours | CIDEr study | CIDEr ratio | METEOR ours |" in section
    assert (
        "| captions | frozen | -1 | 20 | langmodtrans | 0.470 ± 0.010 (3) | 0.4671 | 1.01 |"
        in section
    )
    assert "| 46.0 ± 1.0 (3) | 46.27 | 0.99 |" in section  # LM val pplx, last columns
    assert "| none | random_frozen |  |  | randomrnn | 0.341 (1) | 0.3409 | 1.00 |" in section
    csv = pd.read_csv(tmp_path / "out" / "study_comparison.csv")
    assert len(csv) == 2 * len(MEASURES)
    spice = one(csv, corpus="captions", measure="SPICE")  # never measured: blank
    assert math.isnan(spice["caplm_mean"]) and spice["study_mean"] == pytest.approx(0.1265)


def test_write_report_says_why_there_is_no_comparison_off_flickr8k(tmp_path):
    write_jobs(
        tmp_path / "shapes", [job("captions", "frozen", -1.0, 1, data="shapes", **{CIDER: 0.9})]
    )
    write_report(scan(tmp_path / "shapes"), tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    expected = (
        "## The study's numbers beside ours\n\n- no comparison: the study ran on flickr8k only"
    )
    assert expected in md and "caption data is shapes." in md
    assert not (tmp_path / "out" / "study_comparison.csv").exists()
