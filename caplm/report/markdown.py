"""Writing the report: CSV and Markdown tables, the plots, and ``report.md``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from caplm.io import write_text
from caplm.report.columns import (
    ALPHA,
    GEN_AT_CAP,
    GEN_PPLX,
    HEADLINE_METRIC,
    KEY_COLUMNS,
    LM_AT_CAP,
    LM_COLUMNS,
    LM_OOV_TOKENS,
    LM_PPLX,
    SETTING,
    cell_columns,
)
from caplm.report.gallery import IMAGES, write_galleries
from caplm.report.lm_family import family_correlations, family_verdicts
from caplm.report.plots import plot_report, plot_transferability
from caplm.report.robust_transfer import (
    ROBUST_PREDICTORS,
    has_robust_lms,
    robust_cells,
    robust_correlations,
    robust_verdicts,
)
from caplm.report.study import (
    HEADLINE,
    MEASURES,
    STUDY_DATA,
    on_study_data,
    study_comparison,
)
from caplm.report.summary import correlations, method_ranking, summarize, transfer_effects
from caplm.report.sweep import Sweep
from caplm.report.transfer_predictors import (
    PREDICTORS,
    REFERENCE,
    SCORE_NAMES,
    judge,
    random_prefix_levels,
    transfer_jobs,
    verdicts,
)
from caplm.results import SPICE_STATUS, metric_key

TRANSFERABILITY_PLOT = "transferability_vs_cider.png"
NO_PLOTS = "- none: no complete job transferred an LM with a perplexity or corpus size"


def write_report(sweep: Sweep, out: str | Path, gallery: int = IMAGES) -> list[str]:
    """Write the tables, plots and report.md under ``out`` (with a gallery of ``gallery``
    test images per dataset); return the verdict lines."""
    out = Path(out)
    cells = summarize(sweep.table)
    corr = correlations(sweep.table)
    effects = transfer_effects(sweep.table)
    write_text(out / "transfer_effects.csv", effects.to_csv(index=False))
    ranking = method_ranking(sweep.table)
    write_text(out / "method_ranking.csv", ranking.to_csv(index=False))
    families = family_correlations(sweep.table)
    if len(families):
        write_text(out / "family_correlations.csv", families.to_csv(index=False))
    write_text(out / "results.csv", sweep.table.to_csv(index=False))
    write_text(out / "results.md", f"# Results: `{sweep.root}`\n\n" + markdown_table(sweep.table))
    write_text(out / "summary.csv", cells.to_csv(index=False))
    write_text(out / "correlations.csv", corr.to_csv(index=False))
    plots = plot_report(sweep.complete, cells, out)
    study = study_comparison(sweep.table, sweep.settings) if on_study_data(sweep.table) else None
    if study is not None:
        write_text(out / "study_comparison.csv", study.to_csv(index=False))
    judged = judge(sweep.table)
    if len(judged):
        write_text(out / "transferability_judgement.csv", judged.to_csv(index=False))
        jobs = transfer_jobs(sweep.table)
        panels = [(name, col) for name, col, _ in PREDICTORS
                  if name in (*SCORE_NAMES, REFERENCE)]  # fmt: skip
        if plot_transferability(jobs, panels, out / TRANSFERABILITY_PLOT):
            plots[TRANSFERABILITY_PLOT] = "Transferability scores against CIDEr"
    predicted = verdicts(judged, sweep.table)
    pictures = write_galleries(sweep.complete, sweep.root, out, gallery)
    robust_lines, robust_said = _robust_md(sweep.table, out)
    write_text(
        out / "report.md",
        _report_md(
            sweep,
            cells,
            corr,
            plots,
            study,
            effects,
            (judged, predicted),
            pictures,
            ranking,
            families,
            robust_lines,
        ),  # fmt: skip
    )
    return [*corr["verdict"], *family_verdicts(families), *robust_said,
            *(predicted if len(judged) else [])]  # fmt: skip


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub Markdown table (pandas' to_markdown would need the tabulate package)."""

    def cell(v) -> str:
        if pd.api.types.is_scalar(v) and pd.isna(v):
            return ""
        if isinstance(v, float):
            return _number(v)
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(c) for c in df.columns) + " |", "|" + "---|" * df.shape[1]]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _number(v: float) -> str:
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def _mean_std(mean: float, std: float, digits: int | None = None) -> str:
    if pd.isna(mean):
        return ""
    if digits is None:  # one value alone: by its magnitude
        digits = 3 if abs(mean) < 10 else 1 if abs(mean) < 100 else 0
    spread = max(digits, 1)  # a whole-number measure's spread over seeds is not whole
    return f"{mean:.{digits}f}" + ("" if pd.isna(std) else f" ± {std:.{spread}f}")


