"""The results file: the contract between training (``caplm.train``) and the report.

Each job writes one flat JSON object, ``results.json``, in its output folder. Keys are
``<part>/<name>``; the functions of this module are the one place they are made (no other
module spells a key). Parts:

- ``job/``      the grid cell: ``corpus``, ``transfer``, ``size_exponent``, ``seed``, ``data``,
                ``lm``, ``lm_max_epochs``, ``experiment``, ``overrides``, ``status``,
                ``config_hash``, ``total_time_s``, ``finished``, ``host``, ``pid``, ``threads`` (and
                ``reused_from`` when an identical job's results were reused); where the time
                went, ``time_<stage>_s`` (:func:`time_key`: ``data``, ``lm``, ``scores``,
                ``fit``, ``eval``, ``other``) and ``overhead_frac``, the share of the job's
                time not spent in training steps (the LM's when trained here, the generator's).
- ``lm/``       the language model: ``arch`` (its family: ``rnn`` or ``transformer``),
                ``vocab_size``, ``params``, ``corpus_size``, ``epochs``,
                ``train_time_s``, ``cache_key``, ``trained_here``, ``resumed_after``, perplexities (below) on
                ``val`` (its own validation text) and ``captest`` (the caption test set), and
                ``sample_div_*`` (diversity of sentences it samples).
- ``capgen/``   the caption generator: ``arch`` (its prefix's family), ``architecture``
                (only when not the default merge: ``merge_attention``, ``par_inject``, ...), ``vocab_size``,
                ``params``, ``epochs``, ``train_time_s``, ``resumed_after`` (epochs after which an interrupted fit resumed),
                perplexities on ``test``, caption metrics ``test_BLEU-1`` .. ``test_CIDEr``,
                ``test_SPICE`` (null when skipped, with ``spice_status`` saying why),
                diversity ``div_*``, retrieval ``ret_*`` and, on generated data that knows its
                scenes, grounding ``<dataset>_object_precision`` etc.
- ``transfer/`` ``rows`` (embedding rows copied), ``rows_missing``, ``params_transferred``,
                ``params_frozen``; for ``transfer=wise_ft`` (:func:`wise_ft_key`) ``wise_ft_alpha``
                (the alpha kept), ``wise_ft_loss_a<alpha>``, ``wise_ft_pplx_a<alpha>`` (and
                ``wise_ft_BLEU-4_a<alpha>`` with ``transfer.select=bleu``) on validation for
                every alpha, ``wise_ft_theta0_epochs`` and ``wise_ft_theta0_train_time_s``
                (the frozen fit's; ``capgen/epochs`` and ``train_time_s`` count both fits).
- ``transferability/`` scores of the job's LM computed before the generator is trained
                (:mod:`caplm.evaluation.transfer_scores`): ``logme`` (the main one),
                ``logme_text``, ``logme_sd``, ``logme_random``, ``hscore``, ``leep``,
                ``positions``, ``samples``, ``time_s``; or ``skipped`` with the reason (an
                inject model's prefix sees the image: the scores do not apply).

Perplexity keys are ``<part>/<split>_pplx_<kind>_<stat>``: ``kind`` is ``plain`` or
``corrected`` (each ``<unk>`` charged 1/n_oov_types of its probability, so models with
different vocabularies compare), ``stat`` is ``mean``, ``median`` or ``geomean`` over captions;
``<part>/<split>_oov_types`` is that n_oov_types, and ``<part>/<split>_oov_type_rate`` /
``_oov_token_rate`` the vocabulary's coverage of the split (:func:`coverage_key`). LM splits are
``val`` (its own validation text), ``capval`` and ``captest`` (the caption val/test captions).
Robust LMs (:mod:`caplm.models.robust`): ``lm/robust_<kind>`` is the strength of each
perturbation the LM trained with (0: none; ``kind`` is ``word_dropout``, ``noise`` or
``adversarial``), ``lm/perturbed_<kind>`` that of each test-time perturbation measured
(``eval.lm_perturbed``), and ``lm/<split>_perturbed_<kind>_pplx_<kind>_<stat>`` the LM's
perplexity on the caption sets ``capval``/``captest`` under it, beside the clean one.
``lm/dedup``, ``lm/dedup_removed``: the corpus's deduplication (``corpus.dedup``) and how
many pool sentences it removed. ``lm/stopped_at_cap`` and ``capgen/stopped_at_cap`` say a fit ran all its epochs while its
validation loss was still improving; ``lm/val_sentences`` and ``lm/max_val_sentences`` how
much validation text was used (null: all of it). ``job/normaliser`` is ``data.normaliser``;
``job/transfer`` is ``lm_only`` for an LM-only job (``python -m caplm.lm``). ``lm/in_domain``
says whether the LM's corpus is text of the caption domain (null: not known, a text file).

This module imports nothing from caplm: training and the report both depend on it.
"""

from __future__ import annotations

RESULTS_FILE = "results.json"
#: Written when a job starts, after its config was checked (``caplm.runtime.jobs``): a folder
#: without it and without results never started its work (e.g. its config was refused).
JOB_FILE = "job.json"
#: A generator job's test captions: ``[{"image_id", "caption", "logprob", "references"}]``.
CAPTIONS_FILE = "test_captions.json"
#: A job's composed config, as Hydra saves it in the job's folder.
CONFIG_FILE = ".hydra/config.yaml"
COMPLETE = "complete"
#: ``job/status`` of a grid point the study's design leaves out (see ``corpus.max_size_exponent``).
NOT_APPLICABLE = "not_applicable"
PARTS = ("job", "lm", "capgen", "transfer", "transferability")

