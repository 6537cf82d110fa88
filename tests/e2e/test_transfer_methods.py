"""End to end: one tiny job per transfer method beyond the study, through caplm.train.run."""

import json
import os

import pytest
import torch

from caplm.results import COMPLETE, RESULTS_FILE, wise_ft_key
from caplm.train import run

#: Bookkeeping that differs between any two runs of one job.
NOT_COMPARED = ("time_s", "job/time_", "overhead_frac", "job/finished", "job/pid", "job/host",
                "job/overrides", "job/config_hash", "job/transfer", "lm/trained_here",
                "resumed_after", "job/attempts")  # fmt: skip


def _same(a: dict, b: dict) -> dict:
    """The entries of two results that differ (bookkeeping left out)."""
    keys = {k for k in a.keys() | b.keys() if not any(s in k for s in NOT_COMPARED)}
    return {k: (a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)}


@pytest.mark.parametrize("mode", ["l2_sp", "aux_lm", "ulmfit"])
def test_each_method_runs_end_to_end(make_cfg, mode):
    cfg = make_cfg([f"transfer={mode}", "model.fit.max_epochs=3"])
    results = run(cfg)
    saved = json.loads(open(f"{cfg.paths.output_dir}/{RESULTS_FILE}").read())
    assert saved["job/status"] == COMPLETE and saved["job/transfer"] == mode
    assert saved["transfer/params_transferred"] > 0 and saved["transfer/params_frozen"] == 0
    assert isinstance(saved["capgen/test_CIDEr"], float)
    assert results["capgen/epochs"] == 3
    history = json.loads(open(f"{cfg.paths.output_dir}/checkpoints/fit_done.json").read())
    logged = {k for row in history["history"] for k in row}
    if mode != "ulmfit":
        assert f"train/{mode}" in logged  # the extra loss term is logged


def test_wise_ft_fits_twice_keeps_the_best_alpha_and_resumes(make_cfg):
    cfg = make_cfg(["transfer=wise_ft", "transfer.alphas=[0,0.5,1]"])
    results = run(cfg)
    out = cfg.paths.output_dir
    alphas = (0.0, 0.5, 1.0)
    losses = {a: results[wise_ft_key("loss", a)] for a in alphas}
    assert results[wise_ft_key("alpha")] == min(losses, key=losses.get)
    assert results[wise_ft_key("theta0_epochs")] == 2 and results["capgen/epochs"] == 4
    assert results["transfer/params_frozen"] > 0  # theta_0's fit froze the parts
    theta0 = torch.load(f"{out}/checkpoints/theta0/best.ckpt", weights_only=False)["state_dict"]
    theta1 = torch.load(f"{out}/checkpoints/best.ckpt", weights_only=False)["state_dict"]
    assert not torch.equal(theta0["prefix.rnn.weight_hh_l0"], theta1["prefix.rnn.weight_hh_l0"])
    # theta_1's fit lost (theta_0's kept): the rerun refits it alone and gets the same results
    for name in ("best.ckpt", "last.ckpt", "fit_done.json"):
        os.remove(f"{out}/checkpoints/{name}")
    os.remove(f"{out}/{RESULTS_FILE}")
    again = run(cfg)
    assert _same(results, again) == {}


def test_wise_ft_can_choose_by_validation_bleu(make_cfg):
    results = run(make_cfg(["transfer=wise_ft", "transfer.alphas=[0,1]", "transfer.select=bleu"]))
    bleu = {a: results[wise_ft_key("BLEU-4", a)] for a in (0.0, 1.0)}
    assert results[wise_ft_key("alpha")] == max(bleu, key=bleu.get)


def test_aux_lm_with_gamma_zero_is_plain_fine_tuning(make_cfg):
    plain = run(make_cfg(["transfer=init"], job="init"))
    zero = run(make_cfg(["transfer=aux_lm", "transfer.gamma=0", "transfer.gamma_end=0"], job="aux"))
    assert _same(plain, zero) == {}


def test_the_output_part_transfers_end_to_end(make_cfg):
    results = run(make_cfg(["transfer=init", "transfer.parts=[embedding,rnn,output]"]))
    base = run(make_cfg(["transfer=init"], job="base"))
    vocab, rnn_size = results["capgen/vocab_size"], 24
    assert results["transfer/params_transferred"] - base["transfer/params_transferred"] == (
        vocab * rnn_size + vocab
    )
