"""Whole jobs with lm=hf on a tiny GPT-2 built here (never downloaded): frozen (default
suite), the caption CLI on it; init resumed after SIGKILL, and a sweep lm=small,<hf> in one
report (slow)."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict
from PIL import Image

from caplm.caption import main as caption_main
from caplm.data.readers import load_caption_dataset
from caplm.data.subword import KIND
from caplm.hf import transformers
from caplm.results import COMPLETE, RESULTS_FILE
from caplm.train import run
from tests.hf.conftest import hf_cfg

FAST = ["model.fit.max_epochs=1", "eval.retrieval=false", "eval.lm_samples=0"]


@pytest.fixture(scope="module")
def frozen_job(tiny_models, tmp_path_factory):
    """A finished frozen job, with the .hydra files `python -m caplm.train` writes and its test
    images as PNG files."""
    tmp = tmp_path_factory.mktemp("hfjob")
    cfg = hf_cfg(tmp, tiny_models["gpt2"], ["transfer=frozen", *FAST])
    results = run(cfg)
    job = Path(cfg.paths.output_dir)
    saved = cfg.copy()
    with open_dict(saved):
        del saved["hydra"]
    (job / ".hydra").mkdir(exist_ok=True)
    OmegaConf.save(saved, job / ".hydra" / "config.yaml")
    dataset = load_caption_dataset(cfg.data, cfg.paths.cache_dir)
    images = tmp / "images"
    images.mkdir()
    for image_id in dataset.image_ids("test"):
        Image.fromarray(dataset.load_image(image_id)).save(images / f"{image_id}.png")
    return job, images, results


def test_a_frozen_job_freezes_the_whole_body_and_scores_words(frozen_job, tiny_models):
    job, _, results = frozen_job
    assert results["job/status"] == COMPLETE and results["lm/arch"] == "hf"
    body = transformers().AutoModel.from_pretrained(str(tiny_models["gpt2"]))
    n_body = sum(p.numel() for p in body.parameters())
    # default parts [embedding, rnn]: the whole body, copied and frozen
    assert results["transfer/params_frozen"] == results["transfer/params_transferred"] == n_body
    assert results["capgen/arch"] == "hf:gpt2"
    for part, split in (("lm", "captest"), ("capgen", "test")):
        assert math.isfinite(results[f"{part}/{split}_pplx_per_word_geomean"])
        assert results[f"{part}/{split}_pplx_corrected"].startswith("not_applicable")
        assert f"{part}/{split}_pplx_corrected_geomean" not in results
    assert results["transfer/vocab_policy"].startswith("not_applicable")
    assert json.loads((job / "vocab.json").read_text())["kind"] == KIND
    captions = json.loads((job / "test_captions.json").read_text())
    assert captions and all("Ġ" not in c["caption"] for c in captions)  # words, not subwords


def test_the_caption_cli_gives_the_jobs_captions(frozen_job, capsys):
    job, images, _ = frozen_job
    code = caption_main([str(job), str(images), "--json", "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 0, err
    expected = {c["image_id"]: c for c in json.loads((job / "test_captions.json").read_text())}
    found = json.loads(out)
    assert len(found) == len(expected) == 8
    for r in found:
        (best,) = r["captions"]
        assert best["caption"] == expected[Path(r["image"]).stem]["caption"]
        assert best["logprob"] == pytest.approx(
            expected[Path(r["image"]).stem]["logprob"], abs=1e-4
        )


def test_a_missing_model_folder_fails_the_config_check(tmp_path):
    from caplm.runtime.config import ConfigError, check_config

    cfg = hf_cfg(tmp_path, tmp_path / "no-such-model")
    with pytest.raises(ConfigError, match=r"lm.path=.*no such folder.*huggingface-cli download"):
        check_config(cfg)


# -- slow: subprocess jobs -------------------------------------------------------------------

NOT_COMPARED = ("job/total_time_s", "job/finished", "job/pid", "job/host", "job/overrides",
                "capgen/train_time_s", "capgen/resumed_after", "job/overhead_frac",
                "job/attempts")  # fmt: skip


def _metrics(job: Path) -> dict:
    r = json.loads((job / RESULTS_FILE).read_text())
    assert r["job/status"] == COMPLETE
    return {k: v for k, v in r.items() if k not in NOT_COMPARED and not k.startswith("job/time_")}


@pytest.mark.slow
def test_an_init_job_killed_in_training_resumes_to_the_same_results(tiny_models, tmp_path):
    from tests.e2e.test_fault_injection import kill_when
    from tests.e2e.test_sweeps import _finish, _train

    args = ["lm=hf", f"lm.path={tiny_models['gpt2']}", "transfer=init", "model.fit.max_epochs=3",
            "model.fit.patience=null", "eval.retrieval=false", "threads=1"]  # fmt: skip
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    _finish(_train([*args, f"hydra.run.dir={whole}/job"], whole))
    proc = _train([*args, f"hydra.run.dir={killed}/job"], killed, start_new_session=True)
    assert kill_when(proc, killed, "job/checkpoints/last.ckpt") == -signal.SIGKILL
    assert not (killed / "job" / RESULTS_FILE).exists()
    _finish(_train([*args, f"hydra.run.dir={killed}/job"], killed))
    assert json.loads((killed / "job" / RESULTS_FILE).read_text())["capgen/resumed_after"]
    assert _metrics(killed / "job") == _metrics(whole / "job")


@pytest.mark.slow
def test_a_sweep_of_a_word_lm_and_an_hf_lm_reports_both(tiny_models, tmp_path):
    """The model named as a config of the lm group (a user's conf dir on Hydra's search path),
    so that lm=small,<model> is one sweep."""
    from caplm.report.sweep import collect
    from tests.e2e.test_sweeps import _finish, _train

    conf = tmp_path / "conf" / "lm"
    conf.mkdir(parents=True)
    (conf / "tiny_gpt2.yaml").write_text(
        f"defaults:\n  - hf\n  - _self_\n\nname: tiny_gpt2\npath: {tiny_models['gpt2']}\n"
    )
    sweep = tmp_path / "sweep"
    _finish(_train(["-m", "lm=small,tiny_gpt2", "transfer=frozen", "eval.retrieval=false",
                    f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
                    f"hydra.sweep.dir={sweep}"], tmp_path), timeout=600)  # fmt: skip
    table = collect(sweep)
    assert sorted(table["lm"]) == ["small", "tiny_gpt2"]
    assert table["lm/captest_pplx_per_word_geomean"].notna().all()  # both on one scale
    from caplm.report.cli import main as report_main

    assert report_main([str(sweep)]) in (0, None)
    text = "\n".join(p.read_text() for p in sweep.rglob("*.md"))
    # the generator's arch names the model's folder (hf:<folder name>), beside the word LM's rnn
    assert f"hf:{Path(tiny_models['gpt2']).name}" in text and "| rnn |" in text


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["init", "lora", "l2_sp", "aux_lm", "ulmfit", "wise_ft"])
def test_every_method_runs_a_job_on_an_hf_lm(tiny_models, tmp_path, mode):
    extra = {"ulmfit": ["transfer.parts=[embedding,blocks:0-1,final_norm]"],
             "wise_ft": ["transfer.alphas=[0.0,1.0]"]}.get(mode, [])  # fmt: skip
    results = run(hf_cfg(tmp_path, tiny_models["llama"], [f"transfer={mode}", *extra, *FAST]))
    assert results["job/status"] == COMPLETE and results["job/transfer"] == mode
    assert results["transfer/params_transferred"] > 0
    assert math.isfinite(results["capgen/test_pplx_per_word_geomean"])
