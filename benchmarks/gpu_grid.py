"""Bench group ``gpu_grid`` (``make bench-gpu``): how fast the study's Flickr8k grid runs on
this device, from measured epochs of 1, 2, 4, 8 and 16 jobs at once.

Each job is a separate process (as a ``hydra/launcher=gpus`` worker), all on one device (the
first GPU, or the CPU with ``cores / jobs`` threads each). A job times, at the study's
Flickr8k sizes with synthetic data of the real shapes (no dataset needed): some steps of the
in-domain LM (V 2,500, embedding 502, GRU 201, RMSprop, batch 210, T 20), some steps of the
generator (image 4,096 -> 430, batch 227) and a batched beam search (width 4) of some test
images. Steps and images are scaled to a full epoch (30,000 captions: 6,000 images x 5) and
the 1,000 test images: ``--grid-steps`` (default 20 on a GPU, 3 on the CPU) and
``--grid-images`` (default 200 / 4) say how many were timed, so a short CPU run is an
extrapolation, said in each figure's note. Jobs start together (a barrier after a warm-up
step) and the wall time is the slowest job's.

The prediction of ``+experiment=paper_flickr8k`` (``GRID``: 160 generator trainings, 130 with
a transferred LM and 30 controls, and 65 LMs on 3,000 to 300,000 sentences) counts the work in
these units, with assumed epochs per fit (``--grid-epochs LM,GEN``; the study stops early with
patience 1: default 10,10): LM epochs scale with the corpus's sentences, every LM as the
in-domain one (the mscoco and lm1b LMs' other sizes are not timed); the caption metrics
(METEOR's JVM, CIDEr, SPICE) and data loading are not counted. On N devices the work divides
by N, but no faster than the longest chain (the largest LM, then its generator).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import torch

from benchmarks.common import STUDY_SIZES, Figure, Run, Skipped

#: The study's Flickr8k cell (conf/study/flickr8k.yaml): LM and generator batch sizes.
LM_BATCH, GEN_BATCH = 210, 227
TRAIN_CAPTIONS, TEST_IMAGES = 30_000, 1_000  # Flickr8k: 6,000 training images x 5; test images
#: ``+experiment=paper_flickr8k``: generator fits (130 with an LM, 30 controls), and the LMs'
#: corpus sizes as multiples of the caption training set: 10^e for e in the study's exponents,
#: 5 seeds each (flickr8k up to e 0; mscoco, lm1b up to e 1).
GENERATOR_FITS = 160
EXPONENTS = {
    "flickr8k": (-1, -0.5, 0),
    "mscoco": (-1, -0.5, 0, 0.5, 1),
    "lm1b": (-1, -0.5, 0, 0.5, 1),
}
SEEDS = 5
DEFAULT_JOBS = (1, 2, 4, 8, 16)


def lm_sizes() -> list[float]:
    """Each of the grid's 65 LMs' corpus as a multiple of the caption training set."""
    return [10**e for exps in EXPONENTS.values() for e in exps for _ in range(SEEDS)]


def predict_hours(t: dict, lm_epochs: int, gen_epochs: int, devices: int, jobs: int) -> float:
    """Wall hours of the grid on ``devices`` devices running ``jobs`` jobs each, from one
    job's times at that concurrency ``t`` (seconds: ``lm_epoch`` on the caption training
    set's size, ``gen_epoch``, ``eval``)."""
    lm_work = sum(lm_sizes()) * lm_epochs * t["lm_epoch"]
    gen_work = GENERATOR_FITS * (gen_epochs * t["gen_epoch"] + t["eval"])
    spread = (lm_work + gen_work) / (devices * jobs)
    chain = max(lm_sizes()) * lm_epochs * t["lm_epoch"] + gen_epochs * t["gen_epoch"] + t["eval"]
    return max(spread, chain) / 3600


def _job(rank: int, device: str, threads: int, steps: int, images: int, precision: str,
         compile_: bool, quick: bool, barrier, out) -> None:  # fmt: skip
    """One job: warm-up, wait for the others, then time LM steps, generator steps, search."""
    torch.set_num_threads(threads)
    torch.manual_seed(rank)
    dev = torch.device(device)
    z = _sizes(quick)
    lm, gen, lm_batch, gen_batch = _models(z, dev)
    features = torch.randn(images, z["features"], device=dev).relu()
    lm_step, gen_step = (_stepper(m, b, compile_) for m, b in ((lm, lm_batch), (gen, gen_batch)))
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16")

    def timed(fn, n) -> float:
        _sync(dev)
        start = time.perf_counter()
        for _ in range(n):
            fn()
        _sync(dev)
        return time.perf_counter() - start

    def search():
        gen.generate(features, beam_width=4)

    with autocast:
        lm_step(), gen_step(), search()  # warm-up (lazy set-up, compilation)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        barrier.wait()
        result = {
            "lm": timed(lm_step, steps),
            "gen": timed(gen_step, steps),
            "eval": timed(search, 1),
        }
    result["peak_mb"] = (torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda"
                         else _peak_rss_mb())  # fmt: skip
    out.put(result)


def _sizes(quick: bool) -> dict:
    z = dict(STUDY_SIZES, lm_batch=LM_BATCH, gen_batch=GEN_BATCH)
    return {**z, "vocab": 300, "lm_batch": 16, "gen_batch": 16} if quick else z


