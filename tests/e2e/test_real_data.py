"""Real data end to end as a new user meets it (#39): a small Karpathy JSON, the study's
settings for LM-only jobs, and the report of such jobs."""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from caplm import CONF_DIR
from caplm import lm as lm_entry
from caplm.report import scan
from caplm.results import COMPLETE, RESULTS_FILE

WORDS = "dog cat man woman runs sits red blue".split()
#: What keeps a job on the Karpathy JSON below to a second (the LM's sizes shrunk).
SMALL = ["data.min_word_freq=1", "lm.embed_size=8", "lm.rnn_size=8", "lm.fit.max_epochs=1",
         "eval.lm_samples=5", "logger=none", "trainer.enable_progress_bar=false"]  # fmt: skip


def karpathy_json(tmp_path: Path) -> Path:
    """A Flickr8k-style Karpathy JSON: 40 / 8 / 8 images, two captions each, no pictures."""
    images = [
        {"filename": f"{split}{i}.jpg", "split": split, "sentences": [
            {"raw": f"A {WORDS[i % 8]} and {i % 3 + 2} {WORDS[(i + k) % 8]}s."} for k in (3, 5)]}
        for split, n in (("train", 40), ("val", 8), ("test", 8)) for i in range(n)
    ]  # fmt: skip
    path = tmp_path / "dataset_flickr8k.json"
    path.write_text(json.dumps({"images": images}))
    return path


def lm_cfg(tmp_path: Path, overrides, job: str, config_name: str = "train_lm"):
    """An LM-only (or generator) job on the Karpathy JSON, as ``python -m caplm.lm`` composes it."""
    annotations = karpathy_json(tmp_path)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name, return_hydra_config=True, overrides=[
            "data=flickr8k", f"data.annotations={annotations}", *SMALL, *overrides,
            f"paths.data_dir={tmp_path}/data"])  # fmt: skip
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "mr" / job)
    return cfg


def test_the_studys_settings_run_an_lm_only_job(tmp_path):
    """``python -m caplm.lm +study=flickr8k``: the study file also sets the generator's
    ``model:``, which an LM-only job has no use for; it ran into a ConfigAttributeError."""
    cfg = lm_cfg(tmp_path, ["+study=flickr8k", "corpus.size_exponent=0"], "study")
    results = lm_entry.run(cfg)
    assert results["job/status"] == COMPLETE and results["job/lm"] == "study_flickr8k"
    job = json.loads((Path(cfg.paths.output_dir) / "job.json").read_text())
    assert job["identity"]["lm"]["optimizer"] == "rmsprop" and "model" not in job["identity"]


def test_a_job_that_failed_before_it_started_is_named_not_counted(tmp_path):
    """A folder Hydra made for a job whose config was refused holds no job.json: the report
    names it with the error its log holds, and does not count it as an incomplete job."""
    lm_entry.run(lm_cfg(tmp_path, [], "ok"))
    failed = tmp_path / "mr" / "lm.lr=oops"
    (failed / ".hydra").mkdir(parents=True)
    (failed / "lm.log").write_text("[2026-12-08 00:00:00,000][caplm.runtime.jobs][ERROR] - "
                                   "1 problem(s) in the config:\n- lm: bad lr\n")  # fmt: skip
    sweep = scan(tmp_path / "mr")
    assert sweep.found == 1 and sweep.total == 1 and sweep.incomplete == []
    assert sweep.failed_to_start == [("lm.lr=oops", "1 problem(s) in the config:")]
    assert (tmp_path / "mr" / "ok" / RESULTS_FILE).is_file()


@pytest.fixture(scope="module")
def three_lms(tmp_path_factory):
    """An LM-only sweep folder: a default-LM job, a study-settings job and one with another
    learning rate, all seed 1; and its report (without a gallery)."""
    from caplm.report import main

    tmp_path = tmp_path_factory.mktemp("three_lms")
    for job, overrides in (("default", []), ("study", ["+study=flickr8k"]), ("lr", ["lm.lr=0.01"])):
        lm_entry.run(lm_cfg(tmp_path, overrides, job))
    assert main([str(tmp_path / "mr"), "--out", str(tmp_path / "out"), "--gallery", "0"]) == 0
    return tmp_path


def test_report_cells_split_on_every_setting_but_the_seed(three_lms):
    """The three jobs were one cell "n=3" (no column for the LM's settings); now three cells of
    n = 1, and the report names what it split on."""
    from caplm.report import summarize

    cells = summarize(scan(three_lms / "mr").table)
    assert sorted(zip(cells["lm"], cells["cfg.lm.lr"], cells["n"], strict=True)) == [
        ("small", 0.003, 1), ("small", 0.01, 1), ("study_flickr8k", 0.00249, 1)]  # fmt: skip
    md = (three_lms / "out" / "report.md").read_text()
    assert "Split on: `lm`, `cfg.lm.lr`." in md


