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


def test_a_grid_point_outside_the_corpus_design_is_marked_not_run(make_cfg, tmp_path):
    """paper_flickr8k sweeps one list of exponents over corpora of different ranges: the
    in-domain corpus (max_size_exponent 0) at e = 0.5 is not applicable, not a failure."""
    from caplm.report import scan

    cfg = make_cfg(["+corpus.max_size_exponent=0", "corpus.size_exponent=0.5"], job="sweep/na")
    results = run_generator(cfg)
    assert results["job/status"] == "not_applicable"
    assert "goes up to size_exponent 0" in results["job/reason"]
    out = Path(cfg.paths.output_dir)
    assert sorted(p.name for p in out.iterdir()) == [RESULTS_FILE]  # nothing trained
    run_generator(make_cfg(["transfer=none"], job="sweep/none"))
    sweep = scan(tmp_path / "sweep")
    assert sweep.not_applicable == ["na"] and sweep.incomplete == [] and sweep.finished == 1
    # modes without an LM have no corpus, so nothing is outside their design
    assert run_generator(make_cfg(["+corpus.max_size_exponent=0", "corpus.size_exponent=0.5",
                                   "transfer=none"], job="none2"))["job/status"] == COMPLETE  # fmt: skip
