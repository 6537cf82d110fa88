"""``python -m benchmarks`` (``make bench``): speed figures of caplm's hot paths.

Speed targets live here, not in timed tests: a test that fails when a machine is busy says
nothing about the code. Each figure is the median of at least three repeats
(``time.perf_counter``; a cheap one repeats for a second), after a warm-up call where a
first call pays for lazy set-up (thread pools, kernels, file caches); ``spread`` shows how
noisy the repeats were. Where a ratio makes sense it is given against a named baseline
figure: ``ratio = figure / baseline`` (e.g. beam width 4 over width 1).

Models are built from the real configs (``conf/lm/small.yaml``, ``conf/model/merge.yaml``,
``conf/data/encoder/*.yaml``) with untrained weights and random inputs: timing does not
depend on what was learnt, except where a search stops early (noted). Nothing is read from
or written to the project's caches; the LM cache figure uses a temporary directory.

``--quick`` shrinks every size and repeats once (what the test runs); ``--only`` picks
groups; ``--json PATH`` also writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import platform
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from benchmarks.anchor import bench_anchor
from benchmarks.common import (  # noqa: F401  (Timing: the tests take it from here)
    BRUTE_BATCH,
    FEATURE_SIZE,
    GEN_VOCAB,
    RETRIEVAL_VOCAB,
    STUDY_SIZES,
    Figure,
    Run,
    Skipped,
    Timing,
    every_position_loss,
    generator_config,
    hand_stepper,
    lm_preset,
    make_generator,
    matmul_gflops,
    random_captions,
    random_features,
    with_ratio,
)
from benchmarks.gpu_grid import bench_gpu_grid
from benchmarks.study_scale import bench_study_scale
from caplm import CONF_DIR
from caplm.io import write_json

# -- the groups -------------------------------------------------------------------------------


def bench_shapes(run: Run) -> list[Figure]:
    from caplm.data.shapes import ShapesConfig, extra_scene_captions, make_shapes_dataset

    config = run.pick(ShapesConfig(), ShapesConfig(num_train=50, num_val=10, num_test=10))
    images = config.num_train + config.num_val + config.num_test
    seconds = run.time(lambda: make_shapes_dataset(config), warmup=0)
    scenes = run.pick(20_000, 1_000)
    extra = run.time(lambda: extra_scene_captions(ShapesConfig(), scenes), warmup=0)
    return [
        Figure(
            "shapes",
            "shapes_dataset",
            seconds,
            "s",
            note=f"{images} images at {config.image_size} px, no cache",
        ),
        Figure(
            "shapes", "shapes_extra_captions", extra, "s", note=f"{scenes:,} scenes x 5 captions"
        ),
    ]


def bench_encoder(run: Run) -> list[Figure]:
    from caplm.data.encoders import build_encoder

    count = run.pick(64, 8)
    images = np.random.default_rng(0).integers(0, 256, (count, 64, 64, 3), dtype=np.uint8)
    device = run.device.type

    def ms_per_image(name: str, **overrides) -> tuple[Timing, dict]:
        cfg = {**OmegaConf.load(CONF_DIR / "data" / "encoder" / f"{name}.yaml"), **overrides}
        encoder = build_encoder({**cfg, "device": device})
        return run.time(lambda: encoder.encode(images)) / count * 1e3, cfg

    figures = []
    for size in (128, 224):
        value, cfg = ms_per_image("efficientnet_lite0", image_size=size)
        figures.append(
            Figure(
                "encoder",
                f"encode_effnet_{size}",
                value,
                "ms/image",
                note=f"{count} images, 64 px resized; batch {cfg['batch_size']}",
            )
        )
    with_ratio(figures[1], figures[0])
    value, cfg = ms_per_image("small_cnn")
    figures.append(
        Figure(
            "encoder",
            "encode_small_cnn",
            value,
            "ms/image",
            note=f"{cfg['image_size']} px, batch {cfg['batch_size']}",
        )
    )
    return figures


def bench_train_step(run: Run) -> list[Figure]:
    """fwd + bwd + gradient clipping + optimiser step, without Lightning's loop."""
    batch_size, max_words = 64, 19  # T = 20 steps (<bos> + 19 words)
    steps = run.pick(20, 3)
    clip = OmegaConf.load(CONF_DIR / "model" / "merge.yaml").fit.gradient_clip_val
    gen = torch.Generator().manual_seed(0)
    batch = random_captions(batch_size, max_words, GEN_VOCAB, gen)
    batch["features"] = random_features(batch_size, gen)
    batch = {k: v.to(run.device) for k, v in batch.items()}

    figures = []
    for size in (128, 256):
        model = make_generator(run, GEN_VOCAB, embed_size=size, rnn_size=size).train()
        step = hand_stepper(model, batch, clip)
        ms = run.time(lambda step=step: [step() for _ in range(steps)]) / steps * 1e3
        note = f"batch {batch_size}, T={max_words + 1}, V={GEN_VOCAB}, embed/rnn {size}"
        figures.append(Figure("train_step", f"train_step_{size}", ms, "ms/step", note=note))
    with_ratio(figures[1], figures[0])
    return figures


