"""Kill a real job with SIGKILL at several points, run the same command again, and get the
results of a job that was never interrupted: same metrics, each epoch's curve row once."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from caplm.results import COMPLETE, RESULTS_FILE
from tests.e2e.test_sweeps import _finish, _train

ARGS = [
    "transfer=init",
    "data.shapes.num_train=60",
    "lm.fit.max_epochs=4",
    "lm.fit.early_stopping=false",
    "model.fit.max_epochs=4",
    "model.fit.patience=null",
    "logger=csv",
    "threads=1",
]
#: Bookkeeping that differs between any two runs (and whether the LM was trained by this job).
NOT_COMPARED = {
    "job/total_time_s",
    "job/finished",
    "job/pid",
    "job/host",
    "job/overrides",  # paths.data_dir differs
    "lm/train_time_s",
    "capgen/train_time_s",
    "lm/trained_here",
    "lm/resumed_after",
    "capgen/resumed_after",
    "job/overhead_frac",
    "job/attempts",
}
#: ... and where the time went: job/time_<stage>_s.
TIMING = "job/time_"
#: Where to kill: the file whose appearance means the job is inside that stage.
KILL_POINTS = {
    "lm_training": "data/cache/lm/*/checkpoints/last.ckpt",
    "generator_training": "job/checkpoints/last.ckpt",
    "evaluation": "job/checkpoints/fit_done.json",
}


def kill_when(proc, tmp: Path, pattern: str) -> int:
    """SIGKILL ``proc``'s process group as soon as a file matching ``tmp/pattern`` exists."""
    deadline = time.time() + 240
    while not list(tmp.glob(pattern)) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    return proc.returncode


def run_job(tmp: Path, kill_at: str | None = None, extra=()):
    """The job in ``tmp/job``; killed as soon as ``tmp/<kill_at>`` exists, if given."""
    args = [*ARGS, *extra, f"hydra.run.dir={tmp / 'job'}"]
    if kill_at is None:
        _finish(_train(args, tmp))
        return None
    return kill_when(_train(args, tmp, start_new_session=True), tmp, kill_at)


def metrics(tmp: Path) -> dict:
    results = json.loads((tmp / "job" / RESULTS_FILE).read_text())
    assert results["job/status"] == COMPLETE
    return {k: v for k, v in results.items() if k not in NOT_COMPARED and not k.startswith(TIMING)}


def curve_epochs(tmp: Path, part: str) -> list[int]:
    """The epochs of the validation rows of a part's metrics.csv."""
    with (tmp / "job" / "logs" / part / "metrics.csv").open(newline="") as f:
        return [int(float(r["epoch"])) for r in csv.DictReader(f) if r.get("val/loss")]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("uninterrupted")
    run_job(tmp)
    return tmp


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_job_killed_anywhere_ends_with_the_results_of_an_uninterrupted_one(
    uninterrupted, tmp_path, point
):
    returncode = run_job(tmp_path, kill_at=KILL_POINTS[point])
    assert returncode == -signal.SIGKILL
    assert not (tmp_path / "job" / RESULTS_FILE).exists(), "killed too late"

    run_job(tmp_path)  # the same command again
    assert metrics(tmp_path) == metrics(uninterrupted)
    results = json.loads((tmp_path / "job" / RESULTS_FILE).read_text())
    if point == "lm_training":
        assert results["lm/resumed_after"] and results["lm/epochs"] == 4
    if point == "generator_training":
        assert results["capgen/resumed_after"] and results["capgen/epochs"] == 4
        assert curve_epochs(tmp_path, "capgen") == [0, 1, 2, 3]  # each epoch once
    if point == "evaluation":
        assert results["capgen/resumed_after"] == []  # the fit was done: reloaded, not resumed
    # the time of both attempts (#39.5): it said "-454% outside training steps" after a resume
    assert results["job/attempts"] == 2
    times = {k: v for k, v in results.items() if k.startswith(TIMING)}
    assert all(v >= 0 for v in times.values()), times
    assert sum(times.values()) == pytest.approx(results["job/total_time_s"], abs=0.01)
    steps = results["capgen/train_time_s"] + results["lm/train_time_s"] * results["lm/trained_here"]
    assert steps <= results["job/total_time_s"] and 0 <= results["job/overhead_frac"] <= 1
    earlier = json.loads((tmp_path / "job" / "job.json").read_text())["attempts"][0]
    assert earlier["total_s"] > 0  # the killed attempt's account, as of its last epoch or stage


@pytest.mark.slow
@pytest.mark.parametrize("point", ["lm_training", "generator_training"])
def test_a_job_killed_then_moved_elsewhere_resumes_to_the_same_results(
    uninterrupted, tmp_path, point
):
    """Issue #38.2: the job root (LM cache included) copied to another path mid-fit and the
    job run there: checkpoints name no absolute path that matters, so nothing changes."""
    first, moved = tmp_path / "first", tmp_path / "moved"
    assert run_job(first, kill_at=KILL_POINTS[point]) == -signal.SIGKILL
    shutil.copytree(first, moved, symlinks=True)
    shutil.rmtree(first)
    run_job(moved)
    assert metrics(moved) == metrics(uninterrupted)
    part = "lm" if point == "lm_training" else "capgen"
    assert json.loads((moved / "job" / RESULTS_FILE).read_text())[f"{part}/resumed_after"]


