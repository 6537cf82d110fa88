"""``python -m caplm.lm``: LMs trained and evaluated on text alone, landing in the shared cache
that generator jobs then reuse."""

import json
from pathlib import Path

import pytest

from caplm import lm as lm_entry
from caplm.results import COMPLETE, RESULTS_FILE, pplx_key
from caplm.runtime.config import ConfigError
from caplm.train import run as run_generator


def test_an_lm_only_job_reports_the_studys_lm_measures(make_lm_cfg):
    cfg = make_lm_cfg(["lm.fit.max_epochs=2"])
    results = lm_entry.run(cfg)
    saved = json.loads(open(f"{cfg.paths.output_dir}/{RESULTS_FILE}").read())
    assert saved == json.loads(json.dumps(results))
    assert saved["job/status"] == COMPLETE and saved["job/transfer"] == "lm_only"
    assert saved["job/normaliser"] == "keep_punct" and saved["job/corpus"] == "captions"
    for split in ("val", "capval", "captest"):
        for kind in ("plain", "corrected"):
            for stat in ("mean", "median", "geomean"):
                assert saved[pplx_key("lm", split, kind, stat)] > 1.0
        assert 0.0 <= saved[f"lm/{split}_oov_token_rate"] <= saved[f"lm/{split}_oov_type_rate"] <= 1
    # whole validation text unless sampled on purpose (TINY samples 40 of it)
    assert saved["lm/max_val_sentences"] == 40 and saved["lm/val_sentences"] == 40
    assert saved["lm/epochs"] == 2 and saved["lm/stopped_at_cap"] in (True, False)
    assert not any(k.startswith(("capgen/", "transfer/")) for k in saved)
    assert not (Path(cfg.paths.cache_dir) / "features").exists()  # text only: no image features


def test_a_generator_job_reuses_the_lm_that_caplm_lm_trained(make_lm_cfg, make_cfg):
    lm_cfg = make_lm_cfg(["seed=3"])
    trained = lm_entry.run(lm_cfg)
    assert trained["lm/trained_here"] is True
    gen = run_generator(make_cfg(["seed=3", "transfer=frozen"], job="gen"))
    assert gen["lm/trained_here"] is False and gen["lm/cache_key"] == trained["lm/cache_key"]
    assert gen[pplx_key("lm", "captest")] == trained[pplx_key("lm", "captest")]


def test_an_lm_only_config_is_checked_like_a_generator_one(make_lm_cfg):
    with pytest.raises(ConfigError, match=r"data.normaliser: is 'nltk'; known normalisers"):
        lm_entry.run(make_lm_cfg(["data.normaliser=nltk"]))


def _in_a_sweep(cfg, sweep_dir):
    """``cfg`` as a job of a multirun whose sweep folder is ``sweep_dir``."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, read_write

    with read_write(cfg.hydra):
        OmegaConf.update(cfg, "hydra.mode", "MULTIRUN")
        OmegaConf.update(cfg, "hydra.sweep.dir", str(sweep_dir))
    HydraConfig().set_config(cfg)
    return cfg


def test_a_grid_point_outside_the_corpus_design_is_marked_not_run(make_cfg, tmp_path):
    """paper_flickr8k sweeps one list of exponents over corpora of different ranges: the
    in-domain corpus (max_size_exponent 0) at e = 0.5 is not applicable in a sweep, not a
    failure; asked for alone, it is an error."""
    from caplm.report import scan

    with pytest.raises(ValueError, match="goes up to size_exponent 0 .* lower corpus.size_exp"):
        run_generator(make_cfg(["corpus.size_exponent=0.5"], job="alone"))
    sweep = tmp_path / "sweep"
    cfg = _in_a_sweep(make_cfg(["corpus.size_exponent=0.5"], job="sweep/na"), sweep)
    results = run_generator(cfg)
    assert results["job/status"] == "not_applicable"
    assert "goes up to size_exponent 0" in results["job/reason"]
    out = Path(cfg.paths.output_dir)
    assert sorted(p.name for p in out.iterdir()) == [RESULTS_FILE]  # nothing trained
    run_generator(_in_a_sweep(make_cfg(["transfer=none"], job="sweep/none"), sweep))
    found = scan(sweep)
    assert found.not_applicable == ["na"] and found.incomplete == [] and found.finished == 1
    # modes without an LM have no corpus, so nothing is outside their design
    none = make_cfg(["corpus.size_exponent=0.5", "transfer=none"], job="none2")
    assert run_generator(none)["job/status"] == COMPLETE


def test_lm_only_on_real_data_files_flickr8k_json_and_lm1b_folders(tmp_path):
    """The real-data path with no image at all: a Karpathy JSON (punctuation, numbers,
    non-ASCII), an lm1b-style folder, the study's normaliser, OOV rates of the captions."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from caplm import CONF_DIR
    from caplm.data.corpora import LM1B_HELDOUT, LM1B_TRAIN

    words = "dog cat man woman runs sits red blue".split()
    images = [
        {"filename": f"{split}{i}.jpg", "split": split, "sentences": [
            {"raw": f"A {words[i % 8]} and {i % 3 + 2} {words[(i + 3) % 8]}s, naïvely!"}
            for _ in range(2)]}
        for split, n in (("train", 40), ("val", 8), ("test", 8)) for i in range(n)
    ]  # fmt: skip
    images[-1]["sentences"][0]["raw"] = "A zebra in 1,000 trees."  # words the LM never saw
    (tmp_path / "dataset_flickr8k.json").write_text(json.dumps({"images": images}))
    root = tmp_path / "lm1b"
    for name, n in ((LM1B_TRAIN.format(1), 300), (LM1B_HELDOUT.format(1), 30)):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        lines = [f"The {words[k % 8]} said {k} {words[(k * 5) % 8]}s ran ." for k in range(n)]
        (root / name).write_text("\n".join(["Hi .", *lines]) + "\n")
    overrides = [
        "data=flickr8k", f"data.annotations={tmp_path}/dataset_flickr8k.json",
        "data.min_word_freq=1", "corpus=lm1b", f"corpus.root={root}", "corpus.train_shards=1",
        "corpus.size_exponent=0.5", "lm.embed_size=8", "lm.rnn_size=8", "lm.fit.max_epochs=1",
        "eval.lm_samples=5", "logger=none", "trainer.enable_progress_bar=false",
        f"paths.data_dir={tmp_path}/data",
    ]  # fmt: skip
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train_lm", overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "job")
    results = lm_entry.run(cfg)
    assert results["job/normaliser"] == "study" and results["job/corpus"] == "lm1b"
    assert results["lm/corpus_size"] == round(10**0.5 * 80) and results["lm/pool_size"] == 300
    # the test captions' types: a, and, NUM, naively... "naïvely" -> "na", "vely"; of them the
    # LM (news-like text of the same 8 nouns) lacks a, and, na, vely, zebra, in, trees
    test_types = {"a", "and", "NUM", "na", "vely", "zebra", "in", "trees"} | {
        w for i in range(8) for w in (words[i % 8], words[(i + 3) % 8] + "s")
    }
    missing = {"a", "and", "na", "vely", "zebra", "in", "trees"}
    assert results["lm/captest_oov_types"] == len(missing)
    assert results["lm/captest_oov_type_rate"] == pytest.approx(len(missing) / len(test_types))
    assert results["lm/val_oov_types"] == 0 and results["lm/val_sentences"] == 30