def bench_generate(run: Run) -> list[Figure]:
    count = run.pick(200, 20)
    model = make_generator(run, GEN_VOCAB).eval()
    features = random_features(count, torch.Generator().manual_seed(0)).to(run.device)
    figures = []
    for width in (1, 4):
        seconds = run.time(lambda w=width: model.generate(features, beam_width=w))
        figures.append(
            Figure(
                "generate",
                f"generate_beam{width}",
                seconds,
                "s",
                note=f"{count} images, V={GEN_VOCAB}, untrained weights",
            )
        )
    with_ratio(figures[1], figures[0])
    figures[1].note += "; width 4 also runs a greedy pass"
    return figures


def bench_transformer(run: Run) -> list[Figure]:
    """The Transformer prefix (lm=transformer_*) against the GRU (lm=small, medium) it is sized
    to (parameters outside the embedding and output layer within 2%): a training step and
    batched beam search; and the Transformer's key/value-cached decoding against recomputing
    the whole prefix at every step."""
    batch_size, max_words = 64, 19
    steps = run.pick(20, 2)
    count = run.pick(64, 8)
    gen = torch.Generator().manual_seed(0)
    batch = random_captions(batch_size, max_words, GEN_VOCAB, gen)
    batch["features"] = random_features(batch_size, gen)
    batch = {k: v.to(run.device) for k, v in batch.items()}
    features = random_features(count, gen).to(run.device)
    pairs = run.pick([("small", "transformer_small"), ("medium", "transformer_medium")],
                     [("small", "transformer_small")])  # fmt: skip
    figures = []
    for rnn, transformer in pairs:
        step, search = {}, {}
        for preset in (rnn, transformer):
            model = make_generator(run, GEN_VOCAB, preset=preset).train()
            one_step = hand_stepper(model, batch)

            blocks = sum(p.numel() for n, p in model.prefix.named_parameters()
                         if not n.startswith(("embedding", "embed_proj")))  # fmt: skip
            note = f"{blocks:,} prefix params outside the embedding"
            step[preset] = Figure("transformer", f"train_step_{preset}",
                                  run.time(lambda f=one_step: [f() for _ in range(steps)])
                                  / steps * 1e3, "ms/step",
                                  note=f"batch {batch_size}, T={max_words + 1}; {note}")  # fmt: skip
            model.eval()
            search[preset] = Figure("transformer", f"beam4_{preset}",
                                    run.time(lambda m=model: m.generate(features, beam_width=4)),
                                    "s", note=f"{count} images, width 4; {note}")  # fmt: skip
        figures += [step[rnn], with_ratio(step[transformer], step[rnn]),
                    search[rnn], with_ratio(search[transformer], search[rnn])]  # fmt: skip
        if transformer == "transformer_small":
            figures += _kv_cache(run, model, features)
    return figures


def _kv_cache(run: Run, model, features: torch.Tensor) -> list[Figure]:
    """Beam search (width 4) with the key/value cache against a step that re-reads the whole
    prefix (every position's keys and values recomputed each step)."""
    from caplm.models.beam_search import beam_search

    def uncached_args():
        args = model._search_args(features, 4, {})
        image_logits = args["init_state"][-1]  # the image's term of the logits, per image
        start = torch.zeros(1, image_logits.size(1), 0, dtype=torch.long, device=features.device)
        W_h, _ = model._output_parts()

        def step(prev, state):
            history, image_logits = state
            history = torch.cat([history, prev[None, :, None]], 2)
            out, _ = model.prefix(history[0])
            logits = torch.nn.functional.linear(out[:, -1], W_h) + image_logits[0]
            return logits.log_softmax(-1), (history, image_logits)

        return {**args, "step_fn": step, "init_state": (start, image_logits)}

    with torch.no_grad():
        cached = run.time(lambda: beam_search(**model._search_args(features, 4, {})))
        uncached = run.time(lambda: beam_search(**uncached_args()))
    note = f"{features.size(0)} images, width 4, max_len {model.hparams.max_len}"
    base = Figure("transformer", "beam4_transformer_small_uncached", uncached, "s", note=note)
    fig = Figure("transformer", "beam4_transformer_small_kv_cache", cached, "s", note=note)
    return [base, with_ratio(fig, base)]


#: The study's generator sizes (its Flickr8k hyper-parameters): vocabulary, embedding, GRU,
#: image branch, batch, time steps; image features as VGG-16 fc7's.


class PeakRSS:
    """The process's peak resident memory (MB) while the block runs, sampled every 2 ms from
    /proc (Linux; NaN elsewhere), and how far it rose above the level at entry."""

    def __enter__(self):
        import threading

        self.start = self.peak = _rss_mb()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while not self.done.wait(0.002):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, _rss_mb())
        self.rise = self.peak - self.start