def test_a_multirun_killed_in_its_second_job_ends_as_if_never_interrupted(
    tmp_path_factory,
):
    def sweep(tmp: Path, kill_at: str | None = None):
        args = ["-m", *ARGS, "seed=1,2", f"hydra.sweep.dir={tmp / 'sweep'}"]
        if kill_at is None:
            return _finish(_train(args, tmp))
        proc = _train(args, tmp, start_new_session=True)
        assert kill_when(proc, tmp, kill_at) == -signal.SIGKILL

    def results(tmp: Path) -> dict:
        return {
            p.parent.name: {
                k: v
                for k, v in json.loads(p.read_text()).items()
                if k not in NOT_COMPARED and not k.startswith(TIMING)
            }
            for p in (tmp / "sweep").glob(f"*/{RESULTS_FILE}")
        }

    clean, killed = tmp_path_factory.mktemp("clean"), tmp_path_factory.mktemp("killed")
    sweep(clean)
    sweep(killed, kill_at="sweep/*seed=2*/checkpoints/last.ckpt")
    assert len(results(killed)) == 1  # the first job finished, the second did not
    out = sweep(killed)
    assert out.count("complete results found; skipping") == 1
    assert results(killed) == results(clean) and len(results(clean)) == 2


def test_wandb_curves_of_a_resumed_job_hold_each_epoch_once(tmp_path, make_cfg, monkeypatch):
    wandb = pytest.importorskip("wandb")
    from lightning.pytorch.loggers import WandbLogger

    from caplm.train import run

    args = [a for a in ARGS if not a.startswith("logger=")] + [
        "logger=wandb",
        "logger.mode=offline",
    ]
    proc = _train([*args, f"hydra.run.dir={tmp_path / 'job'}"], tmp_path, start_new_session=True)
    assert kill_when(proc, tmp_path, "job/checkpoints/last.ckpt") == -signal.SIGKILL
    assert list((tmp_path / "job" / "wandb").glob("offline-run-*"))  # the killed attempt's run

    logged = []
    log_metrics = WandbLogger.log_metrics

    def spy(self, metrics, step=None):
        logged.append((self._prefix, dict(metrics), step))
        return log_metrics(self, metrics, step)

    monkeypatch.setattr(WandbLogger, "log_metrics", spy)
    monkeypatch.setenv("WANDB_MODE", "offline")
    wandb.finish()
    cfg = make_cfg([a for a in args if not a.startswith("threads")])  # the same job, in-process
    results = run(cfg)
    assert results["capgen/resumed_after"] and results["capgen/epochs"] == 4
    val_steps = [step for p, m, step in logged if p == "capgen" and "val/loss" in m]
    assert len(val_steps) == 4 == len(set(val_steps))  # restored epochs given again, each once
    assert val_steps == sorted(val_steps)
    lm_epochs = [m for p, m, _ in logged if p == "lm" and "val/loss" in m]
    assert len(lm_epochs) == 4  # the cached LM's curves, replayed
    runs = sorted(p.name for p in (tmp_path / "job" / "wandb").iterdir() if "run-" in p.name)
    assert len([r for r in runs if r.startswith("offline-run-")]) == 1
    assert any(r.startswith("interrupted-offline-run-") for r in runs)


def test_sigterm_mid_epoch_stops_within_seconds_and_resumes_identically(uninterrupted, tmp_path):
    """A scheduler's SIGTERM (#39.7): Lightning trained on to the end of the epoch. Now the job
    stops after the batch in progress, exits with the preempted status (75) within 10 s, and
    the same command resumes it to the uninterrupted job's results."""
    proc = _train([*ARGS, f"hydra.run.dir={tmp_path / 'job'}"], tmp_path, start_new_session=True)
    deadline = time.time() + 240
    while not (tmp_path / KILL_POINTS["generator_training"]).exists() and time.time() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGTERM)
    sent = time.time()
    out, _ = proc.communicate(timeout=60)
    assert time.time() - sent < 10, out[-2000:]
    assert proc.returncode == 75, out[-2000:]
    assert "preempted by SIGTERM" in out and not (tmp_path / "job" / RESULTS_FILE).exists()

    run_job(tmp_path)  # the same command again
    assert metrics(tmp_path) == metrics(uninterrupted)
    results = json.loads((tmp_path / "job" / RESULTS_FILE).read_text())
    assert results["capgen/resumed_after"] and results["job/attempts"] == 2


@pytest.mark.slow
def test_merge_attention_killed_in_training_ends_as_if_never_interrupted(tmp_path):
    """model=merge_attention (#40): a fit killed and resumed gives the uninterrupted results."""
    extra = ["model=merge_attention"]
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    run_job(clean, extra=extra)
    kill_at = KILL_POINTS["generator_training"]
    assert run_job(killed, kill_at=kill_at, extra=extra) == -signal.SIGKILL
    assert not (killed / "job" / RESULTS_FILE).exists(), "killed too late"
    run_job(killed, extra=extra)
    assert metrics(killed) == metrics(clean)
    results = json.loads((killed / "job" / RESULTS_FILE).read_text())
    assert results["capgen/architecture"] == "merge_attention"
    assert results["capgen/resumed_after"] and results["capgen/epochs"] == 4
