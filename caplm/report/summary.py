"""The study's numbers from a sweep's table: per-cell means and spreads over seeds, and the
rank correlation of LM perplexity with caption quality (does a better LM transfer better?)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

from caplm.report.columns import ALPHA, BASELINE, FAMILY, HEADLINE_METRIC, LM_PPLX, cell_columns
from caplm.report.sweep import unique_complete
from caplm.results import metric_key


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std (sample, over seeds) of every numeric column per grid cell, plus n.

    A cell is every setting the jobs differ in but the seed: CELL's columns and the settings
    the sweep split on (``cfg.*``, see ``report.sweep``).

    Only complete jobs count. Columns: the cell's keys, ``n``, then ``<key>.mean`` and
    ``<key>.std`` for each numeric results key (std is NaN where n = 1).
    """
    done = unique_complete(df)
    cell = cell_columns(done)
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
    columns = ["transfer", "n", "spearman_rho", "spearman_p", "spearman_lo", "spearman_hi",
               "kendall_tau", "kendall_p"]  # fmt: skip
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
            rho, rho_p = spearman_test(group[x], group[y])
            tau, tau_p = stats.kendalltau(group[x], group[y])
            row.update(spearman_rho=rho, spearman_p=rho_p, kendall_tau=tau, kendall_p=tau_p)
            row["spearman_lo"], row["spearman_hi"] = bootstrap_rho(group[x], group[y])
        row["verdict"] = _verdict(label, metric, row)
        rows.append(row)
    return pd.DataFrame(rows, columns=[*(["data"] if by_data else []), *columns, "verdict"])


#: Up to this many points Spearman's p is exact (every pairing of the points is tried);
#: beyond it, from ``PERMUTATIONS`` seeded random pairings.
EXACT_N = 8
PERMUTATIONS = 20000


def spearman_test(x, y, seed: int = 0) -> tuple[float, float]:
    """Spearman's rho and its two-sided permutation p-value: the share of pairings of x with
    y whose rho is at least as far from 0. (scipy's ``spearmanr`` p comes from a t
    approximation that fails at a handful of points: p < 0.001 for rho = -1 at n = 3, where
    one pairing in three is as extreme and the exact p is 1/3.)"""
    rho = float(stats.spearmanr(x, y)[0])
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    n = len(rx)
    if n <= EXACT_N:
        pairings = np.array(list(itertools.permutations(range(n))))
    else:
        pairings = np.argsort(np.random.default_rng(seed).random((PERMUTATIONS, n)), axis=1)
    paired = ry[pairings] @ rx / (np.linalg.norm(rx) * np.linalg.norm(ry))  # rho of each pairing
    extreme = int(np.sum(np.abs(paired) >= abs(rho) - 1e-12))
    p = extreme / len(pairings) if n <= EXACT_N else (extreme + 1) / (len(pairings) + 1)
    return rho, float(p)


def _verdict(label: str, metric: str, row: dict) -> str:
    n = row["n"]
    if n < 3:
        return f"{label}: too few LMs to correlate (n = {n})"
    if "spearman_rho" not in row:
        return f"{label}: n = {n} LMs, but perplexity or {metric} does not vary: no correlation"
    rho, tau = row["spearman_rho"], row["kendall_tau"]
    numbers = (
        f"Spearman rho = {rho:+.2f} (p {_p(row['spearman_p'])}), "
        f"Kendall tau = {tau:+.2f} (p {_p(row['kendall_p'])}), n = {n} LMs, rho's 95% "
        f"bootstrap interval [{row['spearman_lo']:+.2f}, {row['spearman_hi']:+.2f}]"
    )
    rho_sig, tau_sig = row["spearman_p"] < ALPHA, row["kendall_p"] < ALPHA
    if 2 / math.factorial(n) >= ALPHA:  # a perfect order is 2 of the n! pairings
        said = (f"too few LMs for a significant rank correlation: with {n} the smallest "
                f"two-sided p is 2/{n}! = {2 / math.factorial(n):.2f}")  # fmt: skip
    elif not (rho_sig or tau_sig):
        said = "no significant correlation: lower LM perplexity did not significantly go"
        said += f" with higher {metric}"
    elif rho_sig != tau_sig:
        yes, no = ("Spearman's", "Kendall's") if rho_sig else ("Kendall's", "Spearman's")
        way = "higher" if rho < 0 else "lower"
        said = (f"mixed evidence, no firm correlation: {yes} test is significant at {ALPHA} but "
                f"{no} is not (lower LM perplexity went with {way} {metric} by {yes} alone)")  # fmt: skip
    elif rho < 0:
        said = f"lower LM perplexity went with higher {metric}: better LMs did transfer better"
    else:
        said = f"lower LM perplexity went with lower {metric}: better LMs transferred worse"
    return f"{label}: {numbers}: {said}"


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.2f}" if p >= 0.01 else f"= {p:.3f}"