def _digits(means) -> int:
    """Decimals for a column of means, one format for the whole column: none where every mean
    is a whole number (epochs, vocabulary sizes), else by the smallest magnitude."""
    values = [abs(float(m)) for m in means if not pd.isna(m)]
    if not values or all(v.is_integer() for v in values):
        return 0
    least = min(values)
    return 3 if least < 10 else 1 if least < 100 else 0


def _mean_std_column(means, stds) -> list[str]:
    """:func:`_mean_std` of each row of a column, every row with the column's decimals."""
    means, stds = list(means), list(stds)
    digits = _digits(means)
    return [_mean_std(m, s, digits) for m, s in zip(means, stds, strict=True)]


def _reused_note(reused: int) -> str:
    if not reused:
        return ""
    return (
        f"; {reused} of them reused the result of an identical job (e.g. a control repeated "
        "across LM corpora) and count once below"
    )


def _not_applicable_note(jobs) -> str:
    if not jobs:
        return ""
    return (
        f"; {len(jobs)} more grid point(s) are outside the design and were not run (e.g. "
        f"`{jobs[0]}`: an exponent above the corpus's `max_size_exponent`)"
    )


def _counted(sweep: Sweep) -> str:
    """Where the header's job count comes from: the folders, and multirun.yaml's grid."""
    found = sweep.found - len(sweep.not_applicable)
    said = f"{found} job folder{'s' if found != 1 else ''} found"
    if sweep.never_started:
        said += f", {len(sweep.never_started)} more expected from multirun.yaml"
    return said


def _failed_note(failed) -> str:
    if not failed:
        return ""
    return (
        f"; {len(failed)} folder(s) of jobs that failed before they started (no job.json, e.g. "
        "a refused config) are not counted: see the end"
    )


def _report_md(
    sweep: Sweep,
    cells: pd.DataFrame,
    corr: pd.DataFrame,
    plots: dict,
    study: pd.DataFrame | None,
    effects: pd.DataFrame,
    predicted: tuple[pd.DataFrame, list[str]],
    gallery: list[str],
    ranking: pd.DataFrame,
    families: pd.DataFrame,
    robust_lines: list[str] = (),
) -> str:
    done = sweep.complete
    problems = [f"`{job}`: {why}" for job, why in sweep.incomplete]
    problems += [f"never started: `{job}`" for job in sweep.never_started]
    problems += [f"unreadable, skipped: {why}" for why in sweep.skipped]
    problems += [f"failed before it started, not counted: `{job}`: {why}"
                 for job, why in sweep.failed_to_start]  # fmt: skip
    md = [
        f"# caplm report: `{sweep.root}`",
        "",
        f"**{sweep.finished} of {sweep.total} jobs complete** ({_counted(sweep)}; "
        f"{len(sweep.incomplete)} incomplete, {len(sweep.never_started)} never started, "
        f"{len(sweep.skipped)} unreadable){_reused_note(sweep.finished - len(done))}"
        f"{_not_applicable_note(sweep.not_applicable)}{_failed_note(sweep.failed_to_start)}. "
        "Per-job tables: [results.md](results.md), [results.csv](results.csv).",
        "",
        "## Summary: mean ± std over seeds per grid cell",
        "",
        _split_md(cells),
        _summary_md(cells),
        f"LM pplx: `{LM_PPLX}`; gen. pplx: `{GEN_PPLX}`; std is the sample standard "
        "deviation over seeds (none shown where n = 1). All columns: "
        "[summary.csv](summary.csv).",
        "",
        "## Language models: the study's LM measures",
        "",
        *_lm_md(cells, done),
        "",
        f"## Does transfer help? ({HEADLINE_METRIC} of each cell minus no transfer's)",
        "",
        *_effects_md(effects, cells),
        "",
        f"## Which transfer method helps most? (ranked by {HEADLINE_METRIC} gain over no transfer)",
        "",
        *_ranking_md(ranking),
        "",
        f"## Does a better LM transfer better? ({HEADLINE_METRIC} against LM perplexity)",
        "",
        f"Rank correlation of `{LM_PPLX}` with `{metric_key(HEADLINE_METRIC)}` across LMs, "
        "one point per grid cell (the mean over its seeds), per transfer mode. A negative "
        "correlation means lower perplexity went with higher CIDEr, i.e. better LMs "
        f"transferred better; it counts as significant when both p < {ALPHA}.",
        "",
        *([f"- {v}" for v in corr["verdict"]] or ["- no transfer mode has LM perplexities"]),
        "",
        *_family_md(families),
        *robust_lines,
        "## Which LM will transfer best? Transferability scores against perplexity",
        "",
        *_transferability_md(*predicted, sweep.table),
        "",
        "## The study's numbers beside ours",
        "",
        *_study_md(sweep.table, study),
        "",
        "## Plots",
        "",
        *([f"![{caption}]({name})\n" for name, caption in plots.items()] or [NO_PLOTS, ""]),
        "## Captions side by side: test images, each transfer mode's caption",
        "",
        *gallery,
        "## SPICE",
        "",
        *_spice_md(done),
        "",
        "## Incomplete and missing jobs",
        "",
        *([f"- {p}" for p in problems] or ["- none"]),
        *[f"- note: {n}" for n in sweep.notes],
    ]
    return "\n".join(md) + "\n"


