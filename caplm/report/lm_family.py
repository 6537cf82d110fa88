"""Does the LM family change the answer? The study's question (does a better LM, by
perplexity, transfer better?) asked of each LM family (``capgen/arch``: ``rnn``,
``transformer``) of one sweep, and the families compared.

Per data set and transfer mode: Kendall's tau-b and Spearman's rho of LM perplexity with the
caption metric across grid cells (means over seeds), per family, each with a 95% percentile
bootstrap interval, and each family's minus the reference family's (``rnn``, else the first by
name) with its interval. The families are paired by cell (corpus, size exponent, LM epochs):
only the cells every family of the group ran count, and each bootstrap resample draws the same
cells for every family, so a difference's interval is a paired one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from caplm.report.columns import FAMILY, HEADLINE_METRIC, LM_PPLX, cell_columns
from caplm.report.summary import BOOTSTRAP, percentile_interval, summarize
from caplm.report.transfer_predictors import CHUNK, MIN_LMS, kendall_rows
from caplm.results import metric_key

REFERENCE_FAMILY = "rnn"
COLUMNS = ("data", "transfer", "family", "n", "kendall_tau", "kendall_lo", "kendall_hi",
           "spearman_rho", "spearman_lo", "spearman_hi", "vs", "tau_diff", "tau_diff_lo",
           "tau_diff_hi", "rho_diff", "rho_diff_lo", "rho_diff_hi")  # fmt: skip


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair of x, y (B, n): the correlation of their (average) ranks,
    as scipy's; NaN for a row where x or y is constant."""
    rx, ry = (stats.rankdata(v, axis=1) for v in (x, y))
    rx, ry = rx - rx.mean(1, keepdims=True), ry - ry.mean(1, keepdims=True)
    denominator = np.sqrt((rx**2).sum(1) * (ry**2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (rx * ry).sum(1) / denominator, np.nan)


def family_correlations(
    df: pd.DataFrame, metric: str = HEADLINE_METRIC, seed: int = 0
) -> pd.DataFrame:
    """One row per (data set, transfer mode, family) with LM perplexities, when the sweep has
    more than one family (else empty): ``n`` paired cells, ``kendall_tau`` and
    ``spearman_rho`` with ``_lo``/``_hi`` bounds, and against the reference family ``vs``
    the differences ``tau_diff`` and ``rho_diff`` with theirs (NaN for the reference)."""
    empty = pd.DataFrame(columns=list(COLUMNS))
    cells = summarize(df)
    x, y = f"{LM_PPLX}.mean", f"{metric_key(metric)}.mean"
    if FAMILY not in cells or x not in cells or y not in cells or "data" not in cells:
        return empty
    cells = cells.dropna(subset=[x, y, FAMILY])
    if cells[FAMILY].nunique() < 2:
        return empty
    pair = [c for c in cell_columns(cells) if c not in ("data", "transfer", FAMILY)]
    # map(str), not astype(str): pandas 3 keeps NaN missing in astype(str), and join needs text
    cells = cells.assign(_cell=cells[pair].map(str).agg("|".join, axis=1) if pair else "")
    rng = np.random.default_rng(seed)
    rows = []
    for (data, mode), group in cells.groupby(["data", "transfer"], sort=True):
        families = sorted(group[FAMILY].unique(), key=lambda f: (f != REFERENCE_FAMILY, f))
        if len(families) < 2:
            continue
        points = {f: group[group[FAMILY] == f].set_index("_cell") for f in families}
        shared = sorted(set.intersection(*(set(p.index) for p in points.values())))
        xs = {f: points[f].loc[shared, x].to_numpy(float) for f in families}
        ys = {f: points[f].loc[shared, y].to_numpy(float) for f in families}
        draws = _bootstrap(xs, ys, len(shared), rng)
        ref = families[0]
        for f in families:
            row = {"data": data, "transfer": mode, "family": f, "n": len(shared)}
            for name, fn in (("kendall_tau", kendall_rows), ("spearman_rho", spearman_rows)):
                stat = name.split("_")[0]
                row[name] = float(fn(xs[f][None], ys[f][None])[0]) if shared else float("nan")
                row[f"{stat}_lo"], row[f"{stat}_hi"] = percentile_interval(draws[f][name])
            if f != ref:
                row["vs"] = ref
                for name, diff in (("kendall_tau", "tau_diff"), ("spearman_rho", "rho_diff")):
                    row[diff] = row[name] - _row_of(rows, data, mode, ref)[name]
                    row[f"{diff}_lo"], row[f"{diff}_hi"] = percentile_interval(
                        draws[f][name] - draws[ref][name]
                    )
            rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _bootstrap(xs: dict, ys: dict, n: int, rng) -> dict:
    """Per family, the bootstrap draws of tau and rho over the same resampled cells (NaN
    everywhere with fewer than MIN_LMS cells)."""
    if n < MIN_LMS:
        nan = np.full(1, np.nan)
        return {f: {"kendall_tau": nan, "spearman_rho": nan} for f in xs}
    draws = {f: {"kendall_tau": [], "spearman_rho": []} for f in xs}
    for lo in range(0, BOOTSTRAP, CHUNK):  # resamples in blocks: B x n x n sign matrices
        i = rng.integers(0, n, (min(CHUNK, BOOTSTRAP - lo), n))
        for f in xs:
            draws[f]["kendall_tau"].append(kendall_rows(xs[f][i], ys[f][i]))
            draws[f]["spearman_rho"].append(spearman_rows(xs[f][i], ys[f][i]))
    return {f: {k: np.concatenate(v) for k, v in d.items()} for f, d in draws.items()}


def _row_of(rows: list[dict], data, mode, family) -> dict:
    return next(r for r in rows if (r["data"], r["transfer"], r["family"]) == (data, mode, family))


def family_verdicts(table: pd.DataFrame) -> list[str]:
    """One sentence per family compared with the reference, per data set and transfer mode."""
    out = []
    for row in table.dropna(subset=["vs"]).itertuples(index=False):
        if pd.isna(row.tau_diff_lo):
            said = f"too few cells to compare (n = {row.n})"
        elif row.tau_diff_lo > 0 or row.tau_diff_hi < 0:
            said = (f"the answer differs: tau({row.family}) - tau({row.vs}) = "
                    f"{row.tau_diff:+.2f} [{row.tau_diff_lo:+.2f}, {row.tau_diff_hi:+.2f}]")  # fmt: skip
        else:
            said = (f"no clear difference: tau({row.family}) - tau({row.vs}) = "
                    f"{row.tau_diff:+.2f} [{row.tau_diff_lo:+.2f}, {row.tau_diff_hi:+.2f}] "
                    "includes 0")  # fmt: skip
        out.append(f"{row.data} / {row.transfer}: {said} (n = {row.n} cells)")
    return out
