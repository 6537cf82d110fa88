"""Judging transferability scores on a sweep's own results: does any score rank the LMs by the
CIDEr of the generators they became better than LM perplexity does?

The units are the jobs that transferred an LM (one LM and one generator each). For each
predictor (a score, or a baseline: perplexity, corpus size, in-domain), per data set and transfer
mode and over all modes of a data set:

- Kendall's tau-b and the weighted tau (top ranks count more) of the predictor with CIDEr,
  the predictor signed so that higher should mean better (perplexity is negated);
- top-1 regret: the best CIDEr of the group minus the CIDEr of the LM the predictor ranks first;
- tau(predictor) - tau(perplexity) with a paired 95% bootstrap interval (the same resampled
  jobs for both).

The noise ceiling is the mean Kendall tau between the CIDEr of two seeds of the same cells
(corpus, size, LM): how far one run's outcome predicts another's; no score can beat it by
much.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

from caplm.report.summary import BOOTSTRAP, percentile_interval
from caplm.report.sweep import unique_complete
from caplm.results import column, lm_key, metric_key, pplx_key, transferability_key

#: (name, results column, sign): sign +1 when a higher value should mean a better transfer.
PREDICTORS = (
    ("LogME", column(transferability_key("logme")), 1),
    ("LogME text only", column(transferability_key("logme_text")), 1),
    ("H-score", column(transferability_key("hscore")), 1),
    ("LEEP", column(transferability_key("leep")), 1),
    ("perplexity", column(pplx_key("lm", "capval")), -1),
    ("perplexity plain", column(pplx_key("lm", "capval", "plain")), -1),
    ("log corpus size", column(lm_key("corpus_size")), 1),
    ("in-domain", column(lm_key("in_domain")), 1),
)
SCORE_NAMES = ("LogME", "LogME text only", "H-score", "LEEP")
REFERENCE = "perplexity"
RANDOM = column(transferability_key("logme_random"))
TARGET = column(metric_key("CIDEr"))
ALL_MODES = "all"
LM = column(lm_key("cache_key"))
MIN_LMS = 3
CHUNK = 200  # bootstrap resamples per block
#: Cells whose seeds are compared for the noise ceiling.
SEED_CELL = ("data", "corpus", "size_exponent", "lm", "lm_max_epochs")
COLUMNS = ("data", "transfer", "predictor", "n", "tau", "weighted_tau", "top1_regret",
           "tau_minus_pplx", "diff_lo", "diff_hi", "noise_ceiling")  # fmt: skip


def transfer_jobs(df: pd.DataFrame) -> pd.DataFrame:
    """Complete jobs that transferred an LM (have one: ``lm/cache_key``), each once, with a
    CIDEr."""
    done = unique_complete(df)
    if not len(done) or TARGET not in done or LM not in done:
        return done.iloc[0:0]
    return done[done[LM].notna() & done[TARGET].notna()]


def has_scores(df: pd.DataFrame) -> bool:
    col = PREDICTORS[0][1]
    return col in df and df[col].notna().any()


def predictor_values(group: pd.DataFrame, col: str, sign: int) -> np.ndarray:
    """The predictor's values, signed; NaN where missing. Corpus size is logged."""
    values = pd.to_numeric(group[col], errors="coerce").astype(float) if col in group else None
    if values is None:
        return np.full(len(group), np.nan)
    values = values.to_numpy()
    if col == column(lm_key("corpus_size")):
        values = np.log(np.where(values > 0, values, np.nan))
    return sign * values


