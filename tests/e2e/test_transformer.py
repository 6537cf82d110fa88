"""End to end with a Transformer LM (lm=transformer_small): the generator's prefix follows it,
the LM transfers and freezes, its cache entry is its own, an architecture mismatch is refused
by name, and a killed job resumes to the results of one never interrupted."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch

from caplm.results import COMPLETE, RESULTS_FILE
from caplm.train import run
from tests.e2e.test_fault_injection import kill_when, metrics
from tests.e2e.test_sweeps import _finish, _train

TRANSFORMER = ["lm=transformer_small"]
#: The Transformer settings model.* takes from lm.*, unset to force an RNN generator prefix.
RNN_MODEL = ["model.arch=rnn", "model.rnn_type=gru", "model.n_heads=null", "model.ff_size=null",
             "model.max_positions=null", "model.positions=null", "model.block_dropout=null"]  # fmt: skip


def test_a_transformer_lm_is_frozen_into_a_transformer_generator(make_cfg):
    cfg = make_cfg([*TRANSFORMER, "transfer=frozen", "transfer.vocab_policy=intersect"])
    assert cfg.model.arch == "transformer" and cfg.model.n_heads == cfg.lm.n_heads == 2
    results = run(cfg)
    assert results["job/status"] == COMPLETE
    assert results["lm/arch"] == results["capgen/arch"] == "transformer"
    assert results["transfer/params_frozen"] > 0
    assert all(
        isinstance(results[k], float)
        for k in ("capgen/test_CIDEr", "lm/captest_pplx_corrected_geomean")
    )
    entry = f"{cfg.paths.lm_cache_dir}/{results['lm/cache_key']}"
    lm_state = torch.load(f"{entry}/lm.pt", weights_only=False)["state_dict"]
    gen = torch.load(f"{cfg.paths.output_dir}/checkpoints/best.ckpt", weights_only=False)
    blocks = [n for n in gen["state_dict"] if n.startswith(("prefix.blocks.", "prefix.positions"))]
    assert len(blocks) > 10
    for name in blocks:  # trained two epochs, the frozen blocks are still the LM's, bit for bit
        assert torch.equal(gen["state_dict"][name], lm_state[name]), name
    captions = json.loads(open(f"{cfg.paths.output_dir}/test_captions.json").read())
    assert len(captions) == 8 and all(c["caption"].split() for c in captions)


def test_gru_and_transformer_lms_have_their_own_cache_entries(make_cfg):
    gru = run(make_cfg(["transfer=init"], job="gru"))
    transformer = run(make_cfg([*TRANSFORMER, "transfer=init"], job="transformer"))
    assert gru["lm/arch"] == "rnn" and transformer["lm/arch"] == "transformer"
    assert gru["lm/cache_key"] != transformer["lm/cache_key"]
    assert transformer["lm/trained_here"] is True
    assert gru["lm/params"] != transformer["lm/params"]


def test_a_transformer_lm_into_an_rnn_generator_is_refused_naming_both(make_cfg):
    cfg = make_cfg([*TRANSFORMER, *RNN_MODEL, "transfer=init"])
    with pytest.raises(ValueError) as err:
        run(cfg)
    said = str(err.value)
    assert "arch: transformer" in said and "arch: rnn" in said
    assert "lm=transformer_small" in said and "model.arch" in said


def test_a_block_range_the_generator_lacks_fails_before_any_training(make_cfg):
    cfg = make_cfg([*TRANSFORMER, "transfer=frozen", "transfer.parts=[embedding,blocks:1-3]"])
    with pytest.raises(ValueError, match=r"blocks:1-3 names block 3, but the Transformer has 2"):
        run(cfg)
    assert not list(Path(cfg.paths.lm_cache_dir).glob("*/lm.pt"))  # no LM was trained


RESUME_ARGS = [
    *TRANSFORMER,
    "transfer=init",
    "lm.fit.max_epochs=3",
    "lm.fit.early_stopping=false",
    "model.fit.max_epochs=3",
    "model.fit.patience=null",
    "logger=csv",
    "threads=1",
]


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", ["data/cache/lm/*/checkpoints/last.ckpt",
                                     "job/checkpoints/last.ckpt"])  # fmt: skip
def test_a_killed_transformer_job_resumes_to_the_uninterrupted_results(tmp_path, kill_at):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    _finish(_train([*RESUME_ARGS, f"hydra.run.dir={whole / 'job'}"], whole))
    proc = _train([*RESUME_ARGS, f"hydra.run.dir={killed / 'job'}"], killed, start_new_session=True)
    assert kill_when(proc, killed, kill_at) == -signal.SIGKILL
    assert not (killed / "job" / RESULTS_FILE).exists(), "killed too late"
    _finish(_train([*RESUME_ARGS, f"hydra.run.dir={killed / 'job'}"], killed))
    assert metrics(killed) == metrics(whole)
    resumed = json.loads((killed / "job" / RESULTS_FILE).read_text())
    part = "lm" if "lm" in kill_at else "capgen"
    assert resumed[f"{part}/resumed_after"], resumed[f"{part}/resumed_after"]


def test_a_transformer_lm_into_a_prefix_with_other_heads_is_refused(make_cfg):
    cfg = make_cfg([*TRANSFORMER, "transfer=init", "model.n_heads=4"])
    with pytest.raises(ValueError, match=r"n_heads=2 but .* model.n_heads=4"):
        run(cfg)
    assert not list(Path(cfg.paths.lm_cache_dir).glob("*/lm.pt"))  # refused before any training
