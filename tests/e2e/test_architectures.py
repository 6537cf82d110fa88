"""Whole jobs of the architectures beside merge (#40): region features, transfer, the
transferability scores (or why not), the attention pictures."""

import json
import logging
from pathlib import Path

import pytest

from caplm.results import COMPLETE, transferability_key
from caplm.train import run


def test_a_merge_attention_job_attends_over_regions_and_draws_where(make_cfg):
    cfg = make_cfg(["model=merge_attention", "transfer=frozen", "transferability.enabled=true",
                    "transferability.samples=1", "eval.pictures=2"])  # fmt: skip
    results = run(cfg)
    assert results["job/status"] == COMPLETE
    assert results["capgen/architecture"] == "merge_attention"
    assert results[transferability_key("logme")] == results[transferability_key("logme")]
    assert results["transfer/params_frozen"] > 0
    job = Path(cfg.paths.output_dir)
    captions = json.loads((job / "test_captions.json").read_text())
    drawn = [c["attention_picture"] for c in captions if "attention_picture" in c]
    assert len(drawn) == 2 and all((job / d).is_file() for d in drawn)


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["par_inject", "init_inject"])
def test_an_inject_job_transfers_and_says_what_could_not(make_cfg, architecture, caplog):
    cfg = make_cfg([f"model={architecture}", "transfer=frozen", "transferability.enabled=true"])
    with caplog.at_level(logging.INFO):
        results = run(cfg)
    assert results["job/status"] == COMPLETE
    assert results["capgen/architecture"] == architecture
    reason = results[transferability_key("skipped")]
    assert reason.startswith(f"not applicable: model={architecture} feeds the image into the RNN")
    assert results["transfer/params_frozen"] > 0
    if architecture == "init_inject":
        assert "the language model's prefix.init_h cannot move" in caplog.text
    else:
        assert "prefix.image_input (the image columns of the RNN's input weights)" in caplog.text
    assert not (Path(cfg.paths.output_dir) / "attention_pictures").exists()