def _rss_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return float("nan")
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_study_sizes(run: Run) -> list[Figure]:
    """The generator at the study's sizes: the Lightning fit step against the same model
    stepped by hand, the step's GFLOP/s against the measured matmul peak, batched beam search
    (width 4) against one image at a time, and each stage's peak memory."""
    import lightning as L
    from torch.utils.flop_counter import FlopCounterMode

    from caplm.models.caption_generator import CaptionGenerator

    z = run.pick(STUDY_SIZES, {**STUDY_SIZES, "vocab": 300, "batch": 16})
    steps, images = run.pick(20, 3), run.pick(64, 4)
    args = generator_config(embed_size=z["embed"], rnn_size=z["rnn"])
    args["post_image_size"] = z["post_image"]
    clip = OmegaConf.load(CONF_DIR / "model" / "merge.yaml").fit.gradient_clip_val
    gen = torch.Generator().manual_seed(0)
    batch = random_captions(z["batch"], z["steps"] - 1, z["vocab"], gen)
    batch["features"] = torch.randn(z["batch"], z["features"], generator=gen).relu()
    batch = {k: v.to(run.device) for k, v in batch.items()}
    sizes = (f"V={z['vocab']}, embed {z['embed']}, GRU {z['rnn']}, image {z['post_image']}, "
             f"batch {z['batch']}, T={z['steps']}")  # fmt: skip

    def model():
        torch.manual_seed(0)
        return CaptionGenerator(z["vocab"], z["features"], **args).to(run.device).train()

    hand_step = hand_stepper(model(), batch, clip)
    every_position = hand_stepper(model(), batch, clip, loss=every_position_loss)

    with PeakRSS() as fit_memory:
        for _ in range(steps):
            hand_step()
    hand, dense = (t / steps * 1e3 for t in run.time_pair(
        lambda: [hand_step() for _ in range(steps)],
        lambda: [every_position() for _ in range(steps)],
    ))  # fmt: skip
    with FlopCounterMode(display=False) as flops:
        hand_step()
    gflop = flops.get_total_flops() / 1e9

    class StepClock(L.Callback):
        """Seconds from the first timed step's start to the last step's end (the warm-up
        step and the Trainer's set-up and tear-down left out)."""

        def on_train_batch_start(self, trainer, module, b, i):
            if i == 1:
                run.sync()
                self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, module, out, b, i):
            if i == steps:
                run.sync()
                self.seconds = time.perf_counter() - self.start

    def lightning_fit() -> float:
        clock = StepClock()
        trainer = L.Trainer(
            max_epochs=1, limit_val_batches=0, num_sanity_val_steps=0, logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            gradient_clip_val=clip, callbacks=[clock], accelerator=run.device.type, devices=1,
        )  # fmt: skip
        loader = torch.utils.data.DataLoader([batch] * (steps + 1), batch_size=None)
        trainer.fit(model(), loader)
        return clock.seconds

    with _quiet_lightning():
        fits = [lightning_fit() for _ in range(max(run.repeats, 1))]
    lightning = Timing(tuple(t / steps * 1e3 for t in fits))
    peak = matmul_gflops(run, run.pick(2048, 512))
    step_rate = Timing(tuple(gflop / (t / 1e3) for t in hand.times))

    generator = model().eval()
    features = batch["features"][:images]
    with PeakRSS() as search_memory:
        batched = run.time(lambda: generator.generate(features, beam_width=4))
    one = run.time(lambda: [generator.generate(features[i : i + 1], beam_width=4)
                            for i in range(images)])  # fmt: skip

    dense_fig = Figure("study_sizes", "step_logits_at_every_position", dense, "ms/step",
                       note="the output layer on padding too (as before 2026-12-07)")  # fmt: skip
    hand_fig = with_ratio(
        Figure("study_sizes", "hand_step", hand, "ms/step", note=sizes), dense_fig
    )
    peak_fig = Figure("study_sizes", "matmul_peak", peak, "GFLOP/s",
                      note=f"float32 {run.pick(2048, 512)}^2 matmul, {torch.get_num_threads()} threads")  # fmt: skip
    one_fig = Figure("study_sizes", "beam4_one_image_at_a_time", one, "s", note=f"{images} images")
    return [
        dense_fig,
        hand_fig,
        with_ratio(
            Figure(
                "study_sizes",
                "lightning_fit_step",
                lightning,
                "ms/step",
                note="Trainer.fit, steps 2.. timed by a callback",
            ),
            hand_fig,
        ),  # fmt: skip
        peak_fig,
        with_ratio(
            Figure(
                "study_sizes",
                "hand_step_rate",
                step_rate,
                "GFLOP/s",
                note=f"{gflop:.2f} GFLOP a step (fwd + bwd, counted)",
            ),
            peak_fig,
        ),  # fmt: skip
        one_fig,
        with_ratio(
            Figure(
                "study_sizes",
                "beam4_batched",
                batched,
                "s",
                note=f"{images} images in one batch; ratio < 1 is the speed-up",
            ),
            one_fig,
        ),  # fmt: skip
        Figure(
            "study_sizes",
            "peak_rss_training",
            fit_memory.peak,
            "MB",
            note=f"+{fit_memory.rise:.0f} MB over the {fit_memory.start:.0f} MB at its start",
        ),  # fmt: skip
        Figure(
            "study_sizes",
            "peak_rss_beam_search",
            search_memory.peak,
            "MB",
            note=f"+{search_memory.rise:.0f} MB over its start",
        ),  # fmt: skip
    ]


