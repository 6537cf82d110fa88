"""Cached files that were truncated, emptied or replaced: each is reported by path, moved
aside (never deleted) and rebuilt, and the rebuilt result is the one a clean run gives."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from caplm.data.text import Vocabulary
from caplm.runtime.lm_cache import INFO_FILE, MODEL_FILE, VOCAB_FILE, get_or_train
from caplm.runtime.training import DONE
from tests.runtime.test_lm_cache import SENTENCES, corpus, lm_and_trainer
from tests.runtime.test_training import lm_fit

DAMAGE = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: max(1, p.stat().st_size // 2)]),
    "emptied": lambda p: p.write_bytes(b""),
    "garbage": lambda p: p.write_bytes(b"\x00\xffnot what it claims to be"),
}


def same_weights(a, b) -> bool:
    return all(torch.equal(x, b.state_dict()[k]) for k, x in a.state_dict().items())


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("name", [MODEL_FILE, VOCAB_FILE, INFO_FILE])
def test_a_damaged_lm_cache_entry_is_moved_aside_and_trained_again(
    make_cfg, tmp_path, caplog, name, damage
):
    lm, trainer = lm_and_trainer(make_cfg)
    vocab = Vocabulary.build(SENTENCES)
    first = get_or_train(lm, corpus(), vocab, 1, tmp_path, trainer)
    DAMAGE[damage](first.path / name)

    again = get_or_train(lm, corpus(), vocab, 1, tmp_path, trainer)
    assert again.trained_here and again.key == first.key
    assert same_weights(first.model, again.model)  # rebuilt: what a clean run gives
    (aside,) = tmp_path.glob(f"{first.key}.bad-*")
    assert (aside / name).is_file()  # kept, not deleted
    assert str(first.path) in caplog.text and "moved aside" in caplog.text


def test_an_entry_holding_another_keys_files_is_not_used(make_cfg, tmp_path, caplog):
    lm, trainer = lm_and_trainer(make_cfg)
    vocab = Vocabulary.build(SENTENCES)
    a = get_or_train(lm, corpus(), vocab, 1, tmp_path, trainer)
    b = get_or_train(lm, corpus(), vocab, 2, tmp_path, trainer)
    (b.path / INFO_FILE).write_bytes((a.path / INFO_FILE).read_bytes())  # a mixed-up copy

    again = get_or_train(lm, corpus(), vocab, 2, tmp_path, trainer)
    assert again.trained_here and same_weights(b.model, again.model)
    assert f"is the entry of LM '{a.key}', not of '{b.key}'" in caplog.text


@pytest.mark.parametrize("name", ["last.ckpt", "best.ckpt", DONE])
@pytest.mark.parametrize("damage", ["truncated", "emptied"])
def test_a_damaged_checkpoint_restarts_the_fit_with_the_same_result(
    make_cfg, tmp_path, caplog, name, damage
):
    cfg = make_cfg()
    clean, record = lm_fit(cfg, tmp_path / "clean", keep="best")
    ckpt_dir = tmp_path / "damaged"
    lm_fit(cfg, ckpt_dir, keep="best")
    if name == "last.ckpt":  # as if killed mid-fit: no record of a finished fit
        (ckpt_dir / DONE).unlink()
    DAMAGE[damage](ckpt_dir / name)

    again, second = lm_fit(cfg, ckpt_dir, keep="best")
    assert same_weights(clean, again)
    assert second["epochs"] == record["epochs"] and second["resumed_after"] == []
    assert "moved aside" in caplog.text and "from scratch" in caplog.text
    assert list(Path(tmp_path).rglob("*.bad-*"))


def test_a_complete_lm_cache_is_used_without_writing_or_locking(make_cfg, tmp_path, monkeypatch):
    from caplm.runtime import lm_cache

    lm, trainer = lm_and_trainer(make_cfg)
    vocab = Vocabulary.build(SENTENCES)
    first = get_or_train(lm, corpus(), vocab, 1, tmp_path, trainer)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}

    def no_building(*args):
        raise AssertionError("a complete entry must be used without building or locking")

    monkeypatch.setattr(lm_cache, "build_lock", no_building)
    again = get_or_train(lm, corpus(), vocab, 1, tmp_path, trainer)  # as on a read-only cache
    assert not again.trained_here and same_weights(first.model, again.model)
    assert before == {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}


def test_what_cannot_be_built_where_is_said(tmp_path, monkeypatch):
    from caplm.io import build_lock

    def read_only(self, *args, **kwargs):
        raise OSError(30, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(PermissionError) as err:
        build_lock(tmp_path / "lm" / "abc", "language model abc")
    message = str(err.value)
    assert message.startswith(f"cannot build language model abc at {tmp_path}/lm/abc: ")
    assert "Read-only file system" in message and "CAPLM_DATA_DIR" in message
