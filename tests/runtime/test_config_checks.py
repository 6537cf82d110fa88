"""check_config: a misspelled key or a bad value fails before a job does any work, naming
the key, the group's file and what is allowed."""

from pathlib import Path

import pytest
from omegaconf import open_dict

from caplm.runtime.config import ConfigError, check_config
from caplm.train import run


def _problems(cfg) -> str:
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    return str(err.value)


def test_the_default_and_tiny_configs_pass(make_cfg):
    check_config(make_cfg())
    check_config(make_cfg(["transfer=init", "corpus=shapes_extra", "lm=large"]))


def test_a_misspelled_key_names_the_file_and_the_near_miss(make_cfg):
    msg = _problems(make_cfg(["+model.post_image_sise=64"]))
    assert "model.post_image_sise: unknown setting (in conf/model/merge.yaml)" in msg
    assert "did you mean 'post_image_size'?" in msg


@pytest.mark.parametrize(
    "override, expected",
    [
        ("+generation.beam_widht=2", "generation.beam_widht: unknown setting (in conf/generation/study.yaml)"),
        ("+lm.fit.max_epoch=3", "lm.fit.max_epoch: unknown setting"),
        ("+eval.metor=false", "did you mean 'meteor'?"),
        ("+transfer.vocab=caption", "transfer.vocab: unknown setting (in conf/transfer/frozen.yaml)"),
        ("+data.batch_size=8", "data.batch_size: unknown setting (in conf/data/shapes.yaml)"),
        ("+data.encoder.pool=2", "data.encoder.pool: unknown setting (in conf/data/encoder/small_cnn.yaml)"),
        ("+trainer.max_epochs=3", "trainer.max_epochs: unknown setting"),
        ("+corpus.train_file=x.txt", "corpus.train_file: unknown setting (in conf/corpus/captions.yaml)"),
        ("+sed=3", "sed: unknown setting (in conf/train.yaml); did you mean 'seed'?"),
    ],
)  # fmt: skip
def test_unknown_keys_of_every_group(make_cfg, override, expected):
    assert expected in _problems(make_cfg([override]))


@pytest.mark.parametrize(
    "override, expected",
    [
        ("eval.spice=of", "eval.spice: is 'of'; must be one of auto, on, off"),
        ("eval.lm_samples=-1", "eval.lm_samples: is -1; must be an integer >= 0"),
        ("model.merge=mul", "unknown merge 'mul'"),
        ("lm.rnn_type=rnn", "rnn_type must be one of"),
        ("model.embed_dropout=1.5", "embed_dropout must be in [0, 1)"),
        ("generation.min_len=30", "need 0 <= min_len <= max_len"),
        ("generation.beam_width=0", "beam_width must be a positive integer"),
        ("generation.no_repeat_ngram=-1", "generation: no_repeat_ngram must be an integer >= 0"),
        ("data.normaliser=nltk", "data.normaliser: is 'nltk'; known normalisers: study,"),
        ("corpus.max_size_exponent=x", "corpus.max_size_exponent: is 'x'; must be a number"),
        ("lm.fit.max_epochs=-1", "lm.fit.max_epochs: is -1; must be an integer >= 0"),
        ("model.fit.patience=-2", "model.fit.patience: is -2"),
        (
            "+model.fit.monitor=val/bleu",
            "model.fit.monitor: is 'val/bleu'; must be one of val/loss",
        ),
        ("+lm.fit.monitor=val/BLEU-4", "lm.fit.monitor: is 'val/BLEU-4'; must be val/loss"),
        ("transfer.mode=frozn", "transfer.mode='frozn' is unknown"),
        ("transfer.parts=[embedding,rnnn]", "transfer.parts has ['rnnn']"),
        ("transfer.vocab_policy=both", "transfer.vocab_policy='both' is unknown"),
        ("corpus.size_exponent=big", "corpus.size_exponent: is 'big'"),
        ("data.min_word_freq=0", "data.min_word_freq: is 0; must be an integer >= 1"),
        ("threads=0", "threads: is 0; must be null or an integer >= 1"),
    ],
)
def test_bad_values_are_found_with_what_is_allowed(make_cfg, override, expected):
    assert expected in _problems(make_cfg([override]))


def test_every_problem_is_listed_at_once(make_cfg):
    msg = _problems(make_cfg(["eval.spice=of", "+model.lrr=1", "transfer.mode=x"]))
    assert msg.startswith("3 problem(s) in the config:")


def test_a_job_with_a_bad_value_fails_before_any_work(make_cfg):
    cfg = make_cfg(["eval.spice=of"])
    with pytest.raises(ConfigError, match="eval.spice"):
        run(cfg)
    assert not Path(cfg.paths.cache_dir).exists()  # no data generated, nothing cached


def test_checking_does_not_move_the_random_state(make_cfg):
    import torch

    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    check_config(make_cfg(["lm=large"]))
    assert torch.equal(torch.rand(3), expected)


def test_a_bad_empty_captions_policy_of_a_file_dataset_is_found(make_cfg):
    cfg = make_cfg()
    with open_dict(cfg):
        cfg.data.format = "karpathy_json"
        cfg.data.empty_captions = "warn"
    assert "data.empty_captions: is 'warn'; must be one of skip, error" in _problems(cfg)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("+lm.fit.robust.advesarial=0.1", "lm.fit.robust.advesarial: unknown setting"),
        ("lm.fit.robust.word_dropout=1.0", "lm.fit.robust.word_dropout: word_dropout must be in [0, 1)"),
        ("lm.fit.robust.noise=-1", "lm.fit.robust.noise: noise must be >= 0"),
        ("lm.fit.robust.noise=lots", "lm.fit.robust.noise: is 'lots'; must be a number"),
        ("+model.fit.robust.noise=0.1", "model.fit.robust: robust training is the language model's"),
        ("eval.lm_perturbed.adversarial=-0.1", "eval.lm_perturbed.adversarial: adversarial must be >= 0"),
    ],
)  # fmt: skip
def test_bad_robustness_settings_are_named(make_cfg, override, expected):
    assert expected in _problems(make_cfg([override]))
