"""A dry run: ``python -m caplm.plan [--lm] <the overrides of a run> [-m]``.

Composes every job the same command would run (a multirun's sweep expanded as Hydra's basic
sweeper does, an experiment's ``hydra.sweeper.params`` included) and says, without training
or loading any data, what each would do:

- ``done``: complete results of the same config in its folder (skipped);
- ``reusable``: the same job as another of this sweep (e.g. a control repeated across LM
  corpora), whose results it will reuse;
- ``to run`` (``resumes`` when an interrupted attempt left its job.json);
- ``not applicable``: a grid point outside its corpus's design (``corpus.max_size_exponent``);
- ``config error`` / ``blocked`` (results of another config in its folder): it would fail.

Then the distinct LMs the jobs to run will train (those of LM settings, corpus, data and seed
that no done job of the plan has in the cache), and an estimate of the run time from earlier
complete jobs of the same shapes under the multirun folder (their median; shapes without an
earlier job are named, not guessed).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from caplm import CONF_DIR
from caplm.data.corpora import outside_design
from caplm.io import read_json, stable_hash, to_dict
from caplm.models.transfer.modes import job_mode, job_uses_lm
from caplm.overrides import sweep_jobs
from caplm.results import COMPLETE, CONFIG_HASH, JOB_FILE, RESULTS_FILE, STATUS
from caplm.runtime.config import check_config, job_dirname
from caplm.runtime.jobs import job_identity

DONE, REUSABLE, TO_RUN, NOT_APPLICABLE = "done", "reusable", "to run", "not applicable"
CONFIG_ERROR, BLOCKED = "config error", "blocked"
#: Data settings that do not change an LM's corpus.
NOT_LM_DATA = ("encoder", "images_dir", "features_file", "num_workers")


def plan(overrides: list[str], multirun: bool, config_name: str = "train") -> list[dict]:
    """One row per job: ``name`` (its folder), ``state``, ``detail``, ``lm`` (its LM's
    settings' hash, when it uses one), ``shape`` (what its time is estimated by) and
    ``dir``."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return _plan(overrides, multirun, config_name)
    finally:
        GlobalHydra.instance().clear()


def _plan(overrides, multirun, config_name) -> list[dict]:
    jobs = [list(overrides)]
    if multirun:
        fixed = [o for o in overrides if "," not in o.partition("=")[2]]
        base = compose(config_name, overrides=fixed, return_hydra_config=True)
        params = to_dict(base.hydra.sweeper.get("params")) or {}
        jobs = sweep_jobs([*(f"{k}={v}" for k, v in params.items()), *overrides])
    rows, seen = [], {}
    for job in jobs:
        cfg = compose(config_name, overrides=job, return_hydra_config=True)
        name = job_dirname(job)
        with open_dict(cfg):
            root = Path(cfg.hydra.sweep.dir if multirun else cfg.paths.multirun_dir)
            if not multirun:
                root = root / str(cfg.task_name)
            cfg.paths.output_dir = str(root / name)
            if config_name == "train_lm":
                for group in ("model", "generation", "transfer", "transferability"):
                    cfg.pop(group, None)  # as caplm.lm does (+study= brings model:)
        rows.append(_state(cfg, name, seen))
    return rows


def _state(cfg: DictConfig, name: str, seen: dict) -> dict:
    HydraConfig().set_config(cfg)  # check_config names each key's file from the choices
    out = Path(cfg.paths.output_dir)
    row = {"name": name, "dir": out, "lm": None, "shape": None, "detail": ""}
    try:
        check_config(cfg)
    except Exception as err:  # noqa: BLE001 -- any refusal is this job's state
        return {**row, "state": CONFIG_ERROR, "detail": str(err).splitlines()[-1]}
    uses_lm = job_uses_lm(cfg)
    outside = outside_design(cfg.corpus) if uses_lm else None
    if outside:
        return {**row, "state": NOT_APPLICABLE, "detail": outside}
    key = stable_hash(job_identity(cfg))
    row["shape"] = (cfg.data.name, job_mode(cfg), cfg.model.get("arch") if "model" in cfg else None)
    if uses_lm:
        data = {k: v for k, v in to_dict(cfg.data).items() if k not in NOT_LM_DATA}
        lm = {k: v for k, v in to_dict(cfg.lm).items() if k != "name"}
        row["lm"] = stable_hash([lm, to_dict(cfg.corpus), data, cfg.seed,
                                 cfg.trainer.get("precision")])  # fmt: skip
        row["lm_shape"] = (cfg.data.name, cfg.lm.name, cfg.corpus.name, cfg.corpus.size_exponent)
    results = _read(out / RESULTS_FILE)
    if results and results.get(CONFIG_HASH) != key:
        return {**row, "state": BLOCKED, "detail": f"{out} holds results of another config"}
    if results and results.get(STATUS) == COMPLETE:
        seen.setdefault(key, name)
        return {**row, "state": DONE, "lm_json": _read(out / "lm.json")}
    if key in seen:
        return {**row, "state": REUSABLE, "detail": f"the same job as {seen[key]}"}
    seen[key] = name
    started = _read(out / JOB_FILE)
    resumes = bool(started) and started.get(CONFIG_HASH) == key
    return {**row, "state": TO_RUN, "detail": "resumes an interrupted attempt" if resumes else ""}


def _read(path: Path) -> dict | None:
    try:
        return read_json(path) if path.is_file() else None
    except ValueError:
        return None


def estimate(rows: list[dict], multirun_dir: Path) -> dict:
    """Seconds to run the plan's jobs on one worker, from the complete jobs under
    ``multirun_dir``: per job to run, the median time of earlier jobs of its shape (data,
    transfer mode, generator family) outside LM training; per LM to train, the median time
    earlier jobs trained an LM of its shape (data, LM preset, corpus, size) in."""
    jobs: dict = {}
    lms: dict = {}
    for path in Path(multirun_dir).rglob(RESULTS_FILE):
        r = _read(path)
        if not r or r.get(STATUS) != COMPLETE or r.get("job/reused_from"):
            continue
        lm_time = r.get("lm/train_time_s") if r.get("lm/trained_here") else None
        shape = (r.get("job/data"), r.get("job/transfer"), r.get("capgen/arch"))
        jobs.setdefault(shape, []).append((r.get("job/total_time_s") or 0.0) - (lm_time or 0.0))
        if lm_time is not None:
            lm_shape = (r.get("job/data"), r.get("job/lm"), r.get("job/corpus"),
                        r.get("job/size_exponent"))  # fmt: skip
            lms.setdefault(lm_shape, []).append(lm_time)
    to_run = [r for r in rows if r["state"] == TO_RUN]
    new_lms = lms_to_train(rows)
    seconds, unknown = 0.0, []
    for row in to_run:
        shape = row["shape"] if row["shape"][1] != "lm_only" else None
        if shape is None:
            continue  # an LM-only job's time is its LM's, below
        if shape in jobs:
            seconds += statistics.median(jobs[shape])
        else:
            unknown.append(f"jobs of {'/'.join(map(str, shape))}")
    for lm_shape in new_lms.values():
        if lm_shape in lms:
            seconds += statistics.median(lms[lm_shape])
        else:
            unknown.append(f"LMs of {'/'.join(map(str, lm_shape))}")
    return {"seconds": seconds, "unknown": sorted(set(unknown))}


def lms_to_train(rows: list[dict]) -> dict:
    """The distinct LMs the jobs to run will train: LM settings -> shape, those a done job of
    the plan has in the cache aside."""
    cached = {
        r["lm"]
        for r in rows
        if r["state"] == DONE and r.get("lm_json") and Path(r["lm_json"]["path"]).exists()
    }
    return {r["lm"]: r["lm_shape"] for r in rows if r["state"] == TO_RUN and r["lm"]
            and r["lm"] not in cached}  # fmt: skip


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{seconds / 60:.1f} min"


def main(argv: list[str] | None = None, config_name: str = "train") -> int:
    parser = argparse.ArgumentParser(
        prog="python -m caplm.plan",
        description="What `python -m caplm.train` (or caplm.lm, with --lm) would run with the "
        "same overrides: each job's name and state (done, reusable, to run, not applicable), "
        "the LMs to train and an estimate of the run time. Nothing is trained or loaded.",
    )
    parser.add_argument("overrides", nargs="*", help="the run's overrides, as given to it")
    parser.add_argument("-m", "--multirun", action="store_true", help="a multirun (a sweep)")
    parser.add_argument("--lm", action="store_true", help="plan `python -m caplm.lm` (LM only)")
    args = parser.parse_args(argv)
    name = "train_lm" if args.lm else config_name
    if not args.multirun and any("," in o.partition("=")[2] for o in args.overrides):
        parser.error("a sweep (key=a,b) runs with -m; add -m")
    rows = plan(args.overrides, args.multirun, name)
    width = max(len(r["state"]) for r in rows)
    for r in rows:
        print(f"{r['state']:<{width}}  {r['name']}" + (f"  ({r['detail']})" if r["detail"] else ""))
    counts = {s: sum(r["state"] == s for r in rows) for s in
              (DONE, REUSABLE, TO_RUN, NOT_APPLICABLE, CONFIG_ERROR, BLOCKED)}  # fmt: skip
    print(f"{len(rows)} jobs: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    new_lms = lms_to_train(rows)
    print(f"{len(new_lms)} distinct LMs to train")
    folder = _multirun_dir(args.overrides, name)
    guess = estimate(rows, folder)
    known = guess["seconds"] > 0 or not guess["unknown"]
    said = f"estimated run time on one worker: {_duration(guess['seconds'])}" if known else (
        "no estimate of the run time")  # fmt: skip
    said += f" (from earlier complete jobs under {folder})"
    if guess["unknown"]:
        said += "; not counted, no earlier job of their shape: " + ", ".join(guess["unknown"])
    print(said)
    return 1 if counts[CONFIG_ERROR] or counts[BLOCKED] else 0


def _multirun_dir(overrides: list[str], config_name: str) -> Path:
    fixed = [o for o in overrides if "," not in o.partition("=")[2]]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return Path(compose(config_name, overrides=fixed).paths.multirun_dir)
    finally:
        GlobalHydra.instance().clear()
