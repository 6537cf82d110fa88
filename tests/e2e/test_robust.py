"""End to end: a robust LM (lm.fit.robust) trained once, measured under test-time
perturbations (eval.lm_perturbed), and transferred to the caption generator by every mode."""

import json

import pytest

from caplm import lm as lm_entry
from caplm.models.robust import KINDS
from caplm.models.transfer.modes import mode_names, uses_lm
from caplm.results import perturbed_key, pplx_key, robust_key
from caplm.train import run

ROBUST = ["lm.fit.robust.word_dropout=0.1", "lm.fit.robust.noise=0.05",
          "lm.fit.robust.adversarial=0.05"]  # fmt: skip
PERTURBED = ["eval.lm_perturbed.word_dropout=0.2", "eval.lm_perturbed.adversarial=0.2"]


def test_a_robust_lm_records_its_strengths_and_its_perplexity_under_perturbation(make_lm_cfg):
    cfg = make_lm_cfg([*ROBUST, *PERTURBED])
    results = lm_entry.run(cfg)
    assert {k: results[robust_key(k)] for k in KINDS} == {
        "word_dropout": 0.1, "noise": 0.05, "adversarial": 0.05}  # fmt: skip
    assert results[perturbed_key("word_dropout")] == 0.2
    assert perturbed_key("noise") not in results  # 0: not measured
    for split in ("capval", "captest"):
        clean = results[pplx_key("lm", split)]
        # a step up the loss's gradient raises it; <unk> inputs only change it (an LM trained
        # with word dropout may even gain)
        assert results[pplx_key("lm", f"{split}_perturbed_adversarial")] > clean
        assert results[pplx_key("lm", f"{split}_perturbed_word_dropout")] != clean
        assert pplx_key("lm", f"{split}_perturbed_noise") not in results
    entry = json.loads(open(f"{cfg.paths.output_dir}/lm.json").read())["path"]
    history = json.loads(open(f"{entry}/info.json").read())["history"]
    assert all("train/adv_loss" in row for row in history) and len(history) == 2
    plain = lm_entry.run(make_lm_cfg([], job="plain"))
    assert plain["lm/cache_key"] != results["lm/cache_key"]
    assert {plain[robust_key(k)] for k in KINDS} == {0.0}
    assert not any("perturbed" in k for k in plain)


def _transfers(make_cfg, modes):
    keys = set()
    for mode in modes:  # one robust LM, trained by the first job and reused by the others
        results = run(make_cfg([f"transfer={mode}", *ROBUST], job=mode))
        assert results["job/transfer"] == mode and results["lm/robust_adversarial"] == 0.05
        assert results["lm/trained_here"] is (mode == modes[0])
        assert results["transfer/params_transferred"] > 0
        assert isinstance(results["capgen/test_CIDEr"], float)
        keys.add(results["lm/cache_key"])
    assert len(keys) == 1


def test_a_robust_lm_transfers_as_initialisation_and_frozen(make_cfg):
    _transfers(make_cfg, ["init", "frozen"])


@pytest.mark.slow
def test_a_robust_lm_transfers_by_every_mode(make_cfg):
    _transfers(make_cfg, [m for m in mode_names() if uses_lm(m)])
