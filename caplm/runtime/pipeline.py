"""A job's stages, top to bottom: what ``python -m caplm.train`` and ``python -m caplm.lm`` run.

:func:`train_job`: caption data and image features -> the LM corpus and the LM (from the shared
cache, or trained once; :mod:`caplm.runtime.lm_stage`) and its transferability scores -> the
caption generator, fitted by its transfer mode with the weight-transfer callback -> evaluation
-> ``results.json``. :func:`lm_job`: the caption data's text -> the LM stage alone. Everything
a job writes lands in its output folder (``paths.output_dir``); :func:`run_job` gives the job
its identity, skip/reuse, timing and results file.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from caplm.data.datamodules import CaptionDataModule
from caplm.data.features import load_features
from caplm.data.readers import load_caption_dataset
from caplm.data.subword import NOT_APPLICABLE_VOCAB_POLICY
from caplm.data.text import Vocabulary
from caplm.evaluation.attention_pictures import save_attention_pictures
from caplm.evaluation.evaluate import ValidationBLEU, evaluate_generator
from caplm.evaluation.pictures import picture_source, save_pictures
from caplm.evaluation.transfer_scores import scores_or_reason
from caplm.io import write_json
from caplm.models.architectures import IMAGE_FREE_PREFIX, architecture_of, build_generator
from caplm.models.prefix import PrefixConfig, check_same_heads
from caplm.models.transfer.callback import WeightTransfer
from caplm.models.transfer.modes import TransferMode, check_arch_parts, get_mode
from caplm.models.transfer.vocab import generator_vocabulary
from caplm.results import (
    CAPTIONS_FILE,
    RESULTS_FILE,
    keyed,
    metric_key,
    pplx_key,
    transfer_key,
    transferability_key,
)
from caplm.runtime import loggers
from caplm.runtime.generator_fit import GeneratorFit
from caplm.runtime.hf_lm import (
    NOT_APPLICABLE_SCORES,
    check_hf_parts,
    generator_args,
    is_hf,
    subword_vocabulary,
)
from caplm.runtime.jobs import Job, run_job
from caplm.runtime.lm_stage import language_model, lm_corpus, without_generator
from caplm.runtime.training import CHECKPOINTS, fit_monitor, warn_if_capped

log = logging.getLogger("caplm.train")
lm_log = logging.getLogger("caplm.lm")

#: Printed at the end of a job (and, on generated data, the share of fully true captions).
HEADLINE = (metric_key("BLEU-4"), metric_key("METEOR"), metric_key("CIDEr"))
#: Printed at the end of an LM-only job: the study's LM-quality measure on each text.
LM_HEADLINE = {split: pplx_key("lm", split) for split in ("val", "capval", "captest")}
#: Test captions whose attention over the picture a merge_attention job draws.
ATTENTION_PICTURES = 2


def train_job(cfg: DictConfig) -> dict:
    """Run one job; returns its results (also written to ``<output_dir>/results.json``)."""
    return run_job(cfg, _train_and_evaluate)


def lm_job(cfg: DictConfig) -> dict:
    """Run one LM-only job; returns its results (also in ``<output_dir>/results.json``)."""
    return run_job(without_generator(cfg), _lm_alone)


def _train_and_evaluate(cfg: DictConfig, job: Job):
    mode = get_mode(cfg.transfer.mode)
    if mode.uses_lm or mode.freezes:  # a part the prefix lacks fails now, not after the LM
        check_arch_parts(cfg.transfer.parts, cfg.model.arch, cfg.model.num_layers)
        if is_hf(cfg.model):  # lm=hf: its blocks are the model's
            check_hf_parts(cfg.transfer.parts, cfg.lm.path)
        elif mode.name == "lora":
            raise ValueError("transfer=lora adapts a Hugging Face LM's body: use it with lm=hf")
    if mode.uses_lm:  # what the weights' shapes cannot tell apart
        check_same_heads(cfg.lm, cfg.model)
    L.seed_everything(cfg.seed, workers=True)
    dataset, corpus, features, caption_vocab = _data(cfg, job, mode)
    results: dict = {}
    lm = _lm(cfg, job, dataset, corpus, features, caption_vocab, results) if corpus else None
    model, data, record, capgen_logger = _generator(cfg, job, mode, dataset, features,
                                                    caption_vocab, lm, results)  # fmt: skip
    captions, load_image = _evaluate(cfg, job, model, data, dataset, results)
    return results, partial(loggers.report, capgen_logger, captions=captions, load_image=load_image)


def _data(cfg: DictConfig, job: Job, mode: TransferMode):
    """The caption dataset, the LM corpus (if the mode uses an LM; before the features, so its
    size is checked before images are encoded), the image features and the caption training
    vocabulary."""
    cache_dir = Path(cfg.paths.cache_dir)
    dataset = load_caption_dataset(cfg.data, cache_dir)
    corpus = lm_corpus(cfg, dataset) if mode.uses_lm else None
    features = load_features(cfg.data, dataset, cache_dir)
    caption_vocab = Vocabulary.build(dataset.sentences("train"), cfg.data.min_word_freq)
    job.lap("data")
    return dataset, corpus, features, caption_vocab


def _lm(cfg: DictConfig, job: Job, dataset, corpus, features, caption_vocab, results: dict):
    """The LM and its measures, and its transferability scores (before the generator: they
    must not need one)."""
    lm, lm_results = language_model(cfg, dataset, corpus)
    results.update(lm_results)
    write_json(job.dir / "lm.json", {"cache_key": lm.key, "path": str(lm.path)})
    job.lap("lm")
    architecture = architecture_of(cfg.model)
    if cfg.transferability.enabled and is_hf(cfg.model):
        results[transferability_key("skipped")] = NOT_APPLICABLE_SCORES
    elif cfg.transferability.enabled and architecture not in IMAGE_FREE_PREFIX:
        results[transferability_key("skipped")] = (
            f"not applicable: model={architecture} feeds the image into the RNN, so the "
            "generator's prefix is not the LM's image-free one that the scores measure"
        )
    elif cfg.transferability.enabled:
        results.update(scores_or_reason(lm.model, lm.vocab, dataset, features, caption_vocab,
                                        cfg.transferability, cfg.data.max_caption_len))  # fmt: skip
        job.lap("scores")
    return lm


def _generator(cfg: DictConfig, job: Job, mode: TransferMode, dataset, features, caption_vocab,
               lm, results: dict):  # fmt: skip
    """The caption generator, fitted by its transfer mode; its record's results added."""
    out, architecture = job.dir, architecture_of(cfg.model)
    hf = is_hf(cfg.model)  # lm=hf: the LM tokenizer's subwords, whatever the mode
    if hf:
        vocab = lm.vocab if lm else subword_vocabulary(cfg)
        results[transfer_key("vocab_policy")] = NOT_APPLICABLE_VOCAB_POLICY
    else:
        vocab = generator_vocabulary(
            caption_vocab, lm.vocab if lm else None, cfg.transfer.vocab_policy
        )
    vocab.save(out / "vocab.json")
    data = CaptionDataModule(dataset, features, vocab, cfg.model.fit.batch_size,
                             cfg.data.max_caption_len, cfg.data.num_workers, cfg.seed)  # fmt: skip
    L.seed_everything(cfg.seed, workers=True)
    model = build_generator(cfg.model, len(vocab), data.feature_shape,
                            {**cfg.generation, **(generator_args(cfg) if hf else {})})  # fmt: skip
    transfer = WeightTransfer(
        mode,
        cfg.transfer.parts,
        lm_state=lm.model.state_dict() if lm else None,
        row_index=vocab.index_in(lm.vocab) if lm else None,
        describe=f"(lm={cfg.lm.name}: {PrefixConfig.of(cfg.lm).summary()}; model: "
        f"{PrefixConfig.of(cfg.model).summary()})",
    )
    capgen_logger = loggers.build(cfg.get("logger"), "capgen")
    validation = partial(ValidationBLEU, data.features["val"], data.references("val"), vocab)
    run = GeneratorFit(cfg, model, data, out / CHECKPOINTS, capgen_logger, transfer, validation,
                       key=job.key)  # fmt: skip
    record, mode_results = mode.fit(run)  # one fit, or a method's own (wise_ft: two)
    results.update(mode_results)
    job.lap("fit")
    results.update(record["transfer"])
    stopped = warn_if_capped("the caption generator", record["history"],
                             cfg.model.fit.max_epochs, "model.fit.max_epochs",
                             fit_monitor(cfg.model.fit))  # fmt: skip
    results.update(keyed("capgen", {
        "vocab_size": len(vocab),
        # lm=hf: hf:<model folder>, so that the report tells two models apart
        "arch": f"hf:{Path(cfg.lm.path).name}" if hf else model.prefix.arch,
        **({"architecture": architecture} if architecture != "merge" else {}),
        "params": sum(p.numel() for p in model.parameters()),
        "epochs": record["epochs"],
        "resumed_after": record["resumed_after"],
        "train_time_s": record["train_time_s"],
        "stopped_at_cap": stopped,
    }))  # fmt: skip
    return model, data, record, capgen_logger


