"""The report's plots: a caption metric against LM perplexity and against LM corpus size.

``plot_report`` turns the per-cell summary of ``caplm.report.summarize`` (``<key>.mean`` and
``<key>.std`` columns) into points with error bars, and the no-transfer and random-frozen
controls into horizontal reference lines. Figures are built with ``matplotlib.figure``
rather than ``pyplot`` so that no global backend or figure state is touched (the report can
run inside a notebook) and nothing needs a display.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from caplm.io import atomic_write
from caplm.report.columns import BASELINE, CONTROL, LM_PPLX, PLOT_METRICS
from caplm.results import metric_key

# The transfer modes' colours and names in legends; other modes get the next free colour.
TRANSFER_STYLE = {"init": ("tab:blue", "fine-tuned (init)"), "frozen": ("tab:orange", "frozen")}
SPARE_COLORS = ("tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
# Controls drawn as horizontal lines rather than points: (legend name, colour, line style).
REFERENCE_STYLE = {
    BASELINE: ("no transfer", "black", "--"),
    CONTROL: ("random frozen prefix", "tab:red", ":"),
}


@dataclass(frozen=True)
class Reference:
    """A horizontal reference line (a control's mean) with a band of +- one std."""

    label: str
    mean: float
    std: float  # NaN when the control has a single run: then no band
    color: str
    linestyle: str


def plot_report(done: pd.DataFrame, cells: pd.DataFrame, out: Path) -> dict[str, str]:
    """Draw each plot that has data from complete jobs and their cells; {file name: caption}."""
    made = {}
    compared = cells[~cells["transfer"].isin(list(REFERENCE_STYLE))]
    for metric in PLOT_METRICS:
        y = metric_key(metric)
        if f"{y}.mean" not in cells:
            continue
        refs = [ref for mode in REFERENCE_STYLE if (ref := _reference(done, mode, y))]
        by_pplx = _points(
            compared, compared.get(f"{LM_PPLX}.mean"), compared.get(f"{LM_PPLX}.std"), y
        )
        by_size = _points(compared, compared.get("size_exponent"), 0.0, y)
        common = dict(ylabel=f"{metric} (test)", refs=refs)
        if len(by_pplx):
            name = f"{metric.lower()}_vs_lm_pplx.png"
            plot_points(
                by_pplx,
                path=out / name,
                xlabel="LM perplexity on the caption test set (corrected, geometric mean)",
                title=f"{metric} against LM perplexity (cell means ± std over seeds)",
                lines=False,
                logx=by_pplx["x"].max() / by_pplx["x"].min() > 20,
                **common,
            )
            made[name] = f"{metric} against LM perplexity"
        if len(by_size):
            name = f"{metric.lower()}_vs_size.png"
            plot_points(
                by_size,
                path=out / name,
                xlabel="LM corpus size exponent e (corpus = 10^e × caption training set)",
                title=f"{metric} against LM corpus size (cell means ± std over seeds)",
                lines=True,
                **common,
            )
            made[name] = f"{metric} against LM corpus size"
    return made


def _points(cells: pd.DataFrame, x, xerr, y: str) -> pd.DataFrame:
    points = pd.DataFrame(
        {
            "corpus": cells["corpus"],
            "transfer": cells["transfer"],
            "x": x,
            "xerr": xerr,
            "y": cells[f"{y}.mean"],
            "yerr": cells[f"{y}.std"],
        }
    )
    return points.dropna(subset=["x", "y"])


def _reference(done: pd.DataFrame, mode: str, key: str) -> Reference | None:
    values = done.loc[done["transfer"] == mode, key].dropna() if key in done else []
    if len(values) == 0:
        return None
    name, color, style = REFERENCE_STYLE[mode]
    label = f"{name} (mean ± std, n = {len(values)})"
    return Reference(label, float(values.mean()), float(values.std()), color, style)


def plot_points(
    points: pd.DataFrame,
    refs: list[Reference],
    path: Path,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    lines: bool,
    logx: bool = False,
) -> Path:
    """Plot ``points`` (columns corpus, transfer, x, xerr, y, yerr) and save a PNG.

    Colour shows the transfer mode and the marker the corpus; with ``lines`` each
    corpus x transfer series is joined in order of x.
    """
    fig = Figure(figsize=(8.5, 4.8), layout="constrained")
    ax = fig.add_subplot()
    colors = _transfer_colors(points["transfer"].unique())
    markers = {
        c: MARKERS[i % len(MARKERS)] for i, c in enumerate(sorted(points["corpus"].unique()))
    }

    for (corpus, transfer), series in points.groupby(["corpus", "transfer"], sort=True):
        series = series.sort_values("x")
        ax.errorbar(
            series["x"],
            series["y"],
            xerr=series["xerr"].fillna(0),
            yerr=series["yerr"].fillna(0),
            color=colors[transfer],
            marker=markers[corpus],
            markersize=7,
            linestyle="-" if lines else "none",
            capsize=3,
        )
    for ref in refs:
        ax.axhline(ref.mean, color=ref.color, linestyle=ref.linestyle, linewidth=1.3)
        if not math.isnan(ref.std):
            ax.axhspan(ref.mean - ref.std, ref.mean + ref.std, color=ref.color, alpha=0.12, lw=0)

    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colors[t], lw=2, label=_transfer_label(t)) for t in colors]
    handles += [
        Line2D([], [], color="dimgrey", marker=m, linestyle="none", label=f"corpus: {c}")
        for c, m in markers.items()
    ]
    handles += [Line2D([], [], color=r.color, linestyle=r.linestyle, label=r.label) for r in refs]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    # savefig cannot guess the format from atomic_write's temporary name, so say it.
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))


