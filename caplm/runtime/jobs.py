"""A job's folder: skip what is complete, resume what was interrupted, never lose a result.

A job is identified by a hash of what determines its results (the resolved config without
paths, loggers, devices and the like; without the LM corpus and LM settings for the modes
that use no LM). ``results.json`` is written once, atomically, at the end, with
``job/status: complete``; ``job.json`` is written at the start. Re-running a job:

- complete results with the same hash: nothing to do (unless ``skip_completed=false``);
- results from a *different* config (or from input files changed since): that
  ``results.json`` / ``job.json`` is moved aside with a warning (never mixed silently), and
  the job runs; checkpoints carry the job's key, so another config's are moved aside too;
- otherwise it runs, resuming the LM and generator from their last checkpoints.

In a multirun, jobs with the same hash (e.g. the no-transfer control repeated across LM
corpora in the paper grid) run once: the others wait on a lock and reuse the result.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch
from filelock import FileLock
from omegaconf import DictConfig

from caplm.data import dedup
from caplm.data.corpora import outside_design
from caplm.data.features import FINGERPRINTS
from caplm.evaluation.pictures import PICTURES_DIR
from caplm.io import (
    file_digests,
    move_aside,
    read_json,
    remove_stale_temporaries,
    stable_hash,
    to_dict,
    write_json,
)
from caplm.models import robust
from caplm.models.transfer.modes import job_mode, job_uses_lm
from caplm.results import (
    COMPLETE,
    CONFIG_HASH,
    JOB_FILE,
    NOT_APPLICABLE,
    OVERRIDES,
    RESULTS_FILE,
    REUSED_FROM,
    STATUS,
    capgen_key,
    job_key,
    keyed,
    lm_key,
    time_key,
)
from caplm.runtime import loggers
from caplm.runtime.config import NOT_RESULTS, check_config
from caplm.runtime.devices import job_threads
from caplm.runtime.hf_lm import is_hf, model_identity
from caplm.runtime.preemption import PREEMPTED_EXIT, Preempted, preemptible, requeue_under_submitit
from caplm.runtime.training import CHECKPOINTS, epoch_listener, keyless

log = logging.getLogger(__name__)


def job_identity(cfg: DictConfig) -> dict:
    """The resolved config entries that determine the job's results."""
    identity = {k: to_dict(v) for k, v in cfg.items_ex(resolve=False) if k not in NOT_RESULTS}
    for looks_only in ("show", "pictures"):  # what is printed or saved to look at
        identity.get("eval", {}).pop(looks_only, None)
    if not job_uses_lm(cfg):
        identity.pop("corpus", None)
        identity.pop("lm", None)
    for path in (("lm", "fit", "robust"), ("eval", "lm_perturbed")):  # off: as before they came
        robust.drop_off(identity, path)
    if "corpus" in identity:
        dedup.drop_off(identity["corpus"])
    files = {}
    for group in ("data", "corpus"):
        if group in identity:
            files.update(_input_files(group, identity[group]))
    if is_hf(cfg.get("model")):  # the Hugging Face model's files: another model, another job
        identity["hf_model"] = model_identity(cfg)
    if files:  # a file's new content at the same path is another job, not a complete one
        identity["inputs"] = file_digests(files, Path(cfg.paths.cache_dir) / FINGERPRINTS)
    return identity


def _input_files(where: str, node) -> dict[str, Path]:
    """Config entries (``data.annotations``, ...) that name an existing file."""
    if isinstance(node, dict):
        return {
            k: v
            for key, sub in node.items()
            for k, v in _input_files(f"{where}.{key}", sub).items()
        }
    if isinstance(node, str) and node and Path(node).is_file():
        return {where: Path(node)}
    return {}


def grid_cell(cfg: DictConfig) -> dict:
    """The ``job/`` entries of results.json: where the job sits in the study's grid."""
    with_lm = job_uses_lm(cfg)
    cell = {
        "experiment": cfg.task_name,
        "data": cfg.data.name,
        "corpus": cfg.corpus.name if with_lm else "none",
        "size_exponent": cfg.corpus.size_exponent if with_lm else None,
        "lm": cfg.lm.name if with_lm else None,
        "lm_max_epochs": cfg.lm.fit.max_epochs if with_lm and not is_hf(cfg.lm) else None,
        "transfer": job_mode(cfg),
        "normaliser": cfg.data.normaliser,
        "seed": cfg.seed,
    }
    return keyed("job", cell)