def _family_md(families: pd.DataFrame) -> list[str]:
    """The section on LM families: only for a sweep with more than one."""
    if not len(families):
        return []
    lines = [
        "## Does the LM family change the answer?",
        "",
        f"The rank correlation of `{LM_PPLX}` with `{metric_key(HEADLINE_METRIC)}` per LM "
        "family (`capgen/arch`, the generator's prefix and its LM's), over the cells every "
        "family ran (means over seeds), with 95% bootstrap intervals (cells resampled, the "
        "same for every family), and each family's minus the first's. The family changes the "
        "answer where a difference's interval leaves out 0. All: "
        "[family_correlations.csv](family_correlations.csv).",
        "",
        *[f"- {v}" for v in family_verdicts(families)],
        "",
    ]
    for data, group in families.groupby("data", sort=True):
        shown = pd.DataFrame({
            "transfer": group["transfer"],
            "family": group["family"],
            "n": group["n"],
            "Kendall tau [95% CI]": _intervals(group, "kendall_tau", "kendall"),
            "Spearman rho [95% CI]": _intervals(group, "spearman_rho", "spearman"),
            "Δ tau [95% CI]": _intervals(group, "tau_diff", "tau_diff"),
            "Δ rho [95% CI]": _intervals(group, "rho_diff", "rho_diff"),
        })  # fmt: skip
        lines += [f"**{data}**:", "", markdown_table(shown)]
    return lines


def _robust_md(table: pd.DataFrame, out: Path) -> tuple[list[str], list[str]]:
    """The section on robust LMs (:mod:`caplm.report.robust_transfer`), and its verdicts: only for a
    sweep with robust LMs, deduplicated corpora or perplexities under perturbation."""
    if not has_robust_lms(table):
        return [], []
    cells = robust_cells(table)
    corr = robust_correlations(cells)
    write_text(out / "robust_cells.csv", cells.to_csv(index=False))
    write_text(out / "robust_correlations.csv", corr.to_csv(index=False))
    said = robust_verdicts(corr)
    pplx = [(name, col) for name, col in ROBUST_PREDICTORS if col in cells]
    cell = [c for c in ("data", "size_exponent", "robust", "dedup", "transfer")
            if c in cells]  # fmt: skip
    shown = cells[cell].copy()
    shown["n"] = cells["n"]
    shown[f"Δ {HEADLINE_METRIC} [95% CI]"] = [
        _effect(m, lo, hi) for m, lo, hi in zip(cells["effect"], cells["effect_lo"],
                                                 cells["effect_hi"], strict=True)
    ]  # fmt: skip
    for name, col in pplx:
        shown[f"LM pplx {name}"] = cells[col]
    lines = [
        "## Do robust LMs transfer better?",
        "",
        f"LMs trained with perturbed inputs (`lm.fit.robust`: the strength of each perturbation "
        f"in `robust`) or on deduplicated corpora (`dedup`), and measured by their caption-test "
        f"perplexity clean (`{LM_PPLX}`) and under each test-time perturbation "
        "(`eval.lm_perturbed`): a less accurate but more robust LM has a higher clean and a "
        f"lower perturbed perplexity. Δ {HEADLINE_METRIC}: minus no transfer's, paired by seed, "
        "with a 95% bootstrap interval; perplexities are means over seeds. Below, Spearman's "
        f"rho over cells of {HEADLINE_METRIC} with each perplexity, with 95% bootstrap "
        "intervals (cells resampled). All: [robust_cells.csv](robust_cells.csv), "
        "[robust_correlations.csv](robust_correlations.csv).",
        "",
        markdown_table(shown),
        "",
        *([f"- {v}" for v in said] or ["- too few cells for a correlation"]),
        "",
    ]
    return lines, said