def _models(z: dict, dev: torch.device):
    """The in-domain LM and the generator of the study's Flickr8k cell, and their batches."""
    from omegaconf import OmegaConf

    from benchmarks.anchor import anchor_batch
    from caplm import CONF_DIR
    from caplm.models.caption_generator import CaptionGenerator
    from caplm.models.common import constructor_args
    from caplm.models.language_model import LanguageModel

    study = OmegaConf.load(CONF_DIR / "study" / "flickr8k.yaml")
    lm_args = constructor_args(LanguageModel, study.lm)
    gen_args = {**lm_args, **constructor_args(CaptionGenerator, study.model)}
    lm = LanguageModel(z["vocab"], **lm_args).to(dev).train()
    gen = CaptionGenerator(z["vocab"], z["features"], **gen_args).to(dev).train()
    lm_batch = anchor_batch({**z, "batch": z["lm_batch"]}, dev)
    gen_batch = anchor_batch({**z, "batch": z["gen_batch"]}, dev)
    return lm, gen, lm_batch, gen_batch


def _stepper(model, batch: dict, compile_: bool):
    optimiser = model.configure_optimizers()
    loss_fn = torch.compile(model.batch_loss) if compile_ else model.batch_loss

    def step():
        loss, _ = loss_fn(batch)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimiser.step()

    return step


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_jobs(jobs: int, device: str, steps: int, images: int, precision: str = "fp32",
             compile_: bool = False, quick: bool = False) -> dict:  # fmt: skip
    """``jobs`` jobs at once on ``device``: the slowest job's seconds of each phase, and the
    largest peak memory of a job (MB: the GPU's allocations, or the process's RSS)."""
    ctx = mp.get_context("spawn")  # CUDA cannot be forked
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, cores // jobs) if device == "cpu" else 1
    barrier, out = ctx.Barrier(jobs), ctx.Queue()
    procs = [
        ctx.Process(
            target=_job,
            args=(r, device, threads, steps, images, precision, compile_, quick, barrier, out),
        )  # fmt: skip
        for r in range(jobs)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join()
    return {k: max(r[k] for r in results) for k in results[0]}


def bench_gpu_grid(run: Run) -> list[Figure]:
    opts = run.options
    device = run.device.type
    gpu = device == "cuda"
    jobs_list = opts.get("grid_jobs") or (run.pick(DEFAULT_JOBS, (1, 2)))
    steps = opts.get("grid_steps") or run.pick(20 if gpu else 3, 1)
    images = opts.get("grid_images") or run.pick(200 if gpu else 4, 2)
    lm_epochs, gen_epochs = opts.get("grid_epochs") or (10, 10)
    bf16 = gpu and torch.cuda.is_bf16_supported()
    precision = opts.get("grid_precision") or ("bf16" if bf16 else "fp32")
    if precision == "bf16" and not bf16:
        raise Skipped("--grid-precision bf16 needs a GPU with bfloat16")
    z = _sizes(run.quick)
    lm_steps = TRAIN_CAPTIONS / z["lm_batch"]  # steps in a full epoch
    gen_steps = TRAIN_CAPTIONS / z["gen_batch"]
    name = torch.cuda.get_device_name(run.device) if gpu else f"CPU ({os.cpu_count()} cores)"
    scale = f"{steps} steps -> {lm_steps:.0f}/{gen_steps:.0f}, {images} -> {TEST_IMAGES} images"
    figures, per_jobs = [], {}
    for jobs in jobs_list:
        raw = run_jobs(jobs, device, steps, images, precision, opts.get("grid_compile", False),
                       run.quick)  # fmt: skip
        t = {
            "lm_epoch": raw["lm"] / steps * lm_steps,
            "gen_epoch": raw["gen"] / steps * gen_steps,
            "eval": raw["eval"] / images * TEST_IMAGES,
        }
        per_jobs[jobs] = t
        job_s = gen_epochs * t["gen_epoch"] + t["eval"]
        note = f"{jobs} at once on {name}, {precision}; extrapolated: {scale}"
        figures += [
            Figure("gpu_grid", f"lm_epoch_{jobs}jobs", t["lm_epoch"], "s", note=note),
            Figure("gpu_grid", f"gen_epoch_{jobs}jobs", t["gen_epoch"], "s", note=note),
            Figure("gpu_grid", f"beam4_test_{jobs}jobs", t["eval"], "s", note=note),
            Figure(
                "gpu_grid",
                f"generator_jobs_per_hour_{jobs}jobs",
                3600 * jobs / job_s,
                "jobs/h",
                note=f"{gen_epochs} epochs + test search each; LMs apart",
            ),  # fmt: skip
            Figure(
                "gpu_grid",
                f"peak_memory_{jobs}jobs",
                raw["peak_mb"],
                "MB",
                note="a job's peak: " + ("GPU allocations" if gpu else "process RSS"),
            ),  # fmt: skip
        ]
    best = min(per_jobs, key=lambda j: predict_hours(per_jobs[j], lm_epochs, gen_epochs, 1, j))
    assumed = (f"{lm_epochs} LM and {gen_epochs} generator epochs a fit assumed; metrics and "
               f"loading not counted; best of {list(per_jobs)} jobs at once: {best}")  # fmt: skip
    for devices in (1, 2, 4, 8):
        hours = predict_hours(per_jobs[best], lm_epochs, gen_epochs, devices, best)
        figures.append(Figure("gpu_grid", f"paper_flickr8k_on_{devices}_devices", hours, "h",
                              note=f"{name}; {assumed}"))  # fmt: skip
    return figures