def test_lm_only_jobs_beside_the_studys_lms_with_their_departures_named(three_lms):
    """study_comparison.csv held only its header for an LM-only sweep; now each cell's LM
    measures stand beside the study's LMs of that cell (the mean of its init and frozen rows),
    and the settings that differ from conf/study/flickr8k.yaml are named."""
    import pandas as pd

    from caplm.report.study import study_results

    csv = pd.read_csv(three_lms / "out" / "study_comparison.csv")
    study = csv[(csv["lm"] == "study_flickr8k") & (csv["measure"] == "LM val pplx")].iloc[0]
    theirs = study_results().query("experiment == 'langmodtrans' and lm_corpus == 'flickr8k' "
                                   "and size_exponent == 0")["lm_val_geomean_pplx_corrected"]  # fmt: skip
    assert len(theirs) == 2 and study["study_mean"] == pytest.approx(theirs.mean())
    assert study["caplm_mean"] > 1 and study["ratio"] == pytest.approx(
        study["caplm_mean"] / study["study_mean"])  # fmt: skip
    assert set(csv["measure"]) == {"LM val pplx", "LM captest pplx", "LM epochs"}
    # the study's job departs where the test shrank it; the default LM in its optimizer too
    assert study["departs_from_study"] == (
        "data.min_word_freq=1 (study: 5); lm.embed_size=8 (study: 502); "
        "lm.fit.max_epochs=1 (study: 100); lm.rnn_size=8 (study: 201)")  # fmt: skip
    default = csv[csv["cfg.lm.lr"] == 0.003].iloc[0]["departs_from_study"]
    assert "lm.optimizer=adam (study: rmsprop)" in default
    md = (three_lms / "out" / "report.md").read_text()
    assert "**3 of 3 compared cells depart from the study's settings**" in md
    assert "| study_flickr8k | 0.00249 | " in md


def test_a_features_only_job_says_once_that_it_has_no_pictures(tmp_path, caplog):
    """With data.features_file set, a job warned for each test picture "image file not found;
    point it at the folder that holds the dataset's images", though images_dir is not read."""
    import logging

    import numpy as np

    from caplm.train import run as run_generator

    ids = [
        f"{split}{i}.jpg" for split, n in (("train", 40), ("val", 8), ("test", 8)) for i in range(n)
    ]
    features = np.random.default_rng(0).normal(size=(len(ids), 8)).astype(np.float32)
    np.savez(tmp_path / "feats.npz", features=features, ids=np.array(ids, dtype=str))
    cfg = lm_cfg(tmp_path, [f"data.features_file={tmp_path}/feats.npz", "transfer=none",
                            "model.post_image_size=8", "model.fit.max_epochs=1", "eval.meteor=false",
                            "eval.spice=off", "eval.retrieval=false", "eval.pictures=4"],
                 "features", config_name="train")  # fmt: skip
    with caplog.at_level(logging.INFO, logger="caplm"):
        assert run_generator(cfg)["job/status"] == COMPLETE
    said = [r.getMessage() for r in caplog.records if "picture" in r.getMessage()]
    assert said == ["no test pictures for the report: a features-only job "
                    "(data.features_file) has no pictures to show"]  # fmt: skip
    assert not (Path(cfg.paths.output_dir) / "test_pictures").exists()


def test_progress_bars_only_on_a_terminal(tmp_path, caplog, capsys, monkeypatch):
    """A log written to a file held every redraw of the bars (234 KB for one LM run): output
    that is not a terminal (here pytest's capture) gets one line per epoch instead."""
    import logging
    import sys

    from caplm.runtime.training import make_trainer

    cfg = lm_cfg(tmp_path, ["trainer.enable_progress_bar=true", "lm.fit.max_epochs=2"], "bars")
    with caplog.at_level(logging.INFO, logger="caplm"):
        lm_entry.run(cfg)
    epochs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"]
    assert "val/loss " in epochs[0] and "\r" not in capsys.readouterr().err

    class Terminal:
        def isatty(self):
            return True

        def __getattr__(self, name):
            return getattr(sys.__stderr__, name)

    monkeypatch.setattr(sys, "stderr", Terminal())
    trainer, _ = make_trainer({"enable_progress_bar": True}, tmp_path / "ck", {"max_epochs": 1})
    assert trainer.progress_bar_callback is not None  # a terminal keeps its bar