def _intervals(group: pd.DataFrame, value: str, bounds: str) -> list[str]:
    return [
        "" if pd.isna(m) else f"{m:+.2f}" + ("" if pd.isna(lo) else f" [{lo:+.2f}, {hi:+.2f}]")
        for m, lo, hi in zip(group[value], group[f"{bounds}_lo"], group[f"{bounds}_hi"],
                             strict=True)
    ]  # fmt: skip


def _transferability_md(judged: pd.DataFrame, verdicts: list[str], table) -> list[str]:
    """Each score and baseline judged on this sweep's generators, per data set and mode."""
    if not len(judged):
        return [f"- {v}" for v in verdicts]
    lines = [
        "Each predictor is computed before any generator is trained (scores: "
        "`python -m caplm.transferability`); it is judged by how it ranks the jobs that "
        "transferred an LM by their test CIDEr: Kendall tau, weighted tau (top ranks count "
        "more), top-1 regret (best CIDEr minus the CIDEr of the LM ranked first) and tau minus "
        "perplexity's tau with a paired 95% bootstrap interval. Higher scores should mean "
        "better transfer (perplexity is negated). Noise ceiling: the mean tau between the "
        "CIDEr of two seeds of the same cells. All: "
        "[transferability_judgement.csv](transferability_judgement.csv).",
        "",
        *[f"- **{v}**" for v in verdicts],
        "",
    ]
    for (data, mode), group in judged.groupby(["data", "transfer"], sort=True):
        shown = pd.DataFrame({
            "predictor": group["predictor"],
            "n": group["n"],
            "tau": group["tau"].map(_signed),
            "weighted tau": group["weighted_tau"].map(_signed),
            "top-1 regret": group["top1_regret"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}"),
            "tau - tau(pplx) [95% CI]": [
                _effect(m, lo, hi).replace("+", "+") if not pd.isna(m) else ""
                for m, lo, hi in zip(group["tau_minus_pplx"], group["diff_lo"],
                                     group["diff_hi"], strict=True)
            ],
        })  # fmt: skip
        ceiling = group["noise_ceiling"].iloc[0]
        lines += [
            f"**{data}, transfer = {mode}** (noise ceiling tau "
            f"{'n/a: one seed' if pd.isna(ceiling) else f'{ceiling:+.2f}'}):",
            "",
            markdown_table(shown),
        ]
    levels = random_prefix_levels(table)
    for row in levels.itertuples(index=False):
        lines.append(
            f"- {row.data}: {row.above_random} of {row.lms} LMs have a higher LogME than a "
            f"random, untrained prefix (mean LogME {row.logme_mean:.4f} vs random "
            f"{row.logme_random:.4f})."
        )
    return lines


def _signed(v: float) -> str:
    return "" if pd.isna(v) else f"{v:+.2f}"


def _split_md(cells: pd.DataFrame) -> str:
    """The sentence naming the columns the cells were split on."""
    split = [f"`{c}`" for c in cell_columns(cells) if cells[c].nunique(dropna=False) > 1]
    return (
        "A cell is the jobs that differ only in their seed (and in settings that do not change "
        "results: devices, loggers, paths); every other setting they differ in splits them "
        f"(`{SETTING}*`: a setting from the jobs' job.json). Split on: "
        f"{', '.join(split) or 'nothing (one cell)'}.\n"
    )


def _summary_md(cells: pd.DataFrame) -> str:
    keys, fixed = _varying(cells, cell_columns(cells))
    table = cells[[*keys, "n"]].copy()
    for header, key in KEY_COLUMNS:
        if f"{key}.mean" in cells and cells[f"{key}.mean"].notna().any():
            table[header] = _mean_std_column(cells[f"{key}.mean"], cells[f"{key}.std"])
    return fixed + markdown_table(table)


