"""Transferability scores of an LM for caption data: the inputs, the job step, the command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from caplm import transferability as cli
from caplm.data.readers import load_caption_dataset
from caplm.data.text import BOS_ID, EOS_ID, Vocabulary
from caplm.evaluation.transfer_scores import (
    ImagePCA,
    caption_samples,
    prefix_positions,
    random_prefix_lm,
    scores_or_reason,
    transferability_scores,
)
from caplm.io import read_json
from caplm.models.language_model import LanguageModel
from caplm.results import CONFIG_HASH, lm_key, transferability_key
from caplm.runtime.config import ConfigError, check_config
from caplm.train import run
from tests.conftest import TINY

SCORING = {"positions": 120, "samples": 2, "image_components": 4, "seed": 0}
FAST = ["transferability.positions=120", "transferability.samples=2",
        "transferability.image_components=4"]  # fmt: skip


@pytest.fixture
def dataset(make_cfg, tmp_path):
    cfg = make_cfg()
    return load_caption_dataset(cfg.data, tmp_path / "cache")


def test_caption_samples_are_one_caption_per_image_and_fixed_by_seed(dataset):
    samples = caption_samples(dataset, positions=60, samples=3, max_len=20, seed=4)
    again = caption_samples(dataset, positions=60, samples=3, max_len=20, seed=4)
    assert [(r.tolist(), c) for r, c in samples] == [(r.tolist(), c) for r, c in again]
    for rows, captions in samples:
        assert len(set(rows.tolist())) == len(rows)  # each image once
        for row, caption in zip(rows, captions, strict=True):
            assert caption in dataset.splits["train"][row].captions
        total = sum(len(c) + 1 for c in captions)
        assert 60 <= total < 60 + max(len(c) + 1 for c in captions)
    assert not np.array_equal(samples[0][0], samples[1][0])  # the draws differ
    other = caption_samples(dataset, positions=60, samples=1, max_len=20, seed=5)
    assert not np.array_equal(other[0][0], samples[0][0])


def test_image_pca_is_centred_with_mean_component_variance_one():
    x = np.random.default_rng(0).normal(size=(200, 30)) * np.linspace(5, 0.1, 30)
    pca = ImagePCA(x, 6)
    z = pca(x)
    assert z.shape == (200, 6)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-9)
    assert z.var(0).mean() == pytest.approx(1.0)
    assert np.all(np.diff(z.var(0)) <= 1e-9)  # largest components first


def test_prefix_positions_are_the_lms_teacher_forced_outputs_and_next_words():
    torch.manual_seed(0)
    captions = [["a", "red", "cube"], ["blue", "zzz"]]
    lm_vocab = Vocabulary(["a", "red", "cube", "blue"])
    caption_vocab = Vocabulary(["blue", "a", "cube", "red", "zzz"])
    lm = LanguageModel(len(lm_vocab), embed_size=5, rnn_size=7)
    hidden, labels, probs = prefix_positions(lm, lm_vocab, caption_vocab, captions)
    ids = caption_vocab.stoi
    assert labels.tolist() == [ids["a"], ids["red"], ids["cube"], EOS_ID, ids["blue"],
                               ids["zzz"], EOS_ID]  # fmt: skip
    lm.eval()
    with torch.no_grad():
        inputs = torch.tensor([[BOS_ID, *lm_vocab.encode(["blue", "zzz"])]])  # "zzz": <unk>
        h = lm.prefix(inputs)[0][0]
    np.testing.assert_allclose(hidden[4:], h.numpy(), rtol=1e-6, atol=1e-7)
    stacked = np.concatenate(probs)
    assert stacked.shape == (7, len(lm_vocab))
    np.testing.assert_allclose(stacked.sum(1), 1.0, rtol=1e-6)


def test_the_random_prefix_has_the_lms_architecture_and_is_fixed_by_seed():
    lm = LanguageModel(12, embed_size=6, rnn_size=9)
    a, b = random_prefix_lm(lm, 20, seed=3), random_prefix_lm(lm, 20, seed=3)
    assert a.hparams.vocab_size == 20 and a.hparams.rnn_size == 9
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    assert not torch.equal(
        a.prefix.rnn.weight_hh_l0, random_prefix_lm(lm, 20, 4).prefix.rnn.weight_hh_l0
    )


def test_an_lm_sharing_no_word_with_the_captions_is_skipped_with_the_reason(dataset):
    lm_vocab = Vocabulary(["senate", "budget", "minister"])
    lm = LanguageModel(len(lm_vocab), embed_size=4, rnn_size=4)
    vocab = Vocabulary.build(dataset.sentences("train"))
    features = {"train": np.random.default_rng(0).normal(size=(len(dataset.splits["train"]), 8))}
    with pytest.raises(ValueError, match="shares no word with the shapes training captions"):
        transferability_scores(lm, lm_vocab, dataset, features, vocab, SCORING, 20)
    result = scores_or_reason(lm, lm_vocab, dataset, features, vocab, SCORING, 20)
    assert list(result) == [transferability_key("skipped")]
    assert "shares no word" in result[transferability_key("skipped")]


def test_a_job_scores_its_lm_and_switching_the_scores_on_reruns_nothing(make_cfg):
    plain = run(make_cfg(["transfer=init"], job="plain"))
    assert transferability_key("logme") not in plain
    assert plain[lm_key("in_domain")] is True
    scored = run(make_cfg(["transfer=init", "transferability.enabled=true", *FAST], job="s"))
    assert scored[CONFIG_HASH] == plain[CONFIG_HASH]  # not part of the job's identity
    for name in ("logme", "logme_text", "hscore", "leep", "logme_random", "logme_sd"):
        assert np.isfinite(scored[transferability_key(name)]), name
    assert scored[transferability_key("positions")] >= 120
    assert scored[transferability_key("samples")] == 2
    # the generator is the same with and without the scores (they use no random state)
    assert scored["capgen/test_CIDEr"] == plain["capgen/test_CIDEr"]
    none = run(make_cfg(["transfer=none", "transferability.enabled=true", *FAST], job="none"))
    assert transferability_key("logme") not in none  # no LM, nothing to score


def _hydra_job(make_cfg, overrides, job):
    """A job run as Hydra runs it: its composed config saved in .hydra/config.yaml."""
    cfg = make_cfg(overrides, job=job)
    results = run(cfg)
    saved = OmegaConf.to_container(cfg, resolve=False)
    saved.pop("hydra")
    (Path(cfg.paths.output_dir) / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.create(saved), f"{cfg.paths.output_dir}/.hydra/config.yaml")
    return cfg, results


def test_the_command_scores_a_sweeps_lms_into_their_results(make_cfg, tmp_path, capsys):
    first, _ = _hydra_job(make_cfg, ["transfer=init"], "sweep/init")
    _hydra_job(make_cfg, ["transfer=frozen"], "sweep/frozen")  # the same LM
    _hydra_job(make_cfg, ["transfer=init", "corpus.size_exponent=-1"], "sweep/small")
    _hydra_job(make_cfg, ["transfer=none"], "sweep/none")
    args = [str(tmp_path / "sweep"), *FAST, f"paths.data_dir={first.paths.data_dir}"]
    assert cli.main(args) == 0
    csv = (tmp_path / "sweep" / cli.CSV).read_text().splitlines()
    assert len(csv) == 3  # header + 2 distinct LMs (init and frozen share one)
    init = read_json(tmp_path / "sweep/init/results.json")
    frozen = read_json(tmp_path / "sweep/frozen/results.json")
    assert init[transferability_key("logme")] == frozen[transferability_key("logme")]
    assert np.isfinite(init[transferability_key("hscore")])
    assert transferability_key("logme") not in read_json(tmp_path / "sweep/none/results.json")
    out = capsys.readouterr().out
    assert "scores of 2 LMs" in out and "logme" in out


def test_the_command_says_what_is_wrong(tmp_path, capsys):
    assert cli.main([str(tmp_path / "nowhere")]) == 2
    assert "no such directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main([str(tmp_path / "empty")]) == 2
    assert "no complete job that used a language model" in capsys.readouterr().err
    assert cli.main([]) == 2
    assert "give one sweep folder or --cache" in capsys.readouterr().err


def test_the_command_scores_the_lm_cache_for_a_dataset(make_cfg, tmp_path, capsys):
    cfg = make_cfg(["transfer=init"])
    run(cfg)
    tiny = [o for o in TINY if not o.startswith(("model.", "logger"))]
    args = ["--cache", *tiny, *FAST, f"paths.data_dir={cfg.paths.data_dir}"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "scores of 1 LMs" in out
    written = list((tmp_path / "data/cache/transferability").glob("shapes-*.csv"))
    assert len(written) == 1 and "logme" in written[0].read_text().splitlines()[0]


def test_bad_scoring_settings_fail_before_any_work(make_cfg):
    cfg = make_cfg(["transferability.positions=0", "transferability.enabled=yes",
                    "+transferability.sample=3"])  # fmt: skip
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    message = str(err.value)
    assert "transferability.positions: is 0; must be an integer >= 1" in message
    assert "transferability.enabled: is 'yes'; must be true or false" in message
    assert "transferability.sample" in message and "did you mean 'samples'" in message


def test_image_pca_with_fewer_images_than_features_finds_the_same_components():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 300)) * np.linspace(4, 0.1, 300)  # a spatial grid's many values
    wide = ImagePCA(x, 5)(x)
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(x.T, bias=True)))[::-1][:5]
    np.testing.assert_allclose(wide.var(0), eigenvalues / eigenvalues.mean(), rtol=1e-6)
    tall = ImagePCA(x[:, :30], 5)(x[:, :30])  # the other path: more images than features
    top = np.sort(np.linalg.eigvalsh(np.cov(x[:, :30].T, bias=True)))[::-1][:5]
    np.testing.assert_allclose(tall.var(0), top / top.mean(), rtol=1e-6)