def run_job(
    cfg: DictConfig, body: Callable[[DictConfig, Job], tuple[dict, Callable | None]]
) -> dict:
    """Check the config, then run ``body(cfg, job)`` unless the job is complete; write its
    results (``body`` returns them and what to do once they are written, or None)."""
    try:
        check_config(cfg)
    except Exception as err:  # in the job's log too, where the report finds why it failed
        log.error("%s", err)
        raise
    hc = _hydra()
    threads = job_threads(cfg.get("threads"), hc.launcher if hc else None)
    if threads:
        torch.set_num_threads(threads)
    job = Job(cfg)
    outside = outside_design(cfg.corpus) if job_uses_lm(cfg) else None
    if outside is not None and job.sweep_dir is None:  # asked for alone: a mistake
        raise ValueError(f"{outside}; lower corpus.size_exponent (in a sweep such a grid point "
                         "is marked not_applicable and skipped)")  # fmt: skip
    if outside is not None:
        log.info("not applicable, nothing to run: %s", outside)
        return job.finish({job_key("reason"): outside}, status=NOT_APPLICABLE)
    try:
        with job.claim() as done:
            if done is not None:
                return done
            loggers.set_aside_interrupted_runs(job.dir)
            try:
                with preemptible(), epoch_listener(job.beat):
                    results, then = body(cfg, job)
                job.finish(results)
                if then is not None:
                    then(results)
            finally:
                loggers.finish()
    except Preempted as stop:  # its checkpoints and job.json resume it (runtime/preemption.py)
        job.beat()
        log.warning("%s: the job stopped; run the same command again to resume it from its "
                    "last checkpoint (exit status %d)", stop, PREEMPTED_EXIT)  # fmt: skip
        requeue_under_submitit(stop.signum)
        raise SystemExit(PREEMPTED_EXIT) from None
    return results


def _hydra():
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