def _effects_md(effects: pd.DataFrame, cells: pd.DataFrame) -> list[str]:
    """The effect of each transfer cell against no transfer, with its interval, and the share
    of the test captions' words its LM lacks (which a transferred generator cannot say)."""
    if effects.empty:
        return ["- no complete no-transfer job to compare with (transfer=none)"]
    cell = cell_columns(effects)
    keys, fixed = _varying(effects, cell)
    table = effects[[*keys, "n"]].copy()
    table[f"Δ {HEADLINE_METRIC} [95% CI]"] = [
        _effect(m, lo, hi)
        for m, lo, hi in zip(effects["effect"], effects["effect_lo"], effects["effect_hi"],
                             strict=True)
    ]  # fmt: skip
    lacks = f"{LM_OOV_TOKENS}.mean"
    said = ""
    if lacks in cells:
        shares = effects[cell].merge(cells[[*cell, lacks]], on=cell, how="left")[lacks]
        table[LACKS] = [_share(v) for v in shares]
        said = (f" *{LACKS[0].upper() + LACKS[1:]}*: the share of the test captions' words that the "
                "cell's LM vocabulary lacks; the generator's vocabulary is the captions' intersected "
                "with the LM's (the study's design), so a transferred generator cannot say "
                "them.")  # fmt: skip
    above, below = int((effects["effect_lo"] > 0).sum()), int((effects["effect_hi"] < 0).sum())
    return [
        "Mean over seeds of the cell's metric minus the no-transfer job's of the same data and "
        "seed (paired), with a 95% bootstrap interval over seeds (none for one seed). "
        f"**{above} of {len(effects)} cells beat no transfer, {below} did worse** (interval "
        "above / below 0); the rest are within the seed-to-seed spread."
        f"{said} All: [transfer_effects.csv](transfer_effects.csv).",
        "",
        fixed + markdown_table(table),
    ]


LACKS = "words the LM lacks"


def _share(v: float) -> str:
    return "" if pd.isna(v) else f"{v:.1%}"


def _ranking_md(ranking: pd.DataFrame) -> list[str]:
    """Each transfer mode (the study's and the methods beyond it) ranked per data set."""
    if ranking.empty:
        return ["- no complete no-transfer job to compare with (transfer=none)"]
    table = ranking[["data", "rank", "transfer", "n"]].copy()
    table[f"Δ {HEADLINE_METRIC} [95% CI]"] = [
        _effect(m, lo, hi)
        for m, lo, hi in zip(ranking["effect"], ranking["effect_lo"], ranking["effect_hi"],
                             strict=True)
    ]  # fmt: skip
    return [
        "Per data set, each mode's cells pooled (per seed, the mean over its LM corpora and "
        "sizes) minus no transfer, paired by seed, with a 95% bootstrap interval over seeds; "
        "ranks overlap where the intervals do. All: [method_ranking.csv](method_ranking.csv).",
        "",
        markdown_table(table),
    ]


def _effect(mean: float, lo: float, hi: float) -> str:
    if pd.isna(mean):
        return ""
    return f"{mean:+.3f}" + ("" if pd.isna(lo) else f" [{lo:+.3f}, {hi:+.3f}]")


def _lm_md(cells: pd.DataFrame, done: pd.DataFrame) -> list[str]:
    """Per cell with an LM: its perplexities (corrected geometric mean unless named), the
    vocabulary's coverage of the caption test set, its epochs; and fits stopped at their cap."""
    shown = [(h, k) for h, k in LM_COLUMNS if f"{k}.mean" in cells]
    if not shown:
        return ["- no job trained or reused a language model"]
    with_lm = cells[cells[f"{shown[0][1]}.mean"].notna()]
    keys, fixed = _varying(with_lm, cell_columns(with_lm))
    table = with_lm[[*keys, "n"]].copy()
    for header, key in shown:
        table[header] = _mean_std_column(with_lm[f"{key}.mean"], with_lm[f"{key}.std"])
    lines = [fixed + markdown_table(table)]
    lines.append(
        "Perplexities are corrected for OOV words (the study's measure) unless marked plain; "
        "OOV types / tokens: the share of the caption test set's word types / tokens the LM's "
        "vocabulary lacks; at cap: the share of seeds whose LM ran all `lm.fit.max_epochs` "
        "while still improving."
    )
    for what, key in (("LM", LM_AT_CAP), ("caption generator", GEN_AT_CAP)):
        capped = int(done[key].fillna(False).astype(bool).sum()) if key in done else 0
        if capped:
            lines.append(
                f"- **{capped} job(s)' {what} stopped at its epoch cap while its validation "
                "loss was still improving** (raise its `fit.max_epochs`); their numbers are "
                "not of a converged model."
            )
    return lines


