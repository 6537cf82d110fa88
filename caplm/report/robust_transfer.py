"""Do robust LMs transfer better? (``+experiment=robust_transfer``)

A sweep whose LMs were trained with perturbed inputs (``lm.fit.robust``), on deduplicated
corpora (``corpus.dedup``), or measured under test-time perturbations (``eval.lm_perturbed``)
gets this section: per cell (data, size exponent, the LM's robust training, its corpus's
dedup, transfer mode), CIDEr minus no transfer paired by seed with a 95% bootstrap interval,
the LM's clean caption-test perplexity and its perplexity under each measured perturbation
(means over seeds); and per data set and transfer mode, the rank correlation over cells of
CIDEr with each perplexity, with 95% bootstrap intervals: does robustness predict transfer
where perplexity does not?
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from caplm.report.columns import BASELINE, HEADLINE_METRIC, LM_PPLX, cell_columns
from caplm.report.summary import bootstrap_rho, spearman_test, transfer_effects
from caplm.report.sweep import unique_complete
from caplm.results import PERTURBATIONS as KINDS
from caplm.results import lm_key, metric_key, perturbed_split, pplx_key, robust_key

#: The derived cell columns: the LM's robust training (``none`` or e.g. ``noise=0.3``) and
#: its corpus's deduplication.
ROBUST, DEDUP = "robust", "dedup"
#: The perplexities each cell is described by and CIDEr is correlated with: (name, column).
ROBUST_PREDICTORS = (("clean", LM_PPLX),
              *((kind, pplx_key("lm", perturbed_split("captest", kind))) for kind in KINDS))  # fmt: skip


def has_robust_lms(table: pd.DataFrame) -> bool:
    """Whether a sweep has robust LMs, deduplicated corpora or perturbed perplexities."""
    trained = [robust_key(k) for k in KINDS if robust_key(k) in table]
    varied = any((table[c].fillna(0) != 0).any() for c in trained)
    dedup = lm_key("dedup") in table and (table[lm_key("dedup")].fillna("none") != "none").any()
    return varied or dedup or any(col in table for _, col in ROBUST_PREDICTORS[1:])


def label(row: pd.Series) -> str | None:
    """The LM's robust training in words: ``none``, ``noise=0.3``, ``word_dropout=0.1+...``;
    None for a job without an LM."""
    values = {k: row.get(robust_key(k)) for k in KINDS}
    if all(v is None or pd.isna(v) for v in values.values()):
        return None
    on = [f"{k}={v:g}" for k, v in values.items() if v and not pd.isna(v)]
    return "+".join(on) or "none"


def with_cells(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the ``robust`` and ``dedup`` columns (NaN for jobs without an LM)."""
    out = table.copy()
    out[ROBUST] = out.apply(label, axis=1) if len(out) else []
    has_lm = out[ROBUST].notna()
    dedup = out[lm_key("dedup")] if lm_key("dedup") in out else pd.Series("none", out.index)
    out[DEDUP] = dedup.fillna("none").where(has_lm)
    return out


def robust_cells(table: pd.DataFrame, metric: str = HEADLINE_METRIC) -> pd.DataFrame:
    """Per cell with an LM: n, ``effect`` [``effect_lo``, ``effect_hi``] (metric minus no
    transfer, paired by seed), the metric's mean, and each predictor's mean over seeds."""
    done = with_cells(unique_complete(table))
    effects = transfer_effects(done, metric, extra=(ROBUST, DEDUP))
    cell = [*cell_columns(done), ROBUST, DEDUP]
    cols = [metric_key(metric), *(col for _, col in ROBUST_PREDICTORS if col in done)]
    lm_jobs = done[done["transfer"] != BASELINE].dropna(subset=[ROBUST])
    if not len(lm_jobs) or not len(effects):
        return pd.DataFrame(columns=[*cell, "n", "effect", "effect_lo", "effect_hi", *cols])
    means = lm_jobs.groupby(cell, dropna=False, sort=True)[cols].mean().reset_index()
    return effects.merge(means, on=cell, how="left")


def robust_correlations(cells: pd.DataFrame, metric: str = HEADLINE_METRIC) -> pd.DataFrame:
    """Per data set and transfer mode, Spearman's rho over cells of the metric with each
    predictor (``n``, ``rho``, its permutation ``p`` and 95% bootstrap ``lo``/``hi``)."""
    y = metric_key(metric)
    rows = []
    if y not in cells:
        return pd.DataFrame(columns=["data", "transfer", "predictor", "n", "rho", "p", "lo", "hi"])
    for (data, mode), group in cells.groupby(["data", "transfer"], sort=True):
        for name, x in ROBUST_PREDICTORS:
            if x not in group:
                continue
            g = group.dropna(subset=[x, y])
            row = {"data": data, "transfer": mode, "predictor": name, "n": len(g)}
            row.update(rho=np.nan, p=np.nan, lo=np.nan, hi=np.nan)
            if len(g) >= 3 and g[x].nunique() > 1 and g[y].nunique() > 1:
                row["rho"], row["p"] = spearman_test(g[x], g[y])
                row["lo"], row["hi"] = bootstrap_rho(g[x], g[y])
            rows.append(row)
    return pd.DataFrame(rows)


def robust_verdicts(corr: pd.DataFrame) -> list[str]:
    """One line per data set and mode: each predictor's rho with its interval, and whether
    a perturbed perplexity ranks CIDEr where the clean one does not (interval off 0)."""
    lines = []
    for (data, mode), group in corr.groupby(["data", "transfer"], sort=True):
        parts, off_zero = [], {}
        for row in group.itertuples():
            if pd.isna(row.rho):
                parts.append(f"{row.predictor} n/a (n={row.n})")
                continue
            parts.append(f"{row.predictor} {row.rho:+.2f} [{row.lo:+.2f}, {row.hi:+.2f}]")
            off_zero[row.predictor] = row.hi < 0 or row.lo > 0
        line = f"{data} / {mode}: rho(CIDEr, LM pplx) " + "; ".join(parts)
        robust_only = [k for k, v in off_zero.items() if v and k != "clean"]
        if robust_only and not off_zero.get("clean", False):
            line += f" -> {', '.join(robust_only)} perplexity ranks CIDEr where clean does not"
        elif off_zero:
            line += " -> no perturbed perplexity ranks CIDEr where clean does not"
        lines.append(line)
    return lines
