"""End to end: one tiny job per transfer mode through caplm.train.run, and the LM cache."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from caplm.data.readers import load_caption_dataset
from caplm.results import COMPLETE, RESULTS_FILE
from caplm.train import run


@pytest.mark.parametrize("mode", ["none", "init", "frozen", "random_frozen"])
def test_each_transfer_mode_runs_end_to_end(make_cfg, mode):
    cfg = make_cfg([f"transfer={mode}"])
    results = run(cfg)
    out = cfg.paths.output_dir
    saved = json.loads(open(f"{out}/{RESULTS_FILE}").read())
    assert saved == json.loads(json.dumps(results))
    assert saved["job/status"] == COMPLETE and saved["job/transfer"] == mode
    for key in (
        "capgen/test_BLEU-4",
        "capgen/test_CIDEr",
        "capgen/test_pplx_corrected_geomean",
        "capgen/ret_R@1",
        "capgen/div_vocab_used",
        "capgen/shapes_object_precision",
    ):
        assert isinstance(saved[key], float | int), key
    assert saved["capgen/test_METEOR"] is None  # switched off for speed in TINY
    captions = json.loads(open(f"{out}/test_captions.json").read())
    assert len(captions) == 8 and all(5 <= len(c["caption"].split()) <= 20 for c in captions)
    # each caption marked as the results count it; the first eval.pictures (4) pictures saved
    marked = sum(c["all_true"] for c in captions) / len(captions)
    assert marked == saved["capgen/shapes_all_true_frac"]
    dataset = load_caption_dataset(cfg.data, cfg.paths.cache_dir)
    assert [c.get("picture") for c in captions] == [
        *(f"test_pictures/{c['image_id']}.png" for c in captions[:4]),
        *[None] * 4,
    ]
    picture = np.asarray(Image.open(f"{out}/{captions[0]['picture']}"))
    original = dataset.load_image(captions[0]["image_id"])  # 32 px, enlarged 5 times
    assert picture.shape == (160, 160, 3)
    np.testing.assert_array_equal(picture[::5, ::5], original)
    with_lm = mode in ("init", "frozen")
    assert ("lm/captest_pplx_corrected_geomean" in saved) == with_lm
    assert (saved["transfer/params_transferred"] > 0) == with_lm
    assert (saved["transfer/params_frozen"] > 0) == (mode in ("frozen", "random_frozen"))
    assert saved["job/corpus"] == ("captions" if with_lm else "none")


def test_frozen_prefix_is_the_lm_prefix_after_training(make_cfg):
    cfg = make_cfg(["transfer=frozen", "transfer.vocab_policy=intersect"])
    results = run(cfg)
    lm = torch.load(f"{cfg.paths.lm_cache_dir}/{results['lm/cache_key']}/lm.pt", weights_only=False)
    ckpt = torch.load(f"{cfg.paths.output_dir}/checkpoints/best.ckpt", weights_only=False)
    gen, lm_state = ckpt["state_dict"], lm["state_dict"]
    for name, value in gen.items():
        if name.startswith("prefix.rnn") or name.startswith("prefix.init"):
            assert torch.equal(value, lm_state[name]), name
    # intersect: the vocabularies differ only in order, so every row is the LM's row
    vocab = json.loads(open(f"{cfg.paths.output_dir}/vocab.json").read())
    lm_vocab = json.loads(
        open(f"{cfg.paths.lm_cache_dir}/{results['lm/cache_key']}/vocab.json").read()
    )
    emb, lm_emb = gen["prefix.embedding.weight"], lm_state["prefix.embedding.weight"]
    for i, word in enumerate(vocab):
        assert torch.equal(emb[4 + i], lm_emb[4 + lm_vocab.index(word)]), word


def test_two_jobs_needing_one_lm_train_it_once(make_cfg):
    first = run(make_cfg(["transfer=frozen"], job="a"))
    second = run(make_cfg(["transfer=init"], job="b"))
    other_seed = run(make_cfg(["transfer=init", "seed=2"], job="c"))
    assert first["lm/trained_here"] and not second["lm/trained_here"]
    assert first["lm/cache_key"] == second["lm/cache_key"] != other_seed["lm/cache_key"]
    assert other_seed["lm/trained_here"]


def test_shapes_extra_corpus_and_size_exponent(make_cfg):
    from tests.conftest import TINY_EXTRA

    cfg = make_cfg(
        ["transfer=init", "corpus=shapes_extra", "corpus.size_exponent=0.5", *TINY_EXTRA]
    )
    results = run(cfg)
    captions = 24 * 5
    assert results["lm/corpus_size"] == round(10**0.5 * captions)
    assert results["job/corpus"] == "shapes_extra" and results["job/size_exponent"] == 0.5


def test_completed_job_is_skipped_and_a_changed_config_sets_the_old_files_aside(make_cfg):
    results = run(make_cfg(["transfer=none"]))
    again = run(make_cfg(["transfer=none", "logger=csv"]))  # a logger does not change results
    assert again["job/finished"] == results["job/finished"]
    changed = make_cfg(["transfer=none", "model.lr=0.01"])  # into the same folder
    other = run(changed)
    assert other["job/config_hash"] != results["job/config_hash"]
    out = Path(changed.paths.output_dir)
    (old,) = out.glob("results.json.bad-*")  # kept, not deleted
    assert json.loads(old.read_text())["job/config_hash"] == results["job/config_hash"]
    assert len(list(out.glob("checkpoints.bad-*"))) == 1  # the old job's fit, not reused