class Job:
    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.dir = Path(cfg.paths.output_dir)
        self.identity = job_identity(cfg)
        self.key = stable_hash(self.identity)
        self.start = self._lap = time.perf_counter()
        self.times: dict[str, float] = {}  # seconds per stage (see lap), this attempt's
        self.earlier: list[dict] = []  # the accounts of earlier attempts (job.json's attempts)
        self._started = _now()
        hc = _hydra()
        self.overrides = list(hc.overrides.task) if hc else []
        multirun = hc is not None and str(hc.mode) == "RunMode.MULTIRUN"
        self.sweep_dir = Path(hc.sweep.dir) if multirun else None

    @contextlib.contextmanager
    def claim(self):
        """Yields the results when there is nothing to run, else None (then call finish)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        lock_dir = (self.sweep_dir or self.dir) / ".locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock_dir / f"{self.key}.lock")):
            for folder in (self.dir, self.dir / PICTURES_DIR):  # no live writer: we hold the lock
                remove_stale_temporaries(folder)
            done = self._previous()
            if done is None and self.sweep_dir is not None:
                done = self._reuse_from_sweep()
            if done is None:
                self._write_job_file()
            yield done

    def _write_job_file(self) -> None:
        """job.json: what the job is, and each attempt's account of its time so far (an
        interrupted attempt's is as of its last stage or epoch end)."""
        write_json(
            self.dir / JOB_FILE,
            {
                CONFIG_HASH: self.key,
                "overrides": self.overrides,
                "identity": self.identity,
                "started": self.earlier[0]["started"] if self.earlier else self._started,
                "attempts": [*self.earlier, self._account()],
            },
        )

    def _account(self) -> dict:
        now = time.perf_counter()
        return {
            "started": self._started,
            "times": {k: round(v, 3) for k, v in self.times.items()},
            "unlapped_s": round(now - self._lap, 3),  # in a stage not finished yet
            "total_s": round(now - self.start, 3),
        }

    def beat(self) -> None:
        """Bring this attempt's account in job.json up to date (at each epoch's end)."""
        self._write_job_file()

    def _previous(self) -> dict | None:
        results, job = self.dir / RESULTS_FILE, self.dir / JOB_FILE
        for path in (results, job):
            if not path.is_file():
                continue
            try:
                old = read_json(path)
            except ValueError as err:
                log.warning("%s; running the job again", err)
                continue
            if path == job and old.get(CONFIG_HASH) == self.key:  # an interrupted attempt
                self.earlier = _attempts(old)
            if old.get(CONFIG_HASH) != self.key:
                move_aside(
                    path,
                    f"made with a different config than this job's, or from input files that "
                    f"have changed since (config hash {old.get(CONFIG_HASH)} vs {self.key}); "
                    "running this job here (to keep both, write this run elsewhere: "
                    "hydra.sweep.dir=... / hydra.run.dir=..., or another task_name)",
                )
                if path == job and keyless(self.dir / CHECKPOINTS):  # that job's, unlabelled
                    move_aside(self.dir / CHECKPOINTS, f"checkpoints that name no job, left by "
                               f"the job of config hash {old.get(CONFIG_HASH)}")  # fmt: skip
                continue
            if path == results and old.get(STATUS) == COMPLETE:
                if self.cfg.skip_completed:
                    log.info(
                        "%s: complete results found; skipping (skip_completed=false runs it again)",
                        self.dir,
                    )
                    return old
                _remove_outputs(self.dir)
        return None

    def _reuse_from_sweep(self) -> dict | None:
        for path in sorted(self.sweep_dir.glob(f"*/{RESULTS_FILE}")):
            if path.parent == self.dir:
                continue
            try:
                other = read_json(path)
            except ValueError:
                continue
            if other.get(CONFIG_HASH) == self.key and other.get(STATUS) == COMPLETE:
                log.info(
                    "same job as %s (this one differs only in settings that do not "
                    "change its results); reusing its results",
                    path.parent.name,
                )
                results = {
                    **other,
                    **grid_cell(self.cfg),
                    REUSED_FROM: path.parent.name,
                    OVERRIDES: self.overrides,
                }
                write_json(self.dir / RESULTS_FILE, results)
                return results
        return None

    def lap(self, stage: str) -> None:
        """The time since the previous lap (or the job's start) was spent in ``stage``."""
        now = time.perf_counter()
        self.times[stage] = self.times.get(stage, 0.0) + now - self._lap
        self._lap = now
        if self.dir.joinpath(JOB_FILE).is_file():
            self._write_job_file()

    def _timing(self, results: dict, total: float) -> dict:
        """``job/time_<stage>_s`` per stage summed over the job's attempts (``interrupted``:
        the time of stages an attempt did not finish; ``other`` the rest), ``job/attempts``,
        and the share of the time not spent in training steps (printed too). Steps are the
        fits' epochs, which the checkpoints carry across attempts; every attempt's account
        covers the epochs it checkpointed, so the share stays in [0, 1]."""
        if not self.times and not self.earlier:
            return {}
        times: dict[str, float] = {}
        for attempt in self.earlier:
            for stage, seconds in attempt["times"].items():
                times[stage] = times.get(stage, 0.0) + seconds
            times["interrupted"] = times.get("interrupted", 0.0) + attempt["unlapped_s"]
        for stage, seconds in self.times.items():
            times[stage] = times.get(stage, 0.0) + seconds
        times["other"] = total - sum(times.values())
        steps = results.get(capgen_key("train_time_s")) or 0.0
        if results.get(lm_key("trained_here")):
            steps += results.get(lm_key("train_time_s")) or 0.0
        overhead = min(1.0, max(0.0, (total - steps) / total)) if total > 0 else None
        attempts = len(self.earlier) + 1
        log.info("time: %s; total %.1f s%s, %.0f%% outside training steps",
                 ", ".join(f"{k} {v:.1f} s" for k, v in times.items()), total,
                 f" over {attempts} attempts" if attempts > 1 else "",
                 100 * (overhead or 0))  # fmt: skip
        timing = {time_key(k): round(v, 3) for k, v in times.items()}
        timing[job_key("overhead_frac")] = overhead
        timing[job_key("attempts")] = attempts
        return timing

    def finish(self, results: dict, status: str = COMPLETE) -> dict:
        # every attempt's time: the earlier ones' as their accounts in job.json say
        total = time.perf_counter() - self.start + sum(a["total_s"] for a in self.earlier)
        results.update(self._timing(results, total))
        results.update(grid_cell(self.cfg))
        results[OVERRIDES] = self.overrides
        results[CONFIG_HASH] = self.key
        results[job_key("total_time_s")] = total
        results[job_key("finished")] = _now()
        results[job_key("host")] = socket.gethostname()
        results[job_key("pid")] = os.getpid()
        results[job_key("threads")] = torch.get_num_threads()
        results[STATUS] = status
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json(self.dir / RESULTS_FILE, results)
        return results


def _attempts(job_file: dict) -> list[dict]:
    """The attempts a job.json accounts for (one of unknown time: a job.json from before
    caplm kept accounts)."""
    attempts = job_file.get("attempts")
    if not isinstance(attempts, list):
        return [
            {"started": job_file.get("started"), "times": {}, "unlapped_s": 0.0, "total_s": 0.0}
        ]
    return attempts


def _remove_outputs(job_dir: Path) -> None:
    """Clear an earlier run's outputs (``skip_completed=false``), keeping Hydra's files."""
    for child in job_dir.iterdir():
        if child.name in (".hydra", "train.log"):
            continue
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
