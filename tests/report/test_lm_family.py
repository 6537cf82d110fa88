"""The report's "Does the LM family change the answer?" section, on synthetic sweeps."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from caplm.report import scan
from caplm.report.lm_family import family_correlations, family_verdicts, spearman_rows
from caplm.report.markdown import write_report
from caplm.results import COMPLETE, capgen_key, metric_key, pplx_key
from tests.report.test_report import fake_results, write_sweep

CIDER, LM_PPLX, FAMILY = (
    metric_key("CIDEr"),
    pplx_key("lm", "captest", "per_word"),
    capgen_key("arch"),
)
CELLS = [("captions", -1.0), ("captions", 0.0), ("sotu", -1.0), ("sotu", 0.0), ("news", 0.0)]
PPLX = [40.0, 25.0, 400.0, 300.0, 150.0]


def _jobs(families=("rnn", "transformer"), seeds=(1, 2), data=("shapes",)) -> pd.DataFrame:
    """Better LMs transfer better for the RNN (CIDEr falls with perplexity) and worse for the
    Transformer (CIDEr rises with it), in every data set and transfer mode."""
    rows = []
    for d in data:
        for family in families:
            for mode in ("init", "frozen"):
                for (corpus, e), pplx in zip(CELLS, PPLX, strict=True):
                    for seed in seeds:
                        sign = -1 if family == "rnn" else 1
                        cider = 0.5 + sign * 1e-4 * pplx + 1e-3 * seed
                        rows.append({"status": COMPLETE, "data": d, "corpus": corpus,
                                     "transfer": mode, "size_exponent": e, "seed": seed,
                                     "lm_max_epochs": 100, FAMILY: family,
                                     LM_PPLX: pplx * (1 + 0.01 * seed),
                                     CIDER: cider})  # fmt: skip
    return pd.DataFrame(rows)


def test_rank_correlations_per_family_and_their_paired_difference():
    table = family_correlations(_jobs(data=("shapes", "scenes")))
    assert len(table) == 2 * 2 * 2  # data sets x modes x families
    rnn = table[table["family"] == "rnn"]
    tf = table[table["family"] == "transformer"]
    assert (rnn["kendall_tau"] == -1).all() and (tf["kendall_tau"] == 1).all()
    assert np.allclose(rnn["spearman_rho"], -1) and np.allclose(tf["spearman_rho"], 1)
    assert (table["n"] == len(CELLS)).all()
    assert rnn["vs"].isna().all() and rnn["tau_diff"].isna().all()
    assert (tf["vs"] == "rnn").all() and (tf["tau_diff"] == 2).all()
    assert np.allclose(tf["rho_diff"], 2)
    for stat in ("kendall", "spearman", "tau_diff", "rho_diff"):
        lo, hi = table[f"{stat}_lo"].dropna(), table[f"{stat}_hi"].dropna()
        assert len(lo) and (lo <= hi).all()
    assert (tf["tau_diff_lo"] > 0).all()  # the families answer differently, clearly
    verdicts = family_verdicts(table)
    assert len(verdicts) == 4 and all("the answer differs" in v for v in verdicts)


def test_only_cells_both_families_ran_are_paired():
    df = _jobs()
    df = df[~((df[FAMILY] == "transformer") & (df["corpus"] == "news"))]
    table = family_correlations(df)
    assert (table["n"] == len(CELLS) - 1).all()


def test_the_same_family_twice_leaves_no_clear_difference():
    df = _jobs()
    noisy = df[FAMILY] == "transformer"
    df.loc[noisy, CIDER] = 0.5 - 1e-4 * df.loc[noisy, LM_PPLX]  # the RNN's answer
    table = family_correlations(df)
    tf = table[table["family"] == "transformer"]
    assert (tf["tau_diff"] == 0).all()
    assert (tf["tau_diff_lo"] <= 0).all() and (tf["tau_diff_hi"] >= 0).all()
    assert all("no clear difference" in v for v in family_verdicts(table))


def test_one_family_or_no_family_gives_nothing():
    assert family_correlations(_jobs(families=("rnn",))).empty
    assert family_correlations(_jobs().drop(columns=[FAMILY])).empty


def test_spearman_rows_is_scipys_rho_with_ties():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 4, (20, 7)).astype(float), rng.normal(size=(20, 7))
    ours = spearman_rows(x, y)
    for row in range(20):
        if np.ptp(x[row]):
            assert ours[row] == pytest.approx(stats.spearmanr(x[row], y[row])[0])
        else:
            assert np.isnan(ours[row])


def _family_sweep(root, families):
    jobs = []
    for family in families:
        for corpus, e in (("captions", -1.0), ("captions", 0.0), ("sotu", -1.0), ("sotu", 0.0)):
            for seed in (1, 2):
                r = fake_results(corpus, "frozen", e, seed)
                r[FAMILY] = family
                if family == "transformer":  # the other way round: worse LMs transfer better
                    r[CIDER] = 0.3 + r[LM_PPLX] / 1000
                ov = [f"lm={family}", f"corpus={corpus}", f"size_exponent={e:g}", f"seed={seed}"]
                jobs.append((ov, r))
    write_sweep(root, "lm_family", {}, [], jobs)
    return scan(root)


def test_the_report_has_the_section_only_with_two_families(tmp_path):
    verdicts = write_report(_family_sweep(tmp_path / "two", ["rnn", "transformer"]), tmp_path / "a")
    md = (tmp_path / "a" / "report.md").read_text()
    assert "## Does the LM family change the answer?" in md
    assert "**flickr8k**:" in md and "| frozen | transformer | 4 |" in md
    assert (tmp_path / "a" / "family_correlations.csv").is_file()
    assert [v for v in verdicts if v.startswith("flickr8k / frozen: ")] == [
        "flickr8k / frozen: no clear difference: tau(transformer) - tau(rnn) = +1.67 "
        "[+0.00, +2.00] includes 0 (n = 4 cells)"  # 4 cells: resamples with ties reach 0
    ]

    write_report(_family_sweep(tmp_path / "one", ["rnn"]), tmp_path / "b")
    md = (tmp_path / "b" / "report.md").read_text()
    assert "LM family" not in md and not (tmp_path / "b" / "family_correlations.csv").exists()


def test_a_cell_setting_missing_for_one_family_still_pairs_the_cells():
    # e.g. a word LM beside a Hugging Face LM: a setting only one family's jobs record (NaN in
    # the others') is part of the cell; pandas 3's astype(str) kept NaN and the join failed
    jobs = _jobs()
    jobs["lm"] = jobs[FAMILY].map({"rnn": "small"})  # NaN for the transformer jobs
    table = family_correlations(jobs)
    assert len(table) == 2 * 2 and (table["n"] == 0).all()  # no cell that both families ran
    jobs["lm"] = np.nan
    table = family_correlations(jobs)
    assert (table["n"] == len(CELLS)).all()  # NaN for both: the same cell