def _transfer_colors(modes) -> dict[str, str]:
    spare = iter(SPARE_COLORS)
    known = [m for m in TRANSFER_STYLE if m in set(modes)]
    other = sorted(set(modes) - set(known))
    return {
        m: TRANSFER_STYLE[m][0] if m in TRANSFER_STYLE else next(spare, "black")
        for m in known + other
    }


def _transfer_label(mode: str) -> str:
    return TRANSFER_STYLE[mode][1] if mode in TRANSFER_STYLE else mode


def plot_transferability(jobs: pd.DataFrame, panels, path: Path) -> Path | None:
    """Each LM's score against its generator's CIDEr: one panel per ``(name, column)`` of
    ``panels`` (columns), one row per data set; colour shows the transfer mode and the marker
    the LM corpus. ``jobs`` holds one row per job that transferred an LM."""
    y = metric_key("CIDEr")
    panels = [(name, col) for name, col in panels if col in jobs and jobs[col].notna().any()]
    if not panels or not len(jobs):
        return None
    datasets = sorted(jobs["data"].unique())
    fig = Figure(figsize=(3.2 * len(panels) + 1.8, 2.9 * len(datasets)), layout="constrained")
    axes = fig.subplots(len(datasets), len(panels), squeeze=False)
    colors = _transfer_colors(jobs["transfer"].unique())
    markers = {c: MARKERS[i % len(MARKERS)] for i, c in enumerate(sorted(jobs["corpus"].unique()))}
    for row, data in enumerate(datasets):
        group = jobs[jobs["data"] == data]
        for col, (name, key) in enumerate(panels):
            ax = axes[row][col]
            for (corpus, transfer), points in group.groupby(["corpus", "transfer"], sort=True):
                ax.scatter(points[key], points[y], color=colors[transfer],
                           marker=markers[corpus], s=28)  # fmt: skip
            values = group[key].dropna()
            if len(values) and (values > 0).all() and values.max() / values.min() > 20:
                ax.set_xscale("log")  # perplexities of out-of-domain LMs span decades
            ax.set_xlabel(name if len(datasets) == 1 else f"{name} ({data})")
            if col == 0:
                ax.set_ylabel(f"CIDEr (test){'' if len(datasets) == 1 else f', {data}'}")
            ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colors[t], lw=2, label=_transfer_label(t)) for t in colors]
    handles += [
        Line2D([], [], color="dimgrey", marker=m, linestyle="none", label=f"corpus: {c}")
        for c, m in markers.items()
    ]
    fig.legend(handles=handles, loc="outside right upper", fontsize="small")
    fig.suptitle("Transferability scores against the generators' CIDEr (one point per job)")
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
