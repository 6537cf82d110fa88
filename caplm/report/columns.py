"""What the report reads from the results and how it names it: the grid cell, the headline
measures, the columns of its tables. One place, imported by every part of the report."""

from __future__ import annotations

from caplm.models.transfer.modes import BASELINE, CONTROL  # noqa: F401  (drawn as reference lines)
from caplm.results import (
    STATUS,
    capgen_key,
    coverage_key,
    div_key,
    job_key,
    lm_key,
    metric_key,
    pplx_key,
    ret_key,
)

#: The LM family of a job: its generator's prefix architecture (``rnn``, ``transformer``),
#: which is its LM's when it has one (``lm/arch``).
FAMILY = capgen_key("arch")
# A grid cell: jobs that differ only in their seed. Seeds are the runs we average over.
CELL = ("data", "corpus", "transfer", "size_exponent", "lm", "lm_max_epochs", FAMILY)
#: Settings beyond CELL that a sweep's jobs differ in (from each job's job.json), one column
#: each, ``cfg.<key>`` (``cfg.lm.lr``): a cell is split on them too (``report.sweep``).
SETTING = "cfg."


def cell_columns(table) -> list[str]:
    """The columns of ``table`` that make its grid cell: CELL's, then the settings' columns."""
    return [c for c in CELL if c in table] + [c for c in table.columns if c.startswith(SETTING)]


REQUIRED = (STATUS, *(job_key(k) for k in ("corpus", "transfer", "size_exponent", "seed")))
FIRST_COLUMNS = ("job_dir", "experiment", *CELL, "seed", "status")
# The x of the headline: LM perplexity on caption test, per word (comparable across
# tokenisers: a word's log-probability is the sum over its subwords; for a word vocabulary
# it is the study's corrected perplexity, which older results hold alone: see sweep._tidy).
LM_PPLX = pplx_key("lm", "captest", "per_word")
GEN_PPLX = pplx_key("capgen", "test")
HEADLINE_METRIC = "CIDEr"
PLOT_METRICS = ("CIDEr", "METEOR")
ALPHA = 0.05  # a correlation counts as significant when both tests give p < ALPHA


# The Markdown summary's columns: (header, results key).
KEY_COLUMNS = (
    ("CIDEr", metric_key("CIDEr")),
    ("METEOR", metric_key("METEOR")),
    ("BLEU-4", metric_key("BLEU-4")),
    ("ROUGE-L", metric_key("ROUGE_L")),
    ("SPICE", metric_key("SPICE")),
    ("LM pplx", LM_PPLX),
    ("gen. pplx", GEN_PPLX),
    ("vocab used", div_key("vocab_used")),
    ("unique frac", div_key("unique_frac")),
    ("R@1", ret_key("R@1")),
    ("R@10", ret_key("R@10")),
)

# The report's table of the study's LM measures (LM-only sweeps and generator sweeps alike).
LM_COLUMNS = (
    ("val pplx", pplx_key("lm", "val")),
    ("val pplx plain", pplx_key("lm", "val", "plain")),
    ("capval pplx", pplx_key("lm", "capval")),
    ("captest pplx", LM_PPLX),
    ("captest plain", pplx_key("lm", "captest", "plain")),
    ("captest median", pplx_key("lm", "captest", stat="median")),
    ("captest mean", pplx_key("lm", "captest", stat="mean")),
    ("OOV types", coverage_key("lm", "captest", "oov_type_rate")),
    ("OOV tokens", LM_OOV_TOKENS := coverage_key("lm", "captest", "oov_token_rate")),
    ("LM vocab", lm_key("vocab_size")),
    ("epochs", lm_key("epochs")),
    ("at cap", LM_AT_CAP := lm_key("stopped_at_cap")),
)
GEN_AT_CAP = capgen_key("stopped_at_cap")
