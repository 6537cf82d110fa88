"""The study's numbers from a sweep's table: per-cell means and spreads over seeds, and the
rank correlation of LM perplexity with caption quality (does a better LM transfer better?)."""

from __future__ import annotations

import pandas as pd
from scipy import stats

from caplm.report.columns import ALPHA, CELL, HEADLINE_METRIC, LM_PPLX
from caplm.report.sweep import unique_complete
from caplm.results import metric_key


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
