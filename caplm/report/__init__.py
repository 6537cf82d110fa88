"""``python -m caplm.report <sweep dir>``: results files -> tables, plots, rank correlations.

The report answers the study's question: does an LM with lower perplexity give a better
caption generator when its embedding and RNN are transferred? It never imports torch or
training code: results.json files are its only input.

- ``columns``: the grid cell, headline measures and table columns;
- ``sweep``: reading a sweep's results files into a table;
- ``summary``: means over seeds per cell, rank correlations and their verdicts;
- ``plots``: caption metrics against LM perplexity and corpus size;
- ``lm_family``: whether the LM family (RNN, Transformer) changes the answer;
- ``transfer_predictors``: judging transferability scores against the generators' CIDEr;
- ``study``: the study's own numbers beside the sweep's;
- ``gallery``: test images with each transfer mode's caption;
- ``markdown``: the CSV/Markdown tables and ``report.md``;
- ``cli``: the command line.

Outputs (default ``<dir>/report/``): ``results.csv`` and ``results.md`` (one row per job),
``summary.csv`` (mean, std and n over seeds per grid cell), ``correlations.csv``, PNG plots
and ``report.md``.
"""

from caplm.report.cli import main
from caplm.report.markdown import markdown_table, write_report
from caplm.report.summary import correlations, summarize
from caplm.report.sweep import ReportError, Sweep, collect, latest_sweep, scan, unique_complete

__all__ = [
    "ReportError",
    "Sweep",
    "collect",
    "correlations",
    "latest_sweep",
    "main",
    "markdown_table",
    "scan",
    "summarize",
    "unique_complete",
    "write_report",
]