BOOTSTRAP = 2000  # resamples for every interval of the report
CONFIDENCE = 0.95


def percentile_interval(values: np.ndarray) -> tuple[float, float]:
    """The percentile interval of bootstrap ``values`` (NaN where none is finite)."""
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = 100 * (1 - CONFIDENCE) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def bootstrap_rho(x, y, seed: int = 0) -> tuple[float, float]:
    """A 95% percentile bootstrap interval of Spearman's rho, resampling the points (LMs);
    resamples where x or y does not vary are left out."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    rng = np.random.default_rng(seed)
    rhos = np.full(BOOTSTRAP, np.nan)
    for b in range(BOOTSTRAP):
        i = rng.integers(0, len(x), len(x))
        if np.ptp(x[i]) > 0 and np.ptp(y[i]) > 0:
            rhos[b] = stats.spearmanr(x[i], y[i])[0]
    return percentile_interval(rhos)


def transfer_effects(
    df: pd.DataFrame, metric: str = HEADLINE_METRIC, seed: int = 0, extra: tuple = ()
) -> pd.DataFrame:
    """Per cell of a transfer mode: the mean over seeds of metric(cell) - metric(no transfer)
    of the same data, paired by seed, with a 95% bootstrap interval (seeds resampled). A cell
    is the jobs alike in the grid cell's columns and ``extra`` (derived columns to split on).

    Columns: the cell's keys, ``n`` (seeds in both), ``effect``, ``effect_lo``, ``effect_hi``.
    A cell is compared on the seeds it shares with the no-transfer jobs of its data set (and
    of its LM family: a Transformer generator against the Transformer without transfer).
    """
    done = unique_complete(df)
    key = metric_key(metric)
    cell = [*cell_columns(done), *(c for c in extra if c in done)]
    columns = [*cell, "n", "effect", "effect_lo", "effect_hi"]
    if key not in done or "data" not in done or not (done["transfer"] == BASELINE).any():
        return pd.DataFrame(columns=columns)
    done = done.dropna(subset=[key])
    # per data set (and LM family, where every job names one) and seed, the no-transfer
    # result (averaged when a sweep has several, e.g. one per generator setting)
    by = ["data", FAMILY] if FAMILY in done and done[FAMILY].notna().all() else ["data"]
    base = {
        k if isinstance(k, tuple) else (k,): g.groupby("seed")[key].mean()
        for k, g in done[done["transfer"] == BASELINE].groupby(by)
    }
    rng = np.random.default_rng(seed)
    rows = []
    others = done[done["transfer"] != BASELINE]
    for values, group in others.groupby(cell, dropna=False, sort=True):
        row = dict(zip(cell, values, strict=True))
        none = base.get(tuple(row[c] for c in by))
        if none is None:
            continue
        ours = group.groupby("seed")[key].mean()
        seeds = sorted(set(ours.index) & set(none.index))
        diffs = np.array([ours[s] - none[s] for s in seeds], dtype=float)
        row["n"] = len(diffs)
        row["effect"] = float(diffs.mean()) if len(diffs) else float("nan")
        lo = hi = float("nan")
        if len(diffs) >= 2:
            means = diffs[rng.integers(0, len(diffs), (BOOTSTRAP, len(diffs)))].mean(1)
            lo, hi = percentile_interval(means)
        row["effect_lo"], row["effect_hi"] = lo, hi
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def method_ranking(df: pd.DataFrame, metric: str = HEADLINE_METRIC, seed: int = 0) -> pd.DataFrame:
    """The transfer modes ranked, per data set, by their gain in ``metric`` over no transfer:
    :func:`transfer_effects` with each mode's cells pooled (per seed, the mean over the mode's
    cells, e.g. LM corpora and sizes, minus the no-transfer job's), best first.

    Columns: ``data``, ``rank`` (1: the largest gain), ``transfer``, ``n``, ``effect``,
    ``effect_lo``, ``effect_hi``.
    """
    columns = ["data", "rank", "transfer", "n", "effect", "effect_lo", "effect_hi"]
    pooled = df.drop(columns=[c for c in cell_columns(df) if c not in ("data", "transfer")])
    effects = transfer_effects(pooled, metric, seed)
    if effects.empty:
        return pd.DataFrame(columns=columns)
    effects = effects.sort_values(["data", "effect"], ascending=[True, False], kind="stable")
    effects["rank"] = effects.groupby("data").cumcount() + 1
    return effects[columns].reset_index(drop=True)
