"""The report's 'Do robust LMs transfer better?' section (caplm.report.robust_transfer)."""

import pandas as pd
import pytest

from caplm.report import scan
from caplm.report.columns import LM_PPLX
from caplm.report.markdown import write_report
from caplm.report.robust_transfer import label, robust_cells, robust_correlations
from caplm.results import metric_key, pplx_key, robust_key
from tests.report.test_report import fake_results, write_sweep

#: the clean predictor is the report's LM perplexity (per word: the corrected one for word LMs)
CIDER, CLEAN = metric_key("CIDEr"), LM_PPLX
ADV = pplx_key("lm", "captest_perturbed_adversarial")
#: robust setting -> (clean pplx, adversarial pplx, CIDEr gain over none): the more robust
#: LMs have the higher clean but lower perturbed perplexity, and transfer better.
LMS = {"none": (10.0, 40.0, 0.00), "adversarial=0.02": (11.0, 30.0, 0.02),
       "adversarial=0.05": (12.0, 25.0, 0.04), "adversarial=0.1": (13.0, 20.0, 0.06)}  # fmt: skip


def _sweep(root, seeds=(1, 2, 3)):
    jobs = []
    for seed in seeds:
        none = fake_results("captions", "none", 0.0, seed)
        jobs.append((["transfer=none", f"seed={seed}"], none))
        for setting, (clean, adv, gain) in LMS.items():
            r = fake_results("captions", "init", 0.0, seed)
            strength = float(setting.split("=")[1]) if "=" in setting else 0.0
            r.update({robust_key("word_dropout"): 0.0, robust_key("noise"): 0.0,
                      robust_key("adversarial"): strength, "lm/dedup": "none"})  # fmt: skip
            r[CLEAN], r[ADV] = clean, adv + seed * 0.1
            r[CIDER] = none[CIDER] + gain + 0.001 * seed
            jobs.append((["transfer=init", f"lm.fit.robust={setting}", f"seed={seed}"], r))
    write_sweep(root, "robust_transfer", {}, [], jobs)
    return scan(root)


def test_labels_name_the_robust_training():
    row = pd.Series({robust_key("word_dropout"): 0.1, robust_key("noise"): 0.0,
                     robust_key("adversarial"): 0.05})  # fmt: skip
    assert label(row) == "word_dropout=0.1+adversarial=0.05"
    assert label(pd.Series({robust_key(k): 0.0 for k in ("word_dropout", "noise")})) == "none"
    assert label(pd.Series({"transfer": "none"})) is None


def test_cells_pair_each_robust_lm_with_no_transfer_and_rank_the_predictors(tmp_path):
    sweep = _sweep(tmp_path / "sweep")
    cells = robust_cells(sweep.table)
    assert sorted(cells["robust"]) == sorted(LMS)
    for row in cells.itertuples():
        assert row.n == 3 and row.effect == pytest.approx(
            LMS[row.robust][2] + 0.002, abs=1e-9
        )  # + mean 0.001 x seed
    corr = robust_correlations(cells).set_index("predictor")
    assert corr.loc["clean", "rho"] == pytest.approx(1.0)  # worse clean pplx, more CIDEr
    assert corr.loc["adversarial", "rho"] == pytest.approx(-1.0)
    assert corr.loc["adversarial", "n"] == 4

    verdicts = write_report(sweep, tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Do robust LMs transfer better?" in md
    assert (
        "| flickr8k | 0 | adversarial=0.05 | none | init | 3 | +0.042 [+0.041, +0.043] | 12 | 25.2 |"
        in md
    )
    line = [v for v in verdicts if v.startswith("flickr8k / init: rho(CIDEr, LM pplx)")]
    assert line == ["flickr8k / init: rho(CIDEr, LM pplx) clean +1.00 [+1.00, +1.00]; "
                    "adversarial -1.00 [-1.00, -1.00] -> no perturbed perplexity ranks CIDEr "
                    "where clean does not"]  # fmt: skip
    assert (tmp_path / "out" / "robust_cells.csv").is_file()


def test_a_plain_sweep_has_no_robust_section(tmp_path):
    jobs = [([f"transfer={t}", f"seed={s}"], fake_results("captions", t, 0.0, s))
            for t in ("none", "init") for s in (1, 2)]  # fmt: skip
    write_sweep(tmp_path / "plain", "transfer", {}, [], jobs)
    write_report(scan(tmp_path / "plain"), tmp_path / "out")
    assert "robust" not in (tmp_path / "out" / "report.md").read_text().lower()
