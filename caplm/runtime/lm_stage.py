"""The language-model stage of a job: its corpus, the LM (from the shared cache or trained
now) and its measures. ``python -m caplm.train`` runs it before the caption generator when the
transfer mode uses an LM; ``python -m caplm.lm`` runs it alone, on text only.
"""

from __future__ import annotations

import logging
from functools import partial

from omegaconf import DictConfig, open_dict

from caplm.data.corpora import IN_DOMAIN, build_corpus
from caplm.data.text import Vocabulary
from caplm.data.types import CaptionDataset, Corpus
from caplm.evaluation.evaluate import evaluate_lm
from caplm.io import to_dict
from caplm.models import robust
from caplm.results import keyed, lm_key, robust_key
from caplm.runtime import lm_cache, loggers
from caplm.runtime.devices import resolve_precision
from caplm.runtime.hf_lm import hf_language_model, is_hf
from caplm.runtime.lm_cache import CachedLM
from caplm.runtime.training import make_trainer, warn_if_capped

log = logging.getLogger(__name__)

#: What an LM's cache entry says about it, copied into the results.
INFO_RESULTS = ("vocab_size", "params", "corpus_size", "epochs", "train_time_s")
#: What the corpus says about itself, copied into the results.
CORPUS_RESULTS = ("pool_size", "max_val_sentences", "dedup", "dedup_removed")


#: Config groups of the caption generator, which an LM-only job has no use for.
GENERATOR_GROUPS = ("model", "generation", "transfer", "transferability")


def without_generator(cfg: DictConfig) -> DictConfig:
    """An LM-only job's config: the generator's groups that a file composed into it brought
    (``+study=flickr8k`` sets the study's ``model:`` beside its ``lm:``) are dropped, said
    once, so they neither fail the checks nor enter the job's identity."""
    extra = [group for group in GENERATOR_GROUPS if group in cfg]
    if extra:
        log.info("an LM-only job: the caption generator's settings (%s) are not used",
                 ", ".join(f"{g}:" for g in extra))  # fmt: skip
        with open_dict(cfg):
            for group in extra:
                cfg.pop(group)
    return cfg


def lm_corpus(cfg: DictConfig, dataset: CaptionDataset) -> Corpus:
    """The job's LM corpus (built before any expensive stage: its size is checked then)."""
    return build_corpus(cfg.corpus, dataset, cfg.seed, cfg.paths.cache_dir)


def language_model(
    cfg: DictConfig, dataset: CaptionDataset, corpus: Corpus | None = None
) -> tuple[CachedLM, dict]:
    """The job's LM and its results: size, corpus, training, perplexities on its validation
    text (``val``) and on the caption dataset's val and test captions (``capval``,
    ``captest``) with the vocabulary's coverage of each, and its samples' diversity.
    ``corpus``: :func:`lm_corpus`, when already built. With ``lm=hf``, a pretrained LM read from ``lm.path``
    (caplm/runtime/hf_lm.py)."""
    if is_hf(cfg.lm):
        return hf_language_model(cfg, dataset)
    corpus = corpus or lm_corpus(cfg, dataset)
    lm_vocab = Vocabulary.build(corpus.train, cfg.corpus.min_word_freq)
    lm_logger = loggers.build(cfg.get("logger"), "lm")
    lm = lm_cache.get_or_train(
        cfg.lm,
        corpus,
        lm_vocab,
        cfg.seed,
        cfg.paths.lm_cache_dir,
        make_trainer=partial(make_trainer, cfg.trainer, logger=lm_logger),
        precision=resolve_precision(to_dict(cfg.trainer))["precision"],
    )
    if not lm.trained_here:  # its curves were logged by the job that trained it: show them here
        loggers.replay_history(lm_logger, lm.info["history"])
    info = lm.info
    results = {lm_key("cache_key"): lm.key, lm_key("trained_here"): lm.trained_here}
    results[lm_key("arch")] = lm.model.prefix.arch
    results.update(keyed("lm", {name: info[name] for name in INFO_RESULTS}))
    results[lm_key("resumed_after")] = info.get("resumed_after", [])  # older entries lack it
    results.update(keyed("lm", {k: corpus.info[k] for k in CORPUS_RESULTS}))
    results[lm_key("val_sentences")] = len(corpus.val)
    results[lm_key("in_domain")] = IN_DOMAIN.get(cfg.corpus.source)
    results[lm_key("stopped_at_cap")] = warn_if_capped(
        f"LM {lm.key}", info["history"], cfg.lm.fit.max_epochs, "lm.fit.max_epochs"
    )
    texts = {
        "val": corpus.val,
        "capval": dataset.sentences("val"),
        "captest": dataset.sentences("test"),
    }
    trained = robust.strengths(cfg.lm.fit.get("robust"))
    results.update({robust_key(kind): v for kind, v in trained.items()})
    results.update(
        evaluate_lm(
            lm.model,
            lm.vocab,
            texts,
            corpus.train,
            cfg.eval.lm_samples,
            cfg.seed,
            perturbed=cfg.eval.get("lm_perturbed"),
        )  # fmt: skip
    )
    return lm, results
