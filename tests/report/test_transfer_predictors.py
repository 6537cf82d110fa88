"""Judging transferability scores against perplexity on a sweep's own results."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from caplm.report import main
from caplm.report import transfer_predictors as judge_mod
from caplm.results import RESULTS_FILE, column, lm_key, metric_key, pplx_key, transferability_key

CIDER = column(metric_key("CIDEr"))
LOGME = column(transferability_key("logme"))
PPLX = column(pplx_key("lm", "capval"))


def test_kendall_regret_and_the_paired_bootstrap_by_hand():
    y = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    perfect, reversed_ = y * 10, -y
    assert judge_mod.kendall(perfect, y) == pytest.approx(1.0)
    assert judge_mod.kendall(reversed_, y) == pytest.approx(-1.0)
    assert np.isnan(judge_mod.kendall(np.ones(5), y))  # a constant ranks nothing
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 30).astype(float), rng.normal(size=30)  # with ties
    assert judge_mod.kendall(a, b) == pytest.approx(stats.kendalltau(a, b).statistic)
    diff, lo, hi = judge_mod.paired_tau_difference(perfect, reversed_, y)
    # every resample with two distinct points gives 1 - (-1) = 2; the rest are left out
    assert (diff, lo, hi) == pytest.approx((2.0, 2.0, 2.0))
    assert judge_mod.top1_regret(np.array([1.0, 3.0, 2.0]), np.array([0.5, 0.2, 0.9])) == (
        pytest.approx(0.7)
    )
    assert judge_mod.top1_regret(np.array([3.0, 3.0, 1.0]), np.array([0.5, 0.3, 0.9])) == (
        pytest.approx(0.5)  # a tie at the top: the mean of the tied
    )


def _sweep(score_noise: float, seeds=(1, 2), seed=0, scores=True) -> pd.DataFrame:
    """Jobs of one data set: 8 LMs x init/frozen x seeds. CIDEr follows a hidden quality;
    LogME tracks it up to ``score_noise``; perplexity is unrelated to it."""
    rng = np.random.default_rng(seed)
    cells = [(c, e) for c in ("captions", "extra", "news") for e in (-1, 0, 1)][:8]
    quality = dict(zip(cells, rng.permutation(len(cells)) / len(cells), strict=True))
    pplx = dict(zip(cells, rng.uniform(10, 100, len(cells)), strict=True))
    rows = []
    for (corpus, e), q in quality.items():
        for s in seeds:
            logme = q + score_noise * rng.normal()
            for mode in ("init", "frozen"):
                row = {"job_dir": f"{corpus},{e},{mode},{s}", "data": "scenes_lab",
                       "corpus": corpus, "transfer": mode, "size_exponent": e,
                       "lm_max_epochs": 100, "seed": s, "status": "complete",
                       CIDER: 0.1 + 0.1 * q + 0.005 * rng.normal() + (0.01 if mode == "init" else 0),
                       PPLX: pplx[(corpus, e)] * (1 + 0.01 * s),
                       column(pplx_key("lm", "capval", "plain")): pplx[(corpus, e)] * 1.2,
                       column(lm_key("corpus_size")): 1500 * 10**e,
                       column(lm_key("in_domain")): corpus != "news",
                       column(lm_key("cache_key")): f"{corpus}{e}{s}"}  # fmt: skip
                if scores:
                    row.update({LOGME: logme, column(transferability_key("logme_random")): -1.0,
                                column(transferability_key("logme_text")): logme - 0.1,
                                column(transferability_key("hscore")): 5 + rng.normal(),
                                column(transferability_key("leep")): -3 + rng.normal()})  # fmt: skip
                rows.append(row)
    # a job without an LM: no LM columns, so no judgement
    rows.append({**rows[0], "transfer": "none", "job_dir": "none", LOGME: np.nan,
                 column(lm_key("cache_key")): np.nan})  # fmt: skip
    return pd.DataFrame(rows)


def test_a_score_that_tracks_cider_beats_perplexity_and_the_verdict_says_so():
    df = _sweep(score_noise=0.01)
    judged = judge_mod.judge(df)
    overall = judged[judged["transfer"] == judge_mod.ALL_MODES].set_index("predictor")
    assert overall.loc["LogME", "n"] == 32  # 8 LMs x 2 seeds x 2 modes; the none job is out
    assert overall.loc["LogME", "tau"] > 0.7
    assert overall.loc["perplexity", "tau"] < overall.loc["LogME", "tau"] - 0.2
    assert overall.loc["LogME", "diff_lo"] > 0
    assert overall.loc["LogME", "noise_ceiling"] > 0.7  # the two seeds agree on the ranking
    assert set(judged["transfer"]) == {"init", "frozen", judge_mod.ALL_MODES}
    (verdict,) = judge_mod.verdicts(judged, df)
    assert verdict.startswith("scenes_lab: yes: LogME predicts transfer better than perplexity")
    assert "95% paired bootstrap interval" in verdict and "n = 32 jobs" in verdict
    per_mode = verdict.split(
        "per mode, the scores that beat perplexity (tau difference, interval): "
    )
    assert per_mode[1].startswith("frozen: LogME +") and "; init: LogME +" in per_mode[1]


def test_a_score_of_noise_does_not_beat_perplexity():
    df = _sweep(score_noise=5.0, seed=1)
    (verdict,) = judge_mod.verdicts(judge_mod.judge(df), df)
    assert "yes" not in verdict.split(":")[1]
    assert "predicts transfer" in verdict


def test_one_seed_has_no_noise_ceiling_and_too_few_lms_are_named():
    df = _sweep(0.01, seeds=(1,))
    judged = judge_mod.judge(df)
    assert judged["noise_ceiling"].isna().all()
    assert "n/a (one seed)" in judge_mod.verdicts(judged, df)[0]
    few = df[df["corpus"] == "captions"].iloc[:4]  # 2 LMs x 2 modes
    few = few[few["transfer"] == "init"]
    assert judge_mod.verdicts(judge_mod.judge(few), few) == [
        "scenes_lab: too few scored LMs to judge (n = 2; need 3)"
    ]


def test_missing_scores_are_left_out_not_turned_into_nan_verdicts():
    df = _sweep(0.01)
    df.loc[df.index[:6], LOGME] = np.nan  # LMs that could not be scored
    judged = judge_mod.judge(df)
    row = judged[(judged["transfer"] == "all") & (judged["predictor"] == "LogME")].iloc[0]
    assert row["n"] == 32 - 6 and np.isfinite(row["tau"])
    unscored = _sweep(0.01, scores=False)
    assert judge_mod.judge(unscored).empty
    assert "python -m caplm.transferability" in judge_mod.verdicts(judge_mod.judge(unscored),
                                                                   unscored)[0]  # fmt: skip


def _write(tmp_path, df: pd.DataFrame):
    for row in df.to_dict("records"):
        job = tmp_path / "sweep" / row.pop("job_dir")
        job.mkdir(parents=True)
        results = {(k if "/" in k else f"job/{k}"): (None if pd.isna(v) else v)
                   for k, v in row.items()}  # fmt: skip
        (job / RESULTS_FILE).write_text(json.dumps(results))
    return tmp_path / "sweep"


def test_the_report_has_the_section_the_table_and_the_plot(tmp_path):
    sweep = _write(tmp_path, _sweep(0.01))
    assert main([str(sweep), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "report.md").read_text()
    section = md.split("## Which LM will transfer best?")[1].split("\n## ")[0]
    assert "**scenes_lab: yes: LogME predicts transfer better than perplexity" in section
    assert "**scenes_lab, transfer = all** (noise ceiling tau" in section
    assert "| LogME | 32 |" in section
    assert "16 of 16 LMs have a higher LogME than a random, untrained prefix" in section
    assert (tmp_path / "out" / "transferability_vs_cider.png").stat().st_size > 10_000
    assert "transferability_vs_cider.png" in md
    judged = pd.read_csv(tmp_path / "out" / "transferability_judgement.csv")
    assert set(judged["predictor"]) == {p[0] for p in judge_mod.PREDICTORS}


def test_the_report_without_scores_says_how_to_get_them(tmp_path):
    sweep = _write(tmp_path, _sweep(0.01, scores=False))
    assert main([str(sweep), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "report.md").read_text()
    assert "no transferability scores in these results: run `python -m caplm.transferability" in md
    assert not (tmp_path / "out" / "transferability_judgement.csv").exists()
