"""caplm.runtime.lm_cache: each LM is trained once, keyed by what determines it, and reused."""

from __future__ import annotations

import torch
from omegaconf import open_dict

from caplm.data.text import Vocabulary
from caplm.data.types import Corpus
from caplm.runtime.lm_cache import INFO_FILE, MODEL_FILE, VOCAB_FILE, get_or_train, lm_identity
from caplm.runtime.training import make_trainer

SENTENCES = [s.split() for s in ["a red circle", "a blue square", "two red squares", "a circle"]]


def corpus(n: int = 12) -> Corpus:
    return Corpus("toy", train=(SENTENCES * n)[:n], val=SENTENCES[:2])


def lm_and_trainer(make_cfg, overrides=()):
    cfg = make_cfg(list(overrides))
    return cfg.lm, lambda ckpt_dir, fit_cfg: make_trainer(cfg.trainer, ckpt_dir, fit_cfg)


def test_identity_changes_with_everything_that_determines_the_lm(make_cfg):
    lm, _ = lm_and_trainer(make_cfg)
    vocab = Vocabulary.build(SENTENCES)
    base = lm_identity(lm, corpus(), vocab, seed=1)
    assert lm_identity(lm, corpus(), vocab, seed=2) != base
    assert lm_identity(lm, corpus(13), vocab, seed=1) != base
    assert lm_identity(lm, corpus(), Vocabulary.build(SENTENCES[:2]), seed=1) != base
    other, _ = lm_and_trainer(make_cfg, ["lm.fit.max_epochs=1"])
    assert lm_identity(other, corpus(), vocab, seed=1) != base
    renamed = lm.copy()
    with open_dict(renamed):
        renamed.name = "another_label"
    assert lm_identity(renamed, corpus(), vocab, seed=1) == base  # a preset's name is a label


def test_an_lm_is_trained_once_then_loaded_with_the_same_weights(make_cfg, tmp_path):
    lm, trainer = lm_and_trainer(make_cfg)
    vocab = Vocabulary.build(SENTENCES)
    first = get_or_train(lm, corpus(), vocab, 1, tmp_path / "lm", trainer)
    assert first.trained_here and first.info["epochs"] == 2
    assert {p.name for p in first.path.iterdir()} >= {MODEL_FILE, VOCAB_FILE, INFO_FILE}

    def never(*args):
        raise AssertionError("a cached LM must not be trained again")

    second = get_or_train(lm, corpus(), vocab, 1, tmp_path / "lm", never)
    assert not second.trained_here and second.key == first.key
    assert second.vocab == vocab and second.info == first.info
    for (name, a), (_, b) in zip(
        first.model.state_dict().items(), second.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_zero_epochs_stores_the_untrained_initialisation(make_cfg, tmp_path):
    lm, trainer = lm_and_trainer(make_cfg, ["lm.fit.max_epochs=0"])
    cached = get_or_train(lm, corpus(), Vocabulary.build(SENTENCES), 1, tmp_path, trainer)
    assert cached.info["epochs"] == 0 and cached.info["history"] == []
    assert not (cached.path / "checkpoints").exists()


def test_the_key_counts_the_precision_and_keeps_float32_keys(make_cfg, tmp_path):
    import pytest

    from caplm.io import stable_hash

    lm, trainer = lm_and_trainer(make_cfg)
    vocab = Vocabulary.build(SENTENCES)
    base = lm_identity(lm, corpus(), vocab, seed=1)
    # float32 (however Lightning spells it) adds nothing: existing entries keep their keys
    assert set(base) == {"version", "lm", "corpus", "vocab", "seed"}
    for fp32 in ("32-true", "32", 32):
        assert lm_identity(lm, corpus(), vocab, seed=1, precision=fp32) == base
    keys = {
        p: stable_hash(lm_identity(lm, corpus(), vocab, seed=1, precision=p))
        for p in ("bf16-mixed", "bf16", "16-mixed", "64-true")
    }
    assert keys["bf16"] == keys["bf16-mixed"]
    assert len({stable_hash(base), keys["bf16-mixed"], keys["16-mixed"], keys["64-true"]}) == 4

    first = get_or_train(lm, corpus(), vocab, 1, tmp_path, trainer)

    def never(*args):
        raise AssertionError("trained again")

    assert get_or_train(lm, corpus(), vocab, 1, tmp_path, never).key == first.key
    with pytest.raises(AssertionError, match="trained again"):  # a bf16 job does not reuse it
        get_or_train(lm, corpus(), vocab, 1, tmp_path, never, precision="bf16-mixed")


#: Cache keys of the toy LM (corpus below, seed 1) made before lm.fit.robust existed: a plain
#: LM's key must stay what it was, or every cache in use would be trained again.
KEYS_BEFORE_ROBUST = {"small": "2f33e684d63c7c5d", "transformer_small": "70a7f26fb60bac39",
                      "medium": "967c12fda9db0b9c"}  # fmt: skip


def test_robust_settings_change_the_key_each_alone_and_off_keeps_the_old_one(make_cfg):
    from caplm.io import stable_hash
    from caplm.models.robust import KINDS

    toy, vocab = Corpus("toy", SENTENCES * 3, SENTENCES[:2]), Vocabulary.build(SENTENCES)
    for preset, key in KEYS_BEFORE_ROBUST.items():
        lm, _ = lm_and_trainer(make_cfg, [f"lm={preset}"])
        assert lm.fit.robust.adversarial == 0.0
        assert stable_hash(lm_identity(lm, toy, vocab, seed=1)) == key
    base = lm_identity(lm_and_trainer(make_cfg)[0], toy, vocab, seed=1)
    keys = set()
    for kind in KINDS:
        for strength in (0.1, 0.2):
            lm, _ = lm_and_trainer(make_cfg, [f"lm.fit.robust.{kind}={strength}"])
            identity = lm_identity(lm, toy, vocab, seed=1)
            keys.add(stable_hash(identity))
            # the robust node is the only difference
            assert identity["lm"]["fit"].pop("robust") == {**dict.fromkeys(KINDS, 0.0),
                                                           kind: strength}  # fmt: skip
            assert identity == base
    assert len(keys) == 6
