"""The results file: the contract between training (``caplm.train``) and the report.

Each job writes one flat JSON object, ``results.json``, in its output folder. Keys are
``<part>/<name>``; this module is the one place their names are made. Parts:

- ``job/``      the grid cell: ``corpus``, ``transfer``, ``size_exponent``, ``seed``, ``data``,
                ``lm_max_epochs``, ``experiment``, ``overrides``, ``status``, ``config_hash``,
                ``total_time_s``.
- ``lm/``       the language model: ``vocab_size``, ``params``, ``corpus_size``, ``epochs``,
                ``train_time_s``, ``cache_key``, and perplexities (below) on ``val`` (its own
                validation text) and ``captest`` (the caption test set).
- ``capgen/``   the caption generator: ``vocab_size``, ``params``, ``epochs``, ``train_time_s``,
                perplexities on ``test``, caption metrics ``test_BLEU-1`` .. ``test_CIDEr``,
                ``test_SPICE`` (null when skipped, with ``spice_status`` saying why),
                diversity ``div_*`` and retrieval ``ret_*``.
- ``transfer/`` ``rows`` (embedding rows copied), ``params_transferred``, ``params_frozen``.

Perplexity keys are ``<part>/<split>_pplx_<kind>_<stat>``: ``kind`` is ``plain`` or
``corrected`` (each ``<unk>`` charged 1/n_oov_types of its probability, so models with
different vocabularies compare), ``stat`` is ``mean``, ``median`` or ``geomean`` over captions.
"""

from __future__ import annotations

RESULTS_FILE = "results.json"
COMPLETE = "complete"
#: ``job/transfer`` values: no transfer, fine-tuned, frozen, and the random frozen control.
TRANSFER_MODES = ("none", "init", "frozen", "random_frozen")
SPICE_STATUS = "capgen/spice_status"

CAPTION_METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")
PPLX_KINDS = ("plain", "corrected")
PPLX_STATS = ("mean", "median", "geomean")


def pplx_key(part: str, split: str, kind: str = "corrected", stat: str = "geomean") -> str:
    if kind not in PPLX_KINDS or stat not in PPLX_STATS:
        raise ValueError(f"unknown perplexity kind/stat {kind!r}/{stat!r}")
    return f"{part}/{split}_pplx_{kind}_{stat}"


def metric_key(metric: str) -> str:
    if metric not in CAPTION_METRICS:
        raise ValueError(f"unknown caption metric {metric!r}; known: {', '.join(CAPTION_METRICS)}")
    return f"capgen/test_{metric}"


def div_key(name: str) -> str:
    """Diversity of the generated test captions, e.g. ``div_key("unique_frac")``."""
    return f"capgen/div_{name}"


def ret_key(name: str) -> str:
    """Image retrieval by caption probability, e.g. ``ret_key("R@1")``."""
    return f"capgen/ret_{name}"