def _varying(table: pd.DataFrame, keys: list[str]) -> tuple[list[str], str]:
    """The keys whose value differs between rows, and a sentence stating the others once
    (a key with one value everywhere says nothing per row)."""
    same = [c for c in keys if table[c].nunique(dropna=False) == 1]
    fixed = [f"{c} = {table[c].iloc[0]}" for c in same if pd.notna(table[c].iloc[0])]
    sentence = f"In every cell: {', '.join(fixed)}.\n\n" if fixed else ""
    return [c for c in keys if c not in same], sentence


def _study_md(table: pd.DataFrame, study: pd.DataFrame | None) -> list[str]:
    """The report's section on the study's numbers (study_comparison's headline measures)."""
    if study is None:
        data = sorted(map(str, table["data"].dropna().unique())) if "data" in table else []
        return [
            f"- no comparison: the study ran on {STUDY_DATA} only, and this sweep's caption "
            f"data is {', '.join(data) or 'not recorded'}."
        ]
    if study.empty:
        return [
            f"- no complete job sits in one of the study's cells ({STUDY_DATA}: the LM corpora "
            "captions, mscoco and lm1b by size exponent, the random frozen RNN, partial "
            "training); see [study_comparison.csv](study_comparison.csv)."
        ]
    keys = ", ".join(f"{label}: `{key}`" for _, key, label in MEASURES if label in HEADLINE)
    return [
        "caplm's mean ± std over seeds (n) beside the study's mean over its runs, per grid cell "
        "the study also ran, and the ratio ours / study. The study's numbers are comparable "
        "with ours only when the sweep ran with `data.normaliser=study` (the study's "
        f"tokenisation) and the study's hyper-parameters. {keys}. Every measure: "
        "[study_comparison.csv](study_comparison.csv).",
        "",
        _study_table_md(study),
        *_departures_md(study),
    ]


def _departures_md(study: pd.DataFrame) -> list[str]:
    """Which settings of each compared cell differ from the study's (conf/study/*.yaml)."""
    keys = cell_columns(study)
    cells = study.drop_duplicates(keys)
    varying, _ = _varying(cells, keys)
    departing = cells[cells["departs_from_study"].fillna("") != ""]
    if departing.empty:
        return ["- every compared cell ran with the study's settings (`conf/study/*.yaml`)."]
    lines = [
        f"- **{len(departing)} of {len(cells)} compared cells depart from the study's settings** "
        "(`conf/study/*.yaml`, which `+study=<corpus>` sets): their ratios are not like for like."
    ]
    for row in departing.to_dict("records"):
        label = " / ".join(str(row[c]) for c in varying) or "the cell"
        lines.append(f"  - {label}: {row['departs_from_study']}")
    return lines


def _study_table_md(study: pd.DataFrame) -> str:
    """One row per cell: for each headline measure, ours ± std (n), the study's, the ratio."""
    keys = [*cell_columns(study), *(["study_experiment"] if "study_experiment" in study else [])]
    rows = []
    for _, group in study.groupby(keys, dropna=False, sort=False):
        row = {c: group[c].iloc[0] for c in keys}
        by_measure = group.set_index("measure")
        for label in (h for h in HEADLINE if h in by_measure.index):  # LM-only: LM measures
            m = by_measure.loc[label]
            row[f"{label} ours"] = _mean_std(m["caplm_mean"], m["caplm_std"]) + (
                f" ({m['n_seeds']})" if m["n_seeds"] else ""
            )
            row[f"{label} study"] = m["study_mean"]
            row[f"{label} ratio"] = "" if pd.isna(m["ratio"]) else f"{m['ratio']:.2f}"
        rows.append(row)
    table = pd.DataFrame(rows)
    varying, fixed = _varying(table, keys)
    return fixed + markdown_table(table.drop(columns=[c for c in keys if c not in varying]))


def _spice_md(done: pd.DataFrame) -> list[str]:
    if SPICE_STATUS not in done:
        return [f"- no `{SPICE_STATUS}` in the results"]
    counts = done[SPICE_STATUS].fillna("(not given)").value_counts()
    return [f"- {status}: {n} job{'s' if n != 1 else ''}" for status, n in counts.items()]