def kendall(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b of the points where both are finite (NaN when either is constant)."""
    ok = np.isfinite(x) & np.isfinite(y)
    return float(kendall_rows(x[ok][None], y[ok][None])[0])


def kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of each row pair of x, y (B, n): sum sign(dx) sign(dy) over pairs over
    the root of (pairs untied in x) x (pairs untied in y), as scipy's, for many rows at once
    (the bootstrap). NaN for a row where x or y is constant."""
    sx = np.sign(x[:, :, None] - x[:, None, :])
    sy = np.sign(y[:, :, None] - y[:, None, :])
    denominator = np.sqrt((sx != 0).sum((1, 2)) * (sy != 0).sum((1, 2)).astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (sx * sy).sum((1, 2)) / denominator, np.nan)


def weighted_tau(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return float("nan")
    return float(stats.weightedtau(x[ok], y[ok]).statistic)


def top1_regret(x: np.ndarray, y: np.ndarray) -> float:
    """Best y minus the (mean) y of the units the predictor x ranks first."""
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return float("nan")
    x, y = x[ok], y[ok]
    return float(y.max() - y[x == x.max()].mean())


def paired_tau_difference(x, ref, y, seed: int = 0) -> tuple[float, float, float]:
    """tau(x, y) - tau(ref, y) and its 95% paired bootstrap interval (units resampled)."""
    x, ref, y = (np.asarray(v, dtype=float) for v in (x, ref, y))
    ok = np.isfinite(x) & np.isfinite(ref) & np.isfinite(y)
    x, ref, y = x[ok], ref[ok], y[ok]
    diff = kendall(x, y) - kendall(ref, y)
    if len(y) < MIN_LMS:
        return diff, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = []
    for lo in range(0, BOOTSTRAP, CHUNK):  # resamples in blocks: B x n x n sign matrices
        i = rng.integers(0, len(y), (min(CHUNK, BOOTSTRAP - lo), len(y)))
        draws.append(kendall_rows(x[i], y[i]) - kendall_rows(ref[i], y[i]))
    lo, hi = percentile_interval(np.concatenate(draws))
    return diff, lo, hi


def noise_ceiling(group: pd.DataFrame) -> float:
    """Mean Kendall tau between the CIDEr of two seeds across the cells both ran."""
    cell = [c for c in (*SEED_CELL, "transfer") if c in group]
    table = group.pivot_table(index=cell, columns="seed", values=TARGET, aggfunc="mean")
    taus = []
    for a, b in itertools.combinations(table.columns, 2):
        pair = table[[a, b]].dropna()
        if len(pair) >= MIN_LMS:
            taus.append(kendall(pair[a].to_numpy(), pair[b].to_numpy()))
    taus = [t for t in taus if np.isfinite(t)]
    return float(np.mean(taus)) if taus else float("nan")


def judge(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (data, transfer mode or ``all``, predictor); see the module doc."""
    jobs = transfer_jobs(df)
    rows = []
    if not len(jobs) or not has_scores(jobs):
        return pd.DataFrame(columns=COLUMNS)
    for data, by_data in jobs.groupby("data", sort=True):
        modes = [(m, g) for m, g in by_data.groupby("transfer", sort=True)]
        if len(modes) > 1:
            modes.append((ALL_MODES, by_data))
        for mode, group in modes:
            y = group[TARGET].to_numpy(dtype=float)
            ref = predictor_values(group, *_predictor(REFERENCE)[1:])
            ceiling = noise_ceiling(group)
            for name, col, sign in PREDICTORS:
                x = predictor_values(group, col, sign)
                n = int((np.isfinite(x) & np.isfinite(y)).sum())
                row = {"data": data, "transfer": mode, "predictor": name, "n": n,
                       "noise_ceiling": ceiling}  # fmt: skip
                if n >= MIN_LMS:
                    row.update(tau=kendall(x, y), weighted_tau=weighted_tau(x, y),
                               top1_regret=top1_regret(x, y))  # fmt: skip
                    if name != REFERENCE:
                        diff, lo, hi = paired_tau_difference(x, ref, y)
                        row.update(tau_minus_pplx=diff, diff_lo=lo, diff_hi=hi)
                rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _predictor(name: str) -> tuple[str, str, int]:
    return next(p for p in PREDICTORS if p[0] == name)


def verdicts(judged: pd.DataFrame, df: pd.DataFrame) -> list[str]:
    """One sentence per data set: does any score predict transfer better than perplexity?"""
    if not len(judged):
        jobs = transfer_jobs(df)
        if not len(jobs):
            return ["no complete job transferred an LM: nothing to judge"]
        return [
            "no transferability scores in these results: run `python -m caplm.transferability "
            "SWEEP_DIR` (or set transferability.enabled=true) and report again"
        ]
    lines = []
    for data, group in judged.groupby("data", sort=True):
        overall = group[group["transfer"] == (ALL_MODES if (group["transfer"] == ALL_MODES).any()
                                              else group["transfer"].iloc[0])]  # fmt: skip
        scores = overall[overall["predictor"].isin(SCORE_NAMES) & overall["tau"].notna()]
        ref = overall[overall["predictor"] == REFERENCE]
        n = int(overall["n"].max()) if len(overall) else 0
        if not len(scores) or not len(ref) or pd.isna(ref["tau"].iloc[0]):
            lines.append(f"{data}: too few scored LMs to judge (n = {n}; need {MIN_LMS})")
            continue
        better = scores[scores["diff_lo"] > 0]
        best = better if len(better) else scores
        best = best.loc[best["tau_minus_pplx"].idxmax()]
        numbers = (
            f"{best['predictor']}'s Kendall tau with CIDEr is {best['tau']:+.2f} against "
            f"perplexity's {ref['tau'].iloc[0]:+.2f} (difference {best['tau_minus_pplx']:+.2f}, "
            f"95% paired bootstrap interval [{best['diff_lo']:+.2f}, {best['diff_hi']:+.2f}]; "
            f"n = {int(best['n'])} jobs; noise ceiling {_fmt(overall['noise_ceiling'].iloc[0])})"
        )
        if len(better):
            said = f"yes: {best['predictor']} predicts transfer better than perplexity"
        elif (scores["diff_hi"] < 0).all():
            said = "no: every score predicts transfer worse than perplexity; the best"
        else:
            said = "no score predicts transfer significantly better than perplexity; the best"
        lines.append(f"{data}: {said}: {numbers}{_by_mode(group)}")
    return lines


def _by_mode(judged: pd.DataFrame) -> str:
    """Per transfer mode (when there are several): the scores whose interval lies above 0."""
    modes = [m for m in judged["transfer"].unique() if m != ALL_MODES]
    if len(modes) < 2:
        return ""
    parts = []
    for mode in sorted(modes):
        rows = judged[(judged["transfer"] == mode) & judged["predictor"].isin(SCORE_NAMES)]
        better = rows[rows["diff_lo"] > 0]
        parts.append(
            f"{mode}: " + (", ".join(
                f"{r.predictor} {r.tau_minus_pplx:+.2f} [{r.diff_lo:+.2f}, {r.diff_hi:+.2f}]"
                for r in better.itertuples()
            ) or "none")
        )  # fmt: skip
    return "; per mode, the scores that beat perplexity (tau difference, interval): " + (
        "; ".join(parts)
    )


def _fmt(v: float) -> str:
    return "n/a (one seed)" if pd.isna(v) else f"{v:+.2f}"


def random_prefix_levels(df: pd.DataFrame) -> pd.DataFrame:
    """Per data set: the LMs' mean LogME, the random prefix's, and how many LMs beat it."""
    jobs = transfer_jobs(df)
    col = PREDICTORS[0][1]
    if not len(jobs) or col not in jobs or RANDOM not in jobs:
        return pd.DataFrame(columns=["data", "lms", "logme_mean", "logme_random", "above_random"])
    lms = jobs.dropna(subset=[col]).drop_duplicates(subset=[column(lm_key("cache_key")), "data"])
    rows = []
    for data, group in lms.groupby("data", sort=True):
        rows.append({"data": data, "lms": len(group), "logme_mean": group[col].mean(),
                     "logme_random": group[RANDOM].mean(),
                     "above_random": int((group[col] > group[RANDOM]).sum())})  # fmt: skip
    return pd.DataFrame(rows)
