"""The entry point: ``python -m caplm.train [+experiment=NAME] [overrides] [-m]``.

One job: caption data and image features -> the LM corpus -> the LM (from the shared cache,
or trained once) -> the caption generator with the weight-transfer callback -> evaluation ->
``results.json``. Everything a job writes lands in its output folder (``paths.output_dir``).
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig

from caplm import CONF_DIR
from caplm.data.datamodules import CaptionDataModule
from caplm.data.features import load_features
from caplm.data.readers import load_caption_dataset
from caplm.data.text import Vocabulary
from caplm.evaluation.attention_pictures import save_attention_pictures
from caplm.evaluation.evaluate import ValidationBLEU, evaluate_generator
from caplm.evaluation.pictures import picture_source, save_pictures
from caplm.evaluation.transfer_scores import scores_or_reason
from caplm.io import write_json
from caplm.models.architectures import IMAGE_FREE_PREFIX, architecture_of, build_generator
from caplm.models.prefix import PrefixConfig, check_same_heads
from caplm.models.transfer.callback import WeightTransfer
from caplm.models.transfer.modes import check_arch_parts, get_mode
from caplm.models.transfer.vocab import generator_vocabulary
from caplm.results import (
    CAPTIONS_FILE,
    RESULTS_FILE,
    keyed,
    metric_key,
    transferability_key,
)
from caplm.runtime import loggers
from caplm.runtime.generator_fit import GeneratorFit
from caplm.runtime.jobs import Job, run_job
from caplm.runtime.lm_stage import language_model, lm_corpus
from caplm.runtime.training import CHECKPOINTS, fit_monitor, warn_if_capped

log = logging.getLogger("caplm.train")

#: Test captions whose attention over the picture a merge_attention job draws.
ATTENTION_PICTURES = 2
#: Printed at the end of a job (and, on generated data, the share of fully true captions).
HEADLINE = (metric_key("BLEU-4"), metric_key("METEOR"), metric_key("CIDEr"))


def run(cfg: DictConfig) -> dict:
    """Run one job; returns its results (also written to ``<output_dir>/results.json``)."""
    return run_job(cfg, _train_and_evaluate)


def _train_and_evaluate(cfg: DictConfig, job: Job):
    out, mode = job.dir, get_mode(cfg.transfer.mode)
    if mode.uses_lm or mode.freezes:  # a part the prefix lacks fails now, not after the LM
        check_arch_parts(cfg.transfer.parts, cfg.model.arch, cfg.model.num_layers)
    if mode.uses_lm:  # what the weights' shapes cannot tell apart
        check_same_heads(cfg.lm, cfg.model)
    cache_dir = Path(cfg.paths.cache_dir)
    L.seed_everything(cfg.seed, workers=True)
    dataset = load_caption_dataset(cfg.data, cache_dir)
    # the LM corpus before the features: its size is checked before images are encoded
    corpus = lm_corpus(cfg, dataset) if mode.uses_lm else None
    features = load_features(cfg.data, dataset, cache_dir)
    caption_vocab = Vocabulary.build(dataset.sentences("train"), cfg.data.min_word_freq)
    job.lap("data")

    results: dict = {}
    lm = None
    if mode.uses_lm:
        lm, lm_results = language_model(cfg, dataset, corpus)
        results.update(lm_results)
        write_json(out / "lm.json", {"cache_key": lm.key, "path": str(lm.path)})
        job.lap("lm")

    architecture = architecture_of(cfg.model)
    if lm and cfg.transferability.enabled and architecture not in IMAGE_FREE_PREFIX:
        results[transferability_key("skipped")] = (
            f"not applicable: model={architecture} feeds the image into the RNN, so the "
            "generator's prefix is not the LM's image-free one that the scores measure"
        )
    elif lm and cfg.transferability.enabled:  # before the generator: it must not need one
        results.update(
            scores_or_reason(
                lm.model,
                lm.vocab,
                dataset,
                features,
                caption_vocab,
                cfg.transferability,
                cfg.data.max_caption_len,
            )
        )
        job.lap("scores")
    vocab = generator_vocabulary(caption_vocab, lm.vocab if lm else None, cfg.transfer.vocab_policy)
    vocab.save(out / "vocab.json")
    data = CaptionDataModule(
        dataset,
        features,
        vocab,
        cfg.model.fit.batch_size,
        cfg.data.max_caption_len,
        cfg.data.num_workers,
        cfg.seed,
    )
    L.seed_everything(cfg.seed, workers=True)
    model = build_generator(cfg.model, len(vocab), data.feature_shape, cfg.generation)
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
    results.update(
        keyed(
            "capgen",
            {
                "vocab_size": len(vocab),
                "arch": model.prefix.arch,
                **({"architecture": architecture} if architecture != "merge" else {}),
                "params": sum(p.numel() for p in model.parameters()),
                "epochs": record["epochs"],
                "resumed_after": record["resumed_after"],
                "train_time_s": record["train_time_s"],
                "stopped_at_cap": warn_if_capped(
                    "the caption generator",
                    record["history"],
                    cfg.model.fit.max_epochs,
                    "model.fit.max_epochs",
                    fit_monitor(cfg.model.fit),
                ),
            },
        )
    )
    scores, captions = evaluate_generator(model, data, cfg.eval)
    results.update(scores)
    load_image, none_because = picture_source(cfg.data, dataset)
    save_pictures(captions, load_image, out, cfg.eval.pictures, none_because)
    save_attention_pictures(  # merge_attention only: where each word looked
        model, data.features["test"], dataset.image_ids("test"), captions, vocab,
        load_image, out, min(ATTENTION_PICTURES, cfg.eval.pictures),
    )  # fmt: skip
    write_json(out / CAPTIONS_FILE, captions)
    for c in captions[: cfg.eval.show]:
        log.info("%s: %s  (ref: %s)", c["image_id"], c["caption"], c["references"][0])
    job.lap("eval")
    return results, partial(loggers.report, capgen_logger, captions=captions, load_image=load_image)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    start = time.perf_counter()
    results = run(cfg)
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


if __name__ == "__main__":
    main()
