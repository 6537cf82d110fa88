"""caplm.runtime.jobs: a job's identity, its grid cell, and what a re-run does."""

from __future__ import annotations

from omegaconf import open_dict

from caplm.io import read_json, write_json
from caplm.results import COMPLETE, CONFIG_HASH, STATUS, job_key
from caplm.runtime.jobs import JOB_FILE, Job, grid_cell, job_identity


def test_identity_leaves_out_what_does_not_change_results(make_cfg):
    base = job_identity(make_cfg())
    other = job_identity(
        make_cfg(
            ["logger=csv", "trainer.enable_progress_bar=true", "eval.show=3", "eval.pictures=0"]
        )
    )
    assert base == other
    assert not {"paths", "logger", "trainer", "hydra", "task_name", "threads"} & set(base)
    assert not {"show", "pictures"} & set(base["eval"])
    assert job_identity(make_cfg(["seed=2"])) != base
    assert job_identity(make_cfg(["model.lr=0.01"])) != base


def test_robustness_settings_are_in_the_identity_only_when_on(make_cfg):
    base = job_identity(make_cfg())
    assert "robust" not in base["lm"]["fit"] and "lm_perturbed" not in base["eval"]
    trained = job_identity(make_cfg(["lm.fit.robust.noise=0.1"]))
    assert trained["lm"]["fit"].pop("robust")["noise"] == 0.1 and trained == base
    measured = job_identity(make_cfg(["eval.lm_perturbed.word_dropout=0.1"]))
    assert measured["eval"].pop("lm_perturbed")["word_dropout"] == 0.1 and measured == base


def test_modes_without_an_lm_ignore_the_lm_and_its_corpus(make_cfg):
    a = job_identity(make_cfg(["transfer=none", "corpus=captions"]))
    b = job_identity(make_cfg(["transfer=none", "corpus=shapes_extra", "lm=medium"]))
    assert a == b and "lm" not in a and "corpus" not in a
    with_lm = job_identity(make_cfg(["transfer=init"]))
    assert with_lm["lm"]["fit"]["max_epochs"] == 2 and with_lm["corpus"]["name"] == "captions"


def test_grid_cell_names_the_study_cell(make_cfg):
    cell = grid_cell(make_cfg(["transfer=init", "corpus.size_exponent=-0.5", "seed=3"]))
    assert cell[job_key("transfer")] == "init"
    assert cell[job_key("corpus")] == "captions"
    assert cell[job_key("size_exponent")] == -0.5
    assert cell[job_key("lm_max_epochs")] == 2
    assert cell[job_key("seed")] == 3
    none = grid_cell(make_cfg(["transfer=none"]))
    assert none[job_key("corpus")] == "none" and none[job_key("lm")] is None


def test_claim_records_the_job_then_finish_writes_complete_results(make_cfg):
    job = Job(make_cfg())
    with job.claim() as done:
        assert done is None
        started = read_json(job.dir / JOB_FILE)
        assert started[CONFIG_HASH] == job.key and "identity" in started
        results = job.finish({"capgen/test_CIDEr": 0.5})
    saved = read_json(job.dir / "results.json")
    assert saved == results
    assert saved[STATUS] == COMPLETE and saved[CONFIG_HASH] == job.key
    assert saved[job_key("total_time_s")] >= 0 and saved["capgen/test_CIDEr"] == 0.5


def test_a_complete_job_is_skipped_or_run_again_by_option(make_cfg):
    job = Job(make_cfg())
    with job.claim():
        job.finish({"capgen/test_CIDEr": 0.5})
    (job.dir / "stale.txt").write_text("x")
    with Job(make_cfg()).claim() as done:
        assert done["capgen/test_CIDEr"] == 0.5
    cfg = make_cfg()
    with open_dict(cfg):
        cfg.skip_completed = False
    with Job(cfg).claim() as done:
        assert done is None
    assert not (job.dir / "stale.txt").exists() and not (job.dir / "results.json").exists()


def test_a_folder_of_another_config_has_its_record_moved_aside_by_name(make_cfg, caplog):
    first = Job(make_cfg())
    with first.claim():
        pass  # job.json of seed 1
    second = Job(make_cfg(["seed=2"]))
    with second.claim() as done:
        assert done is None
    assert "job.json cannot be used (made with a different config" in caplog.text
    (aside,) = second.dir.glob(f"{JOB_FILE}.bad-*")
    assert read_json(aside)[CONFIG_HASH] == first.key
    assert read_json(second.dir / JOB_FILE)[CONFIG_HASH] == second.key


def test_an_unreadable_job_file_is_run_again(make_cfg, caplog):
    job = Job(make_cfg())
    job.dir.mkdir(parents=True)
    (job.dir / JOB_FILE).write_text('{"config_hash": ')
    with job.claim() as done:
        assert done is None
    assert "not valid JSON" in caplog.text
    assert read_json(job.dir / JOB_FILE)[CONFIG_HASH] == job.key


def test_an_identical_job_of_the_sweep_is_reused(make_cfg, tmp_path):
    first = Job(make_cfg(job="sweep/a"))
    second = Job(make_cfg(job="sweep/b"))
    assert first.key == second.key
    write_json(first.dir / "results.json", {CONFIG_HASH: first.key, STATUS: COMPLETE, "x": 1})
    second.sweep_dir = tmp_path / "sweep"  # as in a multirun
    with second.claim() as done:
        assert done["x"] == 1 and done[job_key("reused_from")] == "a"
    assert read_json(second.dir / "results.json")["x"] == 1


def test_new_content_in_an_input_file_is_another_job(make_cfg, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a red circle\nsome blue squares\n")
    overrides = ["transfer=init", "corpus=textfile", f"corpus.train_file={corpus}"]
    first = Job(make_cfg(overrides))
    assert set(first.identity["inputs"]) == {"corpus.train_file"}
    assert Job(make_cfg(overrides)).key == first.key  # same file, same job
    corpus.write_text("a red circle\nsome green squares\n")  # same path, new text
    changed = Job(make_cfg(overrides))
    assert changed.key != first.key
    with first.claim():
        first.finish({})
    with changed.claim() as done:  # never skipped as complete: its results are set aside
        assert done is None
    assert len(list(changed.dir.glob("results.json.bad-*"))) == 1
    assert "inputs" not in job_identity(make_cfg())  # the embedded default names no file