#: Regions of a region-feature image at the study's sizes: EfficientNet-Lite0's 7 x 7 head map.
STUDY_REGIONS = dict(regions=49, region_size=1280)


def bench_architectures(run: Run) -> list[Figure]:
    """merge_attention and par_inject against merge at the study's sizes (V 2,500, embedding
    502, GRU 201, batch 128): a training step by hand and batched beam search (width 4), as
    ratios to merge's timed in turn. merge and par_inject read the study's flat 4,096 values
    per image, merge_attention 49 regions of 1,280 (untrained weights, random inputs)."""
    from caplm.models.architectures import build_generator

    z = run.pick(STUDY_SIZES, {**STUDY_SIZES, "vocab": 300, "batch": 16})
    r = run.pick(STUDY_REGIONS, {"regions": 4, "region_size": 32})
    steps, images = run.pick(10, 1), run.pick(32, 4)
    cfg = {**generator_config(embed_size=z["embed"], rnn_size=z["rnn"]),
           "post_image_size": z["post_image"]}  # fmt: skip
    clip = OmegaConf.load(CONF_DIR / "model" / "merge.yaml").fit.gradient_clip_val
    gen = torch.Generator().manual_seed(0)
    batch = random_captions(z["batch"], z["steps"] - 1, z["vocab"], gen)
    flat = torch.randn(z["batch"], z["features"], generator=gen).relu()
    regions = torch.randn(z["batch"], r["regions"], r["region_size"], generator=gen).relu()
    archs = {"merge": flat, "merge_attention": regions, "par_inject": flat}
    steppers, searches = [], []
    for arch, features in archs.items():
        torch.manual_seed(0)
        shape = tuple(features.shape[1:])
        model = build_generator({**cfg, "architecture": arch}, z["vocab"], shape, {})
        model = model.to(run.device).train()
        b = {**batch, "features": features}
        b = {k: v.to(run.device) for k, v in b.items()}
        step = hand_stepper(model, b, clip)
        steppers.append(lambda step=step: [step() for _ in range(steps)])
        eval_model, x = model, b["features"][:images]
        searches.append(lambda m=eval_model, x=x: m.generate(x, beam_width=4))
    step_times = [t / steps * 1e3 for t in run.time_pair(*steppers)]
    search_times = run.time_pair(*searches)
    sizes = (f"V={z['vocab']}, embed {z['embed']}, GRU {z['rnn']}, image {z['post_image']}, "
             f"batch {z['batch']}, T={z['steps']}")  # fmt: skip
    inputs = {"merge": f"{z['features']} values", "par_inject": f"{z['features']} values",
              "merge_attention": f"{r['regions']} regions x {r['region_size']}"}  # fmt: skip
    figures = []
    for kind, times, unit, note in (
        ("step", step_times, "ms/step", sizes),
        ("beam4", search_times, "s", f"{images} images in one batch; untrained: stops vary"),
    ):
        base = Figure("architectures", f"merge_{kind}", times[0], unit,
                      note=f"{note}; {inputs['merge']}")  # fmt: skip
        figures.append(base)
        for arch, t in zip(list(archs)[1:], times[1:], strict=True):
            fig = Figure("architectures", f"{arch}_{kind}", t, unit, note=inputs[arch])
            figures.append(with_ratio(fig, base))
    return figures


def bench_retrieval(run: Run) -> list[Figure]:
    """caption_image_logprobs in one call, against evaluate's blocked path and brute force."""
    model = make_generator(run, RETRIEVAL_VOCAB).eval()
    gen = torch.Generator().manual_seed(0)
    sizes = run.pick([(1000, 200), (5000, 1000)], [(100, 20), (200, 50)])
    return [fig for n, m in sizes for fig in _retrieval(run, model, n, m, gen)]