CAPTION_METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")
#: per_word: a word's log-probability is the sum over its tokens (subwords), words as the
#: dataset's normaliser splits them; for a word vocabulary it is the corrected perplexity.
PPLX_KINDS = ("plain", "corrected", "per_word")
#: The perturbations of a robust LM (:mod:`caplm.models.robust`), as results list them.
PERTURBATIONS = ("word_dropout", "noise", "adversarial")
PPLX_STATS = ("mean", "median", "geomean")


def key(part: str, name: str) -> str:
    """``<part>/<name>``, the part checked."""
    if part not in PARTS:
        raise ValueError(f"unknown results part {part!r}; known: {', '.join(PARTS)}")
    return f"{part}/{name}"


def keyed(part: str, values: dict, prefix: str = "") -> dict:
    """``values`` with each name turned into a key of ``part`` (``prefix`` before the name)."""
    return {key(part, f"{prefix}{name}"): v for name, v in values.items()}


def job_key(name: str) -> str:
    return key("job", name)


def time_key(stage: str) -> str:
    """Seconds a job spent in one of its stages, e.g. ``time_key("eval")``."""
    return job_key(f"time_{stage}_s")


def lm_key(name: str) -> str:
    return key("lm", name)


def capgen_key(name: str) -> str:
    return key("capgen", name)


def transfer_key(name: str) -> str:
    return key("transfer", name)


def wise_ft_key(name: str, alpha: float | None = None) -> str:
    """A ``transfer=wise_ft`` result: ``wise_ft_<name>``, or of one alpha of its grid
    ``wise_ft_<name>_a<alpha>`` (e.g. ``transfer/wise_ft_loss_a0.3``)."""
    return transfer_key(f"wise_ft_{name}" + ("" if alpha is None else f"_a{float(alpha):g}"))


def transferability_key(name: str) -> str:
    """A transferability score of the job's LM, e.g. ``transferability_key("logme")``."""
    return key("transferability", name)


def column(results_key: str) -> str:
    """A results key as a report column: ``job/`` keys lose their prefix."""
    return results_key.removeprefix("job/")


# The job/ keys that code reads back (skip, reuse, report).
STATUS = job_key("status")
CONFIG_HASH = job_key("config_hash")
OVERRIDES = job_key("overrides")
REUSED_FROM = job_key("reused_from")
SPICE_STATUS = capgen_key("spice_status")


def pplx_key(part: str, split: str, kind: str = "corrected", stat: str = "geomean") -> str:
    if kind not in PPLX_KINDS or stat not in PPLX_STATS:
        raise ValueError(f"unknown perplexity kind/stat {kind!r}/{stat!r}")
    return key(part, f"{split}_pplx_{kind}_{stat}")


def pplx_keys(part: str, split: str, stats: dict, oov_types: int) -> dict:
    """Perplexity results from ``perplexity_stats`` output (keys ``<kind>_<stat>``)."""
    out = {key(part, f"{split}_pplx_{name}"): v for name, v in stats.items()}
    out[key(part, f"{split}_oov_types")] = oov_types
    return out


COVERAGE = ("oov_type_rate", "oov_token_rate")


def coverage_key(part: str, split: str, rate: str) -> str:
    """The share of a text's word types (``oov_type_rate``) or tokens (``oov_token_rate``) that
    the vocabulary of ``part`` (``lm``/``capgen``) lacks."""
    if rate not in COVERAGE:
        raise ValueError(f"unknown coverage rate {rate!r}; known: {', '.join(COVERAGE)}")
    return key(part, f"{split}_{rate}")


def metric_key(metric: str) -> str:
    if metric not in CAPTION_METRICS:
        raise ValueError(f"unknown caption metric {metric!r}; known: {', '.join(CAPTION_METRICS)}")
    return capgen_key(f"test_{metric}")


def div_key(name: str) -> str:
    """Diversity of the generated test captions, e.g. ``div_key("unique_frac")``."""
    return capgen_key(f"div_{name}")


def robust_key(kind: str) -> str:
    """The strength of a perturbation the LM was trained with (``lm.fit.robust``; 0: none),
    e.g. ``lm/robust_adversarial``."""
    return lm_key(f"robust_{kind}")


def perturbed_key(kind: str) -> str:
    """The strength of a test-time perturbation (``eval.lm_perturbed``), e.g.
    ``lm/perturbed_noise``."""
    return lm_key(f"perturbed_{kind}")


def perturbed_split(split: str, kind: str) -> str:
    """The name under which perplexity on ``split`` under perturbation ``kind`` is kept, e.g.
    ``captest_perturbed_noise`` (so ``lm/captest_perturbed_noise_pplx_corrected_geomean``)."""
    return f"{split}_perturbed_{kind}"


def lm_sample_div_key(name: str) -> str:
    """Diversity of sentences sampled from the LM."""
    return lm_key(f"sample_div_{name}")


def ret_key(name: str) -> str:
    """Image retrieval by caption probability, e.g. ``ret_key("R@1")``."""
    return capgen_key(f"ret_{name}")


#: What a caption counted in ``all_true_frac`` (and marked ``all_true`` in the job's
#: CAPTIONS_FILE) is, per generated dataset's grounding checker.
ALL_TRUE_MEANS = {
    "shapes": "names at least one colour-shape and every one it names is in the picture "
    "(counts, sizes and relations are not checked)",
    "scenes": "makes at least one claim and every claim it makes holds of the picture",
}


def grounding_key(dataset: str, name: str) -> str:
    """Grounding of generated captions in a generated dataset's scenes, e.g.
    ``grounding_key("shapes", "object_precision")``."""
    return capgen_key(f"{dataset}_{name}")
