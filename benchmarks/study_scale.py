"""The study's data sizes in bounded memory (``python -m benchmarks --only study_scale``).

Two real jobs, each run by caplm's own command in a child process whose peak resident memory
(the kernel's ``ru_maxrss``: every stage, start to end) is the figure:

- ``lm``: ``python -m caplm.lm`` with ``corpus=textfile`` on 300,000 generated sentences
  (about lm1b's length, Zipf-distributed words, min frequency 5) at the study's lm1b sizes;
- ``mscoco``: ``python -m caplm.train`` on an MSCOCO-size Karpathy split file (about 600,000
  captions) with VGG-size features (4,096 values an image) in an ``.h5`` file of about 2 GB,
  whose train split the loader reads from disk batch by batch.

Both train a fixed number of steps (``+trainer.limit_train_batches``), not to convergence:
memory does not grow with steps, time does. In this process the same data modules' loaders
are timed against the same models' training steps: the loader's share of a step.

It writes about 2.2 GB under a temporary folder (removed at the end) and takes minutes, so
it is not among the groups a plain ``make bench`` runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import Figure, Run, generator_config, hand_stepper, with_ratio

LM_SENTENCES = 300_000
COCO_IMAGES = dict(train=118_287, val=500, test=500)  # 5 captions each: 596,435 captions
COCO_FEATURES = 4096
CAPTIONS_PER_IMAGE = 5
MIN_WORD_FREQ = 5
#: (word types, Zipf exponent): at full size, vocabularies at min frequency 5 of about the
#: study's 36,070 words for lm1b's 300,000 sentences (../shared/study_results.csv) and the
#: usual 10,000 or so of MSCOCO's captions.
LM_WORDS = (200_000, 1.23)
CAPTION_WORDS = (30_000, 1.5)
#: Figures the issue set as targets: the LM job's peak RSS, the loader's share of a step.
LM_RSS_TARGET_MB = 4096
LOADER_SHARE_TARGET = 0.05


def zipf_sentences(
    n: int, types: int, exponent: float, lengths: tuple[int, int], seed: int
) -> list[str]:
    """``n`` sentences of words drawn with Zipf-like frequencies (p ~ rank^-exponent); a word
    is its rank in letters (``a``, ``b``, ..., ``ba``): every normaliser keeps it whole."""
    rng = np.random.default_rng(seed)
    p = (np.arange(types) + 2.7) ** -exponent
    cdf = np.cumsum(p / p.sum())
    sizes = rng.integers(lengths[0], lengths[1] + 1, n)
    ranks = np.minimum(np.searchsorted(cdf, rng.random(int(sizes.sum()))), types - 1)
    words = np.array([_letters(r) for r in range(types)])[ranks]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return [" ".join(words[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _letters(rank: int) -> str:
    word = ""
    while True:
        rank, digit = divmod(rank, 26)
        word = chr(ord("a") + digit) + word
        if not rank:
            return word


def write_corpus(path: Path, n: int, seed: int = 0) -> Path:
    path.write_text("\n".join(zipf_sentences(n, *LM_WORDS, (8, 40), seed)) + "\n")
    return path


def write_coco(folder: Path, images: dict[str, int], seed: int = 0) -> tuple[Path, Path]:
    """A Karpathy-format split file and an .h5 of features for it, written in blocks."""
    import h5py

    total = sum(images.values())
    captions = zipf_sentences(total * CAPTIONS_PER_IMAGE, *CAPTION_WORDS, (8, 18), seed)
    entries, k = [], 0
    for split, n in images.items():
        for i in range(n):
            text = captions[k : k + CAPTIONS_PER_IMAGE]
            k += CAPTIONS_PER_IMAGE
            entries.append({"filename": f"{split}{i}.jpg", "filepath": split, "split": split,
                            "sentences": [{"raw": t, "tokens": t.split()} for t in text]})  # fmt: skip
    annotations = folder / "dataset_coco.json"
    annotations.write_text(json.dumps({"dataset": "coco_size", "images": entries}))
    del entries, captions
    features = folder / "features.h5"
    rng = np.random.default_rng(seed)
    with h5py.File(features, "w") as f:
        rows = f.create_dataset("features", (total, COCO_FEATURES), dtype="float32")
        for start in range(0, total, 8192):
            n = min(8192, total - start)
            rows[start : start + n] = np.maximum(rng.standard_normal((n, COCO_FEATURES)), 0)
        f["ids"] = np.array([f"{s}{i}.jpg" for s, n in images.items() for i in range(n)], "S")
    return annotations, features


def run_job(module: str, overrides: list[str], out: Path) -> tuple[dict, float, float]:
    """Run ``python -m <module> overrides`` in a child; its results, peak RSS (MB), seconds."""
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "1"}
    args = [sys.executable, "-m", module, *overrides, f"hydra.run.dir={out}",
            "trainer.enable_progress_bar=false", "logger=none"]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    log = out / "child.log"
    start = time.perf_counter()
    with log.open("wb") as sink:
        proc = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, not all children's
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{module} {' '.join(overrides)} failed ({proc.returncode}):\n{tail}")
    return json.loads((out / "results.json").read_text()), usage.ru_maxrss / 1024, seconds


def loader_share(run: Run, loader, model, steps: int) -> tuple[float, float]:
    """Seconds a batch from ``loader`` and a training step of ``model`` on one (medians)."""
    batches, waits = iter(loader), []
    for _ in range(steps):
        start = time.perf_counter()
        batch = next(batches)
        waits.append(time.perf_counter() - start)
    step = hand_stepper(model, batch, clip=None)
    step_time = run.time(step)
    return float(np.median(waits[1:] or waits)), step_time.median


def bench_study_scale(run: Run) -> list[Figure]:
    """Peak memory of an LM job on 300,000 sentences and of a generator job on an MSCOCO-size
    caption set with 2 GB of .h5 features; the data loader's share of each training step."""
    from omegaconf import OmegaConf

    from caplm import CONF_DIR
    from caplm.data.corpora import read_sentences
    from caplm.data.datamodules import CaptionDataModule, TextDataModule
    from caplm.data.features import load_features
    from caplm.data.readers import read_karpathy_json
    from caplm.data.text import Vocabulary, normaliser
    from caplm.data.types import Corpus
    from caplm.models.caption_generator import CaptionGenerator
    from caplm.models.language_model import LanguageModel

    n_sentences = run.pick(LM_SENTENCES, 3000)
    images = run.pick(COCO_IMAGES, dict(train=600, val=20, test=20))
    steps = run.pick(20, 3)
    study = {n: OmegaConf.load(CONF_DIR / "study" / f"{n}.yaml") for n in ("lm1b", "mscoco")}
    figures = []
    with tempfile.TemporaryDirectory(prefix="caplm-study-scale-") as tmp:
        tmp = Path(tmp)
        common = [f"paths.cache_dir={tmp / 'cache'}", f"+trainer.limit_train_batches={steps}",
                  "+trainer.limit_val_batches=20", "eval.lm_samples=20"]  # fmt: skip

        corpus = write_corpus(tmp / "corpus.txt", n_sentences)
        lm = study["lm1b"].lm
        lm_args = [f"lm.{k}={lm[k]}" for k in ("embed_size", "rnn_size", "lr")]
        lm_args += [f"lm.fit.batch_size={lm.fit.batch_size}", "lm.fit.max_epochs=1"]
        results, lm_rss, lm_seconds = run_job(
            "caplm.lm",
            ["corpus=textfile", f"corpus.train_file={corpus}",
             f"corpus.min_word_freq={MIN_WORD_FREQ}", "corpus.max_val_sentences=2000",
             "corpus.size_exponent=null",
             *lm_args, *common],
            tmp / "lm_job",
        )  # fmt: skip
        note = (f"{n_sentences:,} sentences, V={results['lm/vocab_size']:,}, study lm1b sizes, "
                f"{steps} steps; job {lm_seconds:.0f} s")  # fmt: skip
        figures.append(Figure("study_scale", "lm_job_peak_rss", lm_rss, "MB", note=note))
        target = Figure("study_scale", "lm_rss_target", LM_RSS_TARGET_MB, "MB", note="the aim")
        figures += [
            target,
            with_ratio(Figure("study_scale", "lm_job_vs_target", lm_rss, "MB"), target),
        ]

        sentences = read_sentences(corpus, normaliser("study"))
        text = Corpus("textfile", sentences[1000:], sentences[:1000])
        vocab = Vocabulary.build(text.train, min_freq=MIN_WORD_FREQ)
        start = time.perf_counter()
        data = TextDataModule(text, vocab, batch_size=lm.fit.batch_size, max_len=40, seed=1)
        encode = Figure("study_scale", "lm_encode_corpus", time.perf_counter() - start, "s",
                        note=f"{len(text.train):,} sentences to ids, once a job")  # fmt: skip
        figures.append(encode)
        torch.manual_seed(0)
        model = LanguageModel(len(vocab), embed_size=lm.embed_size, rnn_size=lm.rnn_size)
        wait, step = loader_share(run, data.train_dataloader(), model.train(), steps)
        figures += _share_figures("lm", wait, step)
        del text, vocab, data, model

        annotations, features = write_coco(tmp, images)
        size_gb = features.stat().st_size / 1e9
        gen = study["mscoco"].model
        gen_args = [f"model.post_image_size={gen.post_image_size}",
                    f"model.fit.batch_size={gen.fit.batch_size}", "model.fit.max_epochs=1"]  # fmt: skip
        results, coco_rss, coco_seconds = run_job(
            "caplm.train",
            ["data=mscoco", f"data.annotations={annotations}", f"data.features_file={features}",
             "data.images_dir=null", "transfer=none", "eval.retrieval=false",
             *gen_args, *common],
            tmp / "coco_job",
        )  # fmt: skip
        n_captions = sum(images.values()) * CAPTIONS_PER_IMAGE
        note = (f"{n_captions:,} captions, {size_gb:.2f} GB .h5 features, "
                f"V={results['capgen/vocab_size']:,}, {steps} steps; job {coco_seconds:.0f} s")  # fmt: skip
        figures.append(Figure("study_scale", "mscoco_job_peak_rss", coco_rss, "MB", note=note))
        file_fig = Figure("study_scale", "mscoco_features_file", size_gb * 1e3, "MB")
        figures.append(file_fig)
        figures.append(with_ratio(Figure("study_scale", "mscoco_rss_vs_file", coco_rss, "MB"),
                                  file_fig))  # fmt: skip

        dataset = read_karpathy_json(annotations, restval="train")
        feats = load_features({"features_file": str(features)}, dataset, tmp / "cache")
        vocab = Vocabulary.build(dataset.sentences("train"), min_freq=MIN_WORD_FREQ)
        data = CaptionDataModule(dataset, feats, vocab, batch_size=gen.fit.batch_size, seed=1)
        sizes = {k: study["mscoco"].lm[k] for k in ("embed_size", "rnn_size")}
        args = {**generator_config(**sizes), "post_image_size": gen.post_image_size}
        torch.manual_seed(0)
        model = CaptionGenerator(len(vocab), data.feature_size, **args)
        wait, step = loader_share(run, data.train_dataloader(), model.train(), steps)
        figures += _share_figures("mscoco", wait, step, on_disk=type(feats["train"]).__name__)
    return figures


def _share_figures(name: str, wait: float, step: float, on_disk: str = "") -> list[Figure]:
    step_fig = Figure("study_scale", f"{name}_train_step", step * 1e3, "ms")
    where = f"; train features: {on_disk}" if on_disk else ""
    return [
        step_fig,
        with_ratio(Figure("study_scale", f"{name}_loader_batch", wait * 1e3, "ms",
                          note=f"target ratio <= {LOADER_SHARE_TARGET}{where}"), step_fig),
    ]  # fmt: skip