def _retrieval(run: Run, model, n: int, m: int, gen: torch.Generator) -> list[Figure]:
    from caplm.evaluation.retrieval import score_matrix

    caps = random_captions(n, 20, RETRIEVAL_VOCAB, gen)
    inputs, targets = caps["inputs"].to(run.device), caps["targets"].to(run.device)
    features = random_features(m, gen).to(run.device)
    tag = f"{n}x{m}"

    seconds = run.time(lambda: model.caption_image_logprobs(features, inputs, targets))
    note = f"caption_image_logprobs, one call, V={RETRIEVAL_VOCAB}"
    fast = Figure("retrieval", f"retrieval_{tag}", seconds, "s", note=note)

    # score_matrix's default blocks (256 captions x 16 images) against evaluate's path
    # (RETRIEVAL_CAPTIONS captions x all images): each image block recomputes the captions'
    # side, so the small blocks are timed on some captions and scaled.
    from caplm.evaluation.evaluate import RETRIEVAL_CAPTIONS

    seconds = run.time(
        lambda: score_matrix(
            model.caption_image_logprobs,
            features,
            inputs,
            targets,
            caption_batch=RETRIEVAL_CAPTIONS,
            image_batch=m,
            progress=False,
        ),
        warmup=0,
    )
    evaluate_path = Figure(
        "retrieval",
        f"retrieval_{tag}_evaluate",
        seconds,
        "s",
        note=f"score_matrix ({RETRIEVAL_CAPTIONS} captions x all images), as evaluate runs it",
    )
    sub = min(n, run.pick(1000, 100))
    seconds = run.time(
        lambda: score_matrix(
            model.caption_image_logprobs, features, inputs[:sub], targets[:sub], progress=False
        ),
        warmup=0,  # warm from the call above
    )
    note = "score_matrix's default blocks (256 captions x 16 images)"
    if sub < n:
        note += f"; timed on {sub} captions, scaled x{n / sub:g}"
    blocks = Figure("retrieval", f"retrieval_{tag}_blocks", seconds * n / sub, "s", note=note)

    # Brute force: the model's forward on every (caption, image) pair, BRUTE_BATCH pairs
    # at a time; timed on a few batches and extrapolated linearly to n x m pairs.
    pairs = torch.arange(run.pick(4, 1) * BRUTE_BATCH, device=run.device)
    cap, img = pairs // m, pairs % m

    def brute():
        for lo in range(0, len(pairs), BRUTE_BATCH):
            c, i = cap[lo : lo + BRUTE_BATCH], img[lo : lo + BRUTE_BATCH]
            model.token_logprobs(features[i], inputs[c], targets[c]).sum(1)

    seconds = run.time(brute) / len(pairs) * n * m
    note = f"brute force: forward per pair, extrapolated from {len(pairs)} pairs"
    brute_fig = Figure("retrieval", f"retrieval_{tag}_brute", seconds, "s", note=note)
    return [
        fast,
        with_ratio(evaluate_path, fast),
        with_ratio(blocks, fast),
        with_ratio(brute_fig, fast),
    ]


def bench_ranks(run: Run) -> list[Figure]:
    from caplm.evaluation.retrieval import retrieval_ranks

    n, m = run.pick((5000, 1000), (500, 100))
    scores = np.random.default_rng(0).standard_normal((n, m))
    true_image = np.arange(n) // 5 % m
    ms = run.time(lambda: retrieval_ranks(scores, true_image)) * 1e3
    return [Figure("ranks", f"retrieval_ranks_{n}x{m}", ms, "ms")]


def bench_metrics(run: Run) -> list[Figure]:
    if shutil.which("java") is None:
        raise Skipped("java not found on PATH (METEOR and the PTB tokenizer need it)")
    from caplm.data.shapes import ShapesConfig, extra_scenes
    from caplm.evaluation.coco import caption_metrics

    count = run.pick(200, 20)
    # Six captions per scene: five references and a hypothesis that is true of the picture.
    scenes = extra_scenes(ShapesConfig(captions_per_image=6), count)
    refs = {f"s{i}": captions[:5] for i, (_, captions) in enumerate(scenes)}
    hyps = {f"s{i}": captions[5] for i, (_, captions) in enumerate(scenes)}
    figures = []
    for meteor in (False, True):
        seconds = run.time(
            lambda m=meteor: caption_metrics(refs, hyps, spice="off", meteor=m),
            warmup=0 if meteor else 1,  # the first no-METEOR run warms the jars
        )
        name = "coco_metrics" + ("" if meteor else "_no_meteor")
        note = f"{count} images x 5 refs, SPICE off" + (", one METEOR JVM" if meteor else "")
        figures.append(Figure("metrics", name, seconds, "s", note=note))
    with_ratio(figures[1], figures[0])
    return figures


