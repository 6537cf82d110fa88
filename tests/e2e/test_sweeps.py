"""Sweeps as users run them: real `python -m caplm.train` processes, in parallel, killed
and resumed; concurrent jobs sharing one LM; W&B offline."""

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from caplm import PROJECT_ROOT
from caplm.results import COMPLETE, RESULTS_FILE
from tests.conftest import TINY


def _train(args, tmp: Path, **kw):
    env = {**os.environ, "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "1"}
    flags = [a for a in args if a.startswith("-")]  # Hydra's argparse wants flags apart
    overrides = [a for a in args if not a.startswith("-")]
    cmd = [
        sys.executable,
        "-m",
        "caplm.train",
        *TINY,
        f"paths.data_dir={tmp}/data",
        *overrides,
        *flags,
    ]
    return subprocess.Popen(
        cmd,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


def _finish(proc, timeout=240):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return out


def test_parallel_multirun_runs_jobs_in_two_processes(tmp_path):
    sweep = tmp_path / "sweep"
    _finish(
        _train(
            [
                "-m",
                "hydra/launcher=parallel",
                "hydra.launcher.n_jobs=2",
                "transfer=none",
                "seed=1,2",
                "threads=1",
                f"hydra.sweep.dir={sweep}",
            ],
            tmp_path,
        )
    )
    results = [json.loads(p.read_text()) for p in sweep.glob(f"*/{RESULTS_FILE}")]
    assert sorted(r["job/seed"] for r in results) == [1, 2]
    assert all(r["job/status"] == COMPLETE for r in results)
    assert len({r["job/pid"] for r in results}) == 2  # two worker processes
    assert os.getpid() not in {r["job/pid"] for r in results}


def test_rerunning_a_sweep_skips_complete_jobs_and_reuses_identical_ones(tmp_path):
    sweep = tmp_path / "sweep"
    # the no-transfer control does not use an LM: its repeats over LM settings are one job
    args = ["-m", "transfer=none", "corpus.size_exponent=-1,0", f"hydra.sweep.dir={sweep}"]
    _finish(_train(args, tmp_path))
    results = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob(f"*/{RESULTS_FILE}")}
    assert len(results) == 2
    reused = [r for r in results.values() if "job/reused_from" in r]
    assert len(reused) == 1 and reused[0]["job/corpus"] == "none"
    before = {name: (sweep / name / RESULTS_FILE).stat().st_mtime_ns for name in results}
    out = _finish(_train(args, tmp_path))
    assert out.count("complete results found; skipping") == 2
    assert before == {name: (sweep / name / RESULTS_FILE).stat().st_mtime_ns for name in results}


def test_killed_job_resumes_from_its_last_checkpoint(tmp_path):
    job = tmp_path / "job"
    args = [
        "transfer=frozen",
        "data.shapes.num_train=300",
        "model.fit.max_epochs=5",
        "model.fit.patience=null",
        "threads=1",
        f"hydra.run.dir={job}",
    ]
    proc = _train(args, tmp_path, start_new_session=True)
    last = job / "checkpoints" / "last.ckpt"
    deadline = time.time() + 180
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert last.exists(), "no epoch finished"
    time.sleep(0.3)  # into the next epoch
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (
        not (job / RESULTS_FILE).exists() and not (job / "checkpoints" / "fit_done.json").exists()
    )
    config_before = (job / "job.json").read_text()

    out = _finish(_train(args, tmp_path))
    assert "Restored all states from the checkpoint" in out or "Restoring states" in out
    results = json.loads((job / RESULTS_FILE).read_text())
    assert results["job/status"] == COMPLETE and results["capgen/epochs"] == 5
    done = json.loads((job / "checkpoints" / "fit_done.json").read_text())
    assert [e["epoch"] for e in done["history"]] == [1, 2, 3, 4, 5]  # no epoch lost or repeated
    assert json.loads(config_before)["job/config_hash"] == results["job/config_hash"]


def _race(cache_dir, corpus, vocab, out):
    from caplm.runtime.lm_cache import get_or_train
    from caplm.runtime.training import make_trainer

    lm_cfg = OmegaConf.create(
        {
            "name": "t",
            "embed_size": 8,
            "rnn_size": 8,
            "rnn_type": "gru",
            "num_layers": 1,
            "embed_dropout": 0.0,
            "rnn_dropout": 0.0,
            "optimizer": "adam",
            "lr": 0.01,
            "weight_decay": 0.0,
            "init": "xavier_normal",
            "fit": {
                "gradient_clip_val": 1.0,
                "batch_size": 8,
                "max_len": 10,
                "max_epochs": 2,
                "early_stopping": True,
                "patience": 1,
            },
        }
    )
    trainer_cfg = {
        "accelerator": "cpu",
        "devices": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    lm = get_or_train(
        lm_cfg, corpus, vocab, 1, cache_dir, partial(make_trainer, trainer_cfg), poll_s=0.1
    )
    out.put((lm.key, lm.trained_here))


def test_two_processes_racing_for_one_lm_train_it_once(tmp_path):
    from caplm.data.text import Vocabulary
    from caplm.data.types import Corpus

    sentences = [["a", "red", "circle"], ["a", "blue", "square"], ["two", "red", "stars"]] * 30
    corpus = Corpus("c", train=sentences, val=sentences[:6])
    vocab = Vocabulary.build(sentences)
    # spawn: a forked child of a process that already ran torch can hang in its thread pool
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(tmp_path, corpus, vocab, out)) for _ in range(3)]
    for p in procs:
        p.start()
    got = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert len({key for key, _ in got}) == 1
    assert sorted(trained for _, trained in got) == [False, False, True]


def test_wandb_offline_run_writes_summary_and_caption_table(make_cfg, monkeypatch):
    wandb = pytest.importorskip("wandb")
    from caplm.runtime import loggers
    from caplm.train import run

    wandb.finish()  # no run left over from another test in this process
    # no network: an unroutable server address, which an offline run must never contact
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WANDB_MODE", "offline")
    seen = {}

    def finish_and_keep_the_summary():  # read through wandb's public API, before the run ends
        seen["summary"] = {k: wandb.run.summary[k] for k in wandb.run.summary.keys()}
        seen["offline"] = wandb.run.offline
        finish()

    finish = loggers.finish
    monkeypatch.setattr(loggers, "finish", finish_and_keep_the_summary)
    cfg = make_cfg(["transfer=frozen", "logger=wandb", "logger.name=tiny"])
    start = time.time()
    results = run(cfg)
    assert time.time() - start < 120
    assert seen["offline"] is True and wandb.run is None
    summary = seen["summary"]
    assert summary["capgen/test_BLEU-4"] == pytest.approx(results["capgen/test_BLEU-4"])
    assert summary["transfer/params_frozen"] == results["transfer/params_frozen"] > 0
    table = summary["capgen/test_captions"]
    assert table["_type"] == "table-file" and table["nrows"] == 8 and table["ncols"] == 5
    # what `wandb sync` uploads later
    (run_dir,) = Path(cfg.paths.output_dir, "wandb").glob("offline-run-*")
    assert list(run_dir.glob("run-*.wandb"))