def _evaluate(cfg: DictConfig, job: Job, model, data, dataset, results: dict):
    """The generator's test scores and captions (and their pictures, where the dataset has
    them); returns the captions and what loads a test image."""
    scores, captions = evaluate_generator(model, data, cfg.eval)
    results.update(scores)
    load_image, none_because = picture_source(cfg.data, dataset)
    save_pictures(captions, load_image, job.dir, cfg.eval.pictures, none_because)
    save_attention_pictures(  # merge_attention only: where each word looked
        model, data.features["test"], dataset.image_ids("test"), captions, data.vocab,
        load_image, job.dir, min(ATTENTION_PICTURES, cfg.eval.pictures),
    )  # fmt: skip
    write_json(job.dir / CAPTIONS_FILE, captions)
    for c in captions[: cfg.eval.show]:
        log.info("%s: %s  (ref: %s)", c["image_id"], c["caption"], c["references"][0])
    job.lap("eval")
    return captions, load_image


def _lm_alone(cfg: DictConfig, job: Job):
    L.seed_everything(cfg.seed, workers=True)
    dataset = load_caption_dataset(cfg.data, Path(cfg.paths.cache_dir))
    job.lap("data")
    lm, results = language_model(cfg, dataset)
    write_json(job.dir / "lm.json", {"cache_key": lm.key, "path": str(lm.path)})
    job.lap("lm")
    return results, None


def log_train_headline(cfg: DictConfig, results: dict, start: float) -> None:
    log.info(
        "done in %.0f s: %s",
        time.perf_counter() - start,
        ", ".join(
            f"{k.split('/')[1]} {results[k]:.3f}"
            for k in (*HEADLINE, *(k for k in results if k.endswith("_all_true_frac")))
            if isinstance(results.get(k), float)
        ),
    )
    log.info("results: %s", Path(cfg.paths.output_dir) / RESULTS_FILE)


def log_lm_headline(cfg: DictConfig, results: dict, start: float) -> None:
    lm_log.info(
        "done in %.0f s: corrected geometric-mean perplexity %s",
        time.perf_counter() - start,
        ", ".join(f"{split} {results[key]:.2f}" for split, key in LM_HEADLINE.items()),
    )
    lm_log.info("results: %s", Path(cfg.paths.output_dir) / RESULTS_FILE)