def bench_lm_cache(run: Run) -> list[Figure]:
    from caplm.data.shapes import ShapesConfig, extra_scene_captions
    from caplm.data.text import Vocabulary, tokenize
    from caplm.data.types import Corpus
    from caplm.runtime.lm_cache import get_or_train
    from caplm.runtime.training import make_trainer

    scenes = run.pick(400, 60)
    text = [tokenize(c) for c in extra_scene_captions(ShapesConfig(), scenes)]
    val = [tokenize(c) for c in extra_scene_captions(ShapesConfig(), scenes // 10, part="val")]
    corpus, vocab = Corpus("shapes_extra", text, val), Vocabulary.build(text)
    lm_cfg = OmegaConf.load(CONF_DIR / "lm" / "small.yaml")
    lm_cfg.update(embed_size=32, rnn_size=32)
    lm_cfg.fit.update(batch_size=64, max_epochs=run.pick(2, 1))
    trainer_cfg = {
        **OmegaConf.load(CONF_DIR / "trainer" / "cpu.yaml"),
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    if run.device.type == "cuda":
        trainer_cfg.update(accelerator="gpu", devices=1)
    trainer = partial(make_trainer, trainer_cfg)

    with tempfile.TemporaryDirectory(prefix="caplm-bench-") as tmp, _quiet_lightning():
        fresh = iter(range(1_000))  # a new cache folder per call: every call trains

        def train():
            return get_or_train(lm_cfg, corpus, vocab, 0, Path(tmp) / str(next(fresh)), trainer)

        stored = run.time(train, warmup=0)
        load = run.time(lambda: get_or_train(lm_cfg, corpus, vocab, 0, Path(tmp) / "0", trainer))
    note = f"{len(text)} sentences, {lm_cfg.fit.max_epochs} epoch(s), embed/rnn 32"
    load_fig = Figure("lm_cache", "lm_cache_load", load, "s", note="found in the cache")
    return [
        with_ratio(Figure("lm_cache", "lm_train_store", stored, "s", note=note), load_fig),
        load_fig,
    ]


def bench_robust(run: Run) -> list[Figure]:
    """One LM training epoch (``lm=small``: forward, backward, clipping, Adam step over every
    batch of a shapes corpus, without Lightning's loop) trained plainly, with word dropout and
    noise, and adversarially (``lm.fit.robust``), timed in turn: the ratios say what robust
    training costs (an adversarial step is two forward and two backward passes)."""
    from caplm.data.batching import encode_sentences, pad_batch
    from caplm.data.shapes import ShapesConfig, extra_scene_captions
    from caplm.data.text import Vocabulary, tokenize
    from caplm.io import to_dict
    from caplm.models.common import constructor_args
    from caplm.models.language_model import LanguageModel
    from caplm.models.robust import RobustTraining

    text = [tokenize(c) for c in extra_scene_captions(ShapesConfig(), run.pick(400, 40))]
    vocab = Vocabulary.build(text)
    cfg = lm_preset("small")
    size = cfg.fit.batch_size
    ids = encode_sentences(text, vocab, cfg.fit.max_len)
    batches = [pad_batch(ids[i : i + size]) for i in range(0, len(ids), size)]
    batches = [{k: v.to(run.device) for k, v in b.items()} for b in batches]
    settings = {"lm_epoch_plain": None, "lm_epoch_noisy": {"word_dropout": 0.1, "noise": 0.3},
                "lm_epoch_adversarial": {"adversarial": 0.05}}  # fmt: skip
    epochs = {}
    for name, robust in settings.items():
        torch.manual_seed(0)
        model = LanguageModel(len(vocab), **constructor_args(LanguageModel, to_dict(cfg)))
        model = model.to(run.device).train()
        model.robust = RobustTraining(robust) if robust else None
        opt = model.configure_optimizers()

        def epoch(model=model, opt=opt):
            for i, batch in enumerate(batches):
                opt.zero_grad()
                model.training_step(batch, i).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.fit.gradient_clip_val)
                opt.step()

        epochs[name] = epoch
    with _quiet_lightning():  # self.log outside a Trainer warns; nothing is logged here
        times = run.time_pair(*epochs.values())
    note = f"{len(text)} sentences, {len(batches)} batches of {size}, lm=small"
    figures = [
        Figure("robust", name, t, "s", note=f"{note}; robust {settings[name] or 'off'}")
        for name, t in zip(epochs, times, strict=True)
    ]
    return [figures[0], *(with_ratio(f, figures[0]) for f in figures[1:])]


def bench_transferability(run: Run) -> list[Figure]:
    """The transferability scores of one LM at about the study's sizes: 20,000 caption
    positions per sample, a 2,500-word caption vocabulary (the LogME targets), GRU outputs of
    conf/lm/small.yaml plus 64 image PCA components (a few hundred features)."""
    from caplm.evaluation.transferability import logme

    from caplm.data.text import Vocabulary
    from caplm.data.types import CaptionDataset, CaptionImage
    from caplm.evaluation.transfer_scores import transferability_scores
    from caplm.models.language_model import LanguageModel

    words, images, positions = run.pick((2500, 2000, 20_000), (300, 200, 2_000))
    rng = np.random.default_rng(0)
    zipf = 1 / np.arange(1, words + 1)
    vocab_words = [f"w{i}" for i in range(words)]

    def caption():
        n = int(rng.integers(8, 16))
        return [vocab_words[i] for i in rng.choice(words, n, p=zipf / zipf.sum())]

    train = [CaptionImage(f"i{i}", [caption() for _ in range(5)], []) for i in range(images)]
    dataset = CaptionDataset("bench", {"train": train, "val": [], "test": []}, key="bench")
    vocab = Vocabulary.build(dataset.sentences("train"))
    features = {"train": rng.standard_normal((images, FEATURE_SIZE)).astype(np.float32)}
    lm_cfg = OmegaConf.load(CONF_DIR / "lm" / "small.yaml")
    torch.manual_seed(0)
    lm = LanguageModel(len(vocab), embed_size=lm_cfg.embed_size, rnn_size=lm_cfg.rnn_size)
    cfg = {**OmegaConf.load(CONF_DIR / "transferability" / "default.yaml"), "positions": positions}
    per_lm = run.time(
        lambda: transferability_scores(lm, vocab, dataset, features, vocab, cfg, 30), warmup=0
    )
    dims = lm_cfg.rnn_size + cfg["image_components"] + 1
    x = rng.standard_normal((positions, dims))
    labels = rng.integers(0, len(vocab), positions)
    one = run.time(lambda: logme(x, labels))
    note = (f"{cfg['samples']} samples x (the LM: 4 scores + a random prefix: LogME); {positions} "
            f"positions, {len(vocab)} words, {dims} features")  # fmt: skip
    logme_fig = Figure("transferability", "logme_once", one, "s",
                       note=f"{positions} x {dims} features, {len(vocab)} targets")  # fmt: skip
    return [
        with_ratio(Figure("transferability", "scores_per_lm", per_lm, "s", note=note), logme_fig),
        logme_fig,
    ]


def bench_transfer_methods(run: Run) -> list[Figure]:
    """One training epoch (Lightning's loop, conf/lm/small.yaml sizes) of the generator under
    each transfer method, against ``init``; for ``wise_ft`` its frozen fit's epoch (it runs
    one fit per stage) and the scoring of its 11-alpha grid on a validation set."""
    import lightning as L

    from caplm.data.text import Vocabulary
    from caplm.models.language_model import LanguageModel
    from caplm.models.transfer.callback import WeightTransfer
    from caplm.models.transfer.methods.wise_ft import WiseFT, choose_alpha, validation_loss
    from caplm.models.transfer.modes import get_mode

    batches, batch_size, max_words = run.pick(40, 3), 64, 19
    gen = torch.Generator().manual_seed(0)
    data = []
    for _ in range(batches):
        batch = random_captions(batch_size, max_words, GEN_VOCAB, gen)
        batch["features"] = random_features(batch_size, gen)
        data.append(batch)
    sizes = {k: generator_config()[k] for k in ("embed_size", "rnn_size")}
    lm_state = LanguageModel(GEN_VOCAB, **sizes).state_dict()
    row_index = Vocabulary([f"w{i}" for i in range(GEN_VOCAB - 4)]).index_in(
        Vocabulary([f"w{i}" for i in range(GEN_VOCAB - 4)])
    )
    accelerator = "gpu" if run.device.type == "cuda" else "cpu"

    def epoch(mode: str):
        model = make_generator(run, GEN_VOCAB).cpu()
        method = get_mode(mode)
        t = {"mode": mode, "parts": ["embedding", "rnn"], **method.defaults()}
        callbacks = [WeightTransfer(method, t["parts"], lm_state, row_index),
                     *method.callbacks(t, lm_state, row_index)]  # fmt: skip
        trainer = L.Trainer(max_epochs=1, accelerator=accelerator, devices=1, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, callbacks=callbacks)  # fmt: skip
        trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=None))
        return model

    figures = {}
    note = f"{batches} batches of {batch_size}, T={max_words + 1}, V={GEN_VOCAB}"
    with _quiet_lightning():
        epoch("init")  # the first fit of a process pays Lightning's lazy set-up
        for mode in ("init", "frozen", "l2_sp", "aux_lm", "ulmfit"):
            name = f"epoch_{mode}" + ("_wise_ft_theta0" if mode == "frozen" else "")
            figures[mode] = Figure("transfer_methods", name, run.time(lambda m=mode: epoch(m)),
                                   "s/epoch", note=note)  # fmt: skip
        model = epoch("init")
        theta_0 = {k: v.clone() for k, v in model.state_dict().items()}
        theta_1 = {k: v + 0.01 for k, v in theta_0.items()}
        val = data[: max(1, batches // 4)]
        grid = WiseFT.defaults()["alphas"]

        def score():
            choose_alpha(
                model, theta_0, theta_1, grid, lambda m: {"val/loss": validation_loss(m, val)}
            )

        alphas = Figure("transfer_methods", "wise_ft_alpha_grid", run.time(score), "s",
                        note=f"{len(grid)} alphas x {len(val)} validation batches")  # fmt: skip
    base = figures["init"]
    return [base, *(with_ratio(f, base) for m, f in figures.items() if m != "init"),
            with_ratio(alphas, base)]  # fmt: skip


@contextlib.contextmanager
def _quiet_lightning():
    """Lightning's info lines ("GPU available ...") and its small-data warnings off."""
    loggers = [logging.getLogger(n) for n in ("lightning", "lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


#: The groups, in the order they run; ``--only`` takes these names.
BENCHES: dict[str, Callable[[Run], list[Figure]]] = {
    "shapes": bench_shapes,
    "encoder": bench_encoder,
    "train_step": bench_train_step,
    "generate": bench_generate,
    "transformer": bench_transformer,
    "study_sizes": bench_study_sizes,
    "anchor": bench_anchor,
    "architectures": bench_architectures,
    "retrieval": bench_retrieval,
    "ranks": bench_ranks,
    "metrics": bench_metrics,
    "lm_cache": bench_lm_cache,
    "robust": bench_robust,
    "transferability": bench_transferability,
    "transfer_methods": bench_transfer_methods,
    "study_scale": bench_study_scale,
    "gpu_grid": bench_gpu_grid,
}
#: Groups a plain run leaves out (they write gigabytes or start many processes, and take
#: minutes): ``--only`` runs them.
OPT_IN = ("study_scale", "gpu_grid")


def default_groups() -> list[str]:
    """What a plain ``python -m benchmarks`` runs: every group but the opt-in ones."""
    return [n for n in BENCHES if n not in OPT_IN]


# -- running and printing ---------------------------------------------------------------------


def run_benches(names: list[str], run: Run, out=None) -> tuple[list[Figure], dict]:
    """Run the named groups, printing each figure as it comes; returns (figures, skipped)."""
    out = out or sys.stdout
    figures, skipped = [], {}
    header = _row("name", "figure", "unit", "n", "spread", "ratio", "vs", "note")
    print(header, file=out, flush=True)
    for name in names:
        # Seeded in a forked RNG: the figures are repeatable and the caller's seed is kept.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            try:
                got = BENCHES[name](run)
            except Skipped as why:
                skipped[name] = str(why)
                print(f"{name:<28} skipped: {why}", file=out, flush=True)
                continue
        for fig in got:
            print(_format(fig), file=out, flush=True)
        figures += got
    return figures, skipped


def _format(fig: Figure) -> str:
    ratio = "" if fig.ratio is None else f"{fig.ratio:.3g}x"
    value = f"{fig.value:,.0f}" if fig.value >= 1000 else f"{fig.value:.3g}"
    cells = (value, fig.unit, str(fig.repeats), f"{fig.spread:.0%}", ratio)
    return _row(fig.name, *cells, fig.vs or "", fig.note)


def _row(*cells: str) -> str:
    name, figure, unit, n, spread, ratio, vs, note = cells
    row = f"{name:<27} {figure:>7} {unit:<8} {n:>3} {spread:>6} {ratio:>7}  {vs:<23} {note}"
    return row.rstrip()


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown group(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(BENCHES)}"
        )
    return [n for n in BENCHES if n in names]  # the usual order, each once


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(n) for n in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench",
        description="Speed figures of caplm's hot paths (medians of repeats, with ratios).",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument(
        "--only",
        type=_names,
        metavar="NAME[,NAME]",
        help=f"run only these groups: {', '.join(BENCHES)} (default: all but {', '.join(OPT_IN)})",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    parser.add_argument("--repeats", type=int, help="repeats per figure (default 3; quick 1)")
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda", "auto"),
        default="cpu",
        help="where the models run (default cpu, the trainer's default; auto: cuda if there)",
    )
    grid = parser.add_argument_group("gpu_grid (benchmarks/gpu_grid.py)")
    grid.add_argument("--grid-jobs", type=_ints, metavar="N[,N]",
                      help="jobs at once to time (default 1,2,4,8,16)")  # fmt: skip
    grid.add_argument("--grid-steps", type=int, metavar="N",
                      help="steps each job times per model, scaled to an epoch (GPU 20, CPU 3)")  # fmt: skip
    grid.add_argument("--grid-images", type=int, metavar="N",
                      help="test images each job searches, scaled to 1,000 (GPU 200, CPU 4)")  # fmt: skip
    grid.add_argument("--grid-epochs", type=_ints, metavar="LM,GEN",
                      help="epochs a fit is assumed to take (default 10,10)")  # fmt: skip
    grid.add_argument("--grid-precision", choices=("fp32", "bf16"),
                      help="default: bf16 on a GPU that has it, else fp32")  # fmt: skip
    grid.add_argument("--grid-compile", action="store_true", help="torch.compile each loss")
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.grid_epochs is not None and len(args.grid_epochs) != 2:
        parser.error("--grid-epochs takes two numbers: LM,GEN")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    repeats = args.repeats or (1 if args.quick else 3)
    options = {k: v for k, v in vars(args).items() if k.startswith("grid_") and v}
    run = Run(args.quick, repeats, torch.device(args.device), min_seconds=0 if args.quick else 1,
              options=options)  # fmt: skip
    names = args.only or default_groups()

    meta = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "device": args.device,
        "quick": args.quick,
        "repeats": repeats,
    }
    quick = ", quick sizes" if args.quick else ""
    print(f"caplm bench: torch {meta['torch']}, {meta['threads']} threads, {args.device}{quick}")
    print(f"figure: median of n timed repeats, n >= {repeats}", end="")
    print(" (cheap ones repeat for 1 s)" if run.min_seconds else "")
    print("spread: (slowest - fastest) / median; ratio: figure / the 'vs' figure\n")
    start = time.perf_counter()
    figures, skipped = run_benches(names, run)
    meta["total_s"] = round(time.perf_counter() - start, 1)
    print(f"\n{len(figures)} figures in {meta['total_s']:.0f} s")
    if args.json:
        write_json(
            args.json,
            {
                "meta": meta,
                "figures": {f.name: asdict(f) for f in figures},
                "skipped": skipped,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
