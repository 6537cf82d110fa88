"""Issue #38: every file caplm reads back is the one it meant. One test (or a few) per fault:

1. valid files of another entry (an LM's ``lm.pt``, a swapped ``vocab.json``, features of
   another encoder, another fit's ``best.ckpt``) are named, moved aside and rebuilt;
2. a fit resumed in a moved folder keeps its best score (and ends as an uninterrupted one);
3. checkpoints are written beside their final name and renamed, on another file system too;
4. ``corpus.size_exponent`` out of range fails before the images are encoded, with the range;
5. a damaged entry in a read-only cache is reported with the reason it is damaged;
6. a ``results.json`` of another job is moved aside, the job's checkpoints kept;
7. temporary files of a killed writer are removed when the entry is next built.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from caplm.data.datamodules import TextDataModule
from caplm.data.features import encode_dataset
from caplm.data.text import Vocabulary
from caplm.data.types import Corpus
from caplm.io import stable_hash, write_json
from caplm.models.common import constructor_args
from caplm.models.language_model import LanguageModel
from caplm.results import COMPLETE, CONFIG_HASH, STATUS
from caplm.runtime.jobs import JOB_FILE, Job
from caplm.runtime.lm_cache import MODEL_FILE, VOCAB_FILE, get_or_train, lm_identity
from caplm.runtime.training import DONE, fit, make_trainer
from tests.data.test_features import _dataset, _MeanEncoder
from tests.runtime.test_cache_faults import same_weights
from tests.runtime.test_lm_cache import SENTENCES, corpus, lm_and_trainer
from tests.runtime.test_training import lm_fit


def _entries(tmp_path, make_cfg, seeds=(1, 2)):
    lm, trainer = lm_and_trainer(make_cfg)
    vocab = Vocabulary.build(SENTENCES)
    return [get_or_train(lm, corpus(), vocab, s, tmp_path, trainer) for s in seeds], (lm, vocab)


# -- 1. valid files of another entry --------------------------------------------------------


def test_an_lm_file_copied_from_another_entry_is_named_moved_aside_and_trained_again(
    make_cfg, tmp_path, caplog
):
    (seed1, seed2), (lm, vocab) = _entries(tmp_path, make_cfg)
    shutil.copy(seed2.path / MODEL_FILE, seed1.path / MODEL_FILE)
    with caplog.at_level(logging.WARNING):
        again = get_or_train(lm, corpus(), vocab, 1, tmp_path, lm_and_trainer(make_cfg)[1])
    assert again.trained_here and same_weights(seed1.model, again.model)
    assert not same_weights(seed2.model, again.model)
    assert f"{seed1.path / MODEL_FILE} is not the file written there" in caplog.text
    (aside,) = tmp_path.glob(f"{seed1.key}.bad-*")
    assert (aside / MODEL_FILE).read_bytes() == (seed2.path / MODEL_FILE).read_bytes()


def test_a_vocabulary_with_two_words_swapped_is_not_used(make_cfg, tmp_path, caplog):
    (entry,), (lm, vocab) = _entries(tmp_path, make_cfg, seeds=(1,))
    words = json.loads((entry.path / VOCAB_FILE).read_text())
    i, j = len(words) - 2, len(words) - 1
    words[i], words[j] = words[j], words[i]
    (entry.path / VOCAB_FILE).write_text(json.dumps(words, indent=0) + "\n")  # same size
    with caplog.at_level(logging.WARNING):
        again = get_or_train(lm, corpus(), vocab, 1, tmp_path, lm_and_trainer(make_cfg)[1])
    assert again.trained_here and again.vocab == vocab
    assert f"{entry.path / VOCAB_FILE} is not the file written there" in caplog.text


class _ScaledEncoder(_MeanEncoder):
    """The stand-in encoder with another setting: other values for the same images."""

    def identity(self):
        return {"name": "mean", "scale": 2}

    def encode(self, images):
        return 2 * super().encode(images)


def test_features_of_another_encoder_copied_in_are_named_and_encoded_again(tmp_path, caplog):
    ds = _dataset()
    good = encode_dataset(ds, _MeanEncoder(), tmp_path)
    (mine,) = (tmp_path / "features").glob("*.npz")
    encode_dataset(ds, _ScaledEncoder(), tmp_path)
    (other,) = set((tmp_path / "features").glob("*.npz")) - {mine}
    shutil.copy(other, mine)  # same image ids, other values
    with caplog.at_level(logging.WARNING):
        again = encode_dataset(ds, _MeanEncoder(), tmp_path)
    for split in good:
        np.testing.assert_array_equal(again[split], good[split])
    assert f"{mine} holds the features {other.stem}" in caplog.text
    assert "'scale': 2" in caplog.text  # what they were made from: the encoder's settings
    assert len(list((tmp_path / "features").glob("*.bad-*"))) == 1


def test_features_with_changed_values_are_named_and_encoded_again(tmp_path, caplog):
    ds = _dataset()
    good = encode_dataset(ds, _MeanEncoder(), tmp_path)
    (cache,) = (tmp_path / "features").glob("*.npz")
    with np.load(cache) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["val"] = arrays["val"] + 1  # finite, same shape: only the digest tells
    with open(cache, "wb") as f:
        np.savez(f, **arrays)
    with caplog.at_level(logging.WARNING):
        again = encode_dataset(ds, _MeanEncoder(), tmp_path)
    np.testing.assert_array_equal(again["val"], good["val"])
    assert f"{cache}: array(s) val are not those written there" in caplog.text


def test_a_best_checkpoint_of_another_fit_is_not_used(make_cfg, tmp_path, caplog):
    cfg = make_cfg()
    clean, _ = lm_fit(cfg, tmp_path / "clean", keep="best")
    other, _ = lm_fit(make_cfg(["lm.fit.max_epochs=1"]), tmp_path / "other", keep="best")
    assert not same_weights(clean, other)
    ckpt_dir = tmp_path / "job"
    lm_fit(cfg, ckpt_dir, keep="best")
    shutil.copy(tmp_path / "other" / "best.ckpt", ckpt_dir / "best.ckpt")  # fit_done.json kept
    with caplog.at_level(logging.WARNING):
        again, _ = lm_fit(cfg, ckpt_dir, keep="best")
    assert same_weights(clean, again)
    named = rf"{re.escape(str(ckpt_dir / 'best.ckpt'))} (is \d+ bytes, \d+ when written|is not the)"
    assert re.search(named, caplog.text) and "moved aside" in caplog.text


def _fit(cfg, ckpt_dir, *callbacks, key=None):
    """A tiny LM fitted (or resumed, or reloaded) in ``ckpt_dir``: (model, record)."""
    vocab = Vocabulary.build(SENTENCES)
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=len(vocab), **constructor_args(LanguageModel, cfg.lm))
    data = TextDataModule(Corpus("toy", SENTENCES, SENTENCES[:3]), vocab, 4, seed=1)
    trainer, history = make_trainer(cfg.trainer, ckpt_dir, cfg.lm.fit, callbacks=callbacks)
    return model, fit(trainer, model, data, ckpt_dir, history, key=key)


def test_a_fit_record_of_another_key_is_not_used(make_cfg, tmp_path, caplog):
    cfg = make_cfg()

    def run(key):
        return _fit(cfg, tmp_path, key=key)[1]

    run("job-a")
    assert json.loads((tmp_path / DONE).read_text())["key"] == "job-a"
    with caplog.at_level(logging.WARNING):
        record = run("job-b")
    assert record["resumed_after"] == [] and record["epochs"] == 2  # fitted again
    assert "is the record of fit 'job-a', not 'job-b'" in caplog.text
    checkpoint = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["caplm_fit_key"] == "job-b"


# -- 2. resume in a moved folder --------------------------------------------------------------


class _Interrupt(Callback):
    """Stops the fit (as a kill would) when epoch ``at`` (0-based) starts."""

    def __init__(self, at: int):
        self.at = at

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.at:
            raise SystemExit("interrupted")


class _BestScore(Callback):
    """The best score the checkpoint callback holds once a resumed fit has restored it."""

    score = "unset"

    def on_train_start(self, trainer, pl_module):
        s = trainer.checkpoint_callback.best_model_score
        self.score = None if s is None else float(s)


def test_a_fit_resumed_in_a_moved_folder_ends_as_an_uninterrupted_one(make_cfg, tmp_path):
    cfg = make_cfg(["lm.fit.max_epochs=4", "lm.fit.patience=3"])
    run = partial(_fit, cfg)
    clean, record = run(tmp_path / "clean")
    with pytest.raises(SystemExit):
        run(tmp_path / "first" / "ckpt", _Interrupt(at=2))
    shutil.copytree(tmp_path / "first", tmp_path / "moved")
    shutil.rmtree(tmp_path / "first")  # the old folder is gone: nothing may point there
    probe = _BestScore()
    moved, resumed = run(tmp_path / "moved" / "ckpt", probe)
    best_of_two = min(r["val/loss"] for r in record["history"][:2])
    assert probe.score == best_of_two  # restored, not dropped
    assert resumed["resumed_after"] == [2] and resumed["checkpoint"] == record["checkpoint"]
    losses = lambda rec: [r["val/loss"] for r in rec["history"]]  # noqa: E731
    assert losses(resumed) == losses(record)
    assert same_weights(clean, moved)


# -- 3. atomic checkpoint writes on another file system ---------------------------------------


@pytest.fixture
def other_fs(tmp_path):
    """A folder on another file system than the system temp folder (where a rename through
    it becomes a copy): /dev/shm when it is one, else a tmpfs mounted here (root only)."""
    system_tmp = os.stat(tempfile.gettempdir()).st_dev
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and os.stat(shm).st_dev != system_tmp:
        folder = Path(tempfile.mkdtemp(dir=shm, prefix="caplm-test-"))
        yield folder
        shutil.rmtree(folder, ignore_errors=True)
        return
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"no other file system here: /dev/shm is not one apart from "
                    f"{tempfile.gettempdir()} and mounting a tmpfs failed ({done.stderr.strip()})")  # fmt: skip
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


_EVENTS: list | None = None  # what the audit hook records while a test listens


def _audit(event, args):
    if _EVENTS is None:
        return
    if event == "open" and args[0] is not None and not isinstance(args[0], int):
        mode, flags = args[1], args[2]
        writes = (mode and any(c in mode for c in "wax+")) or (
            mode is None and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        )
        if writes:
            _EVENTS.append(("write", os.path.abspath(os.fsdecode(args[0]))))
    elif event == "tempfile.mkstemp":
        _EVENTS.append(("write", os.path.abspath(os.fsdecode(args[0]))))
    elif event == "os.rename":
        _EVENTS.append(("rename", os.fsdecode(args[0]), os.fsdecode(args[1])))


sys.addaudithook(_audit)


def test_checkpoints_on_another_file_system_are_renamed_in_place(make_cfg, other_fs):
    global _EVENTS
    ckpt_dir = other_fs / "job" / "checkpoints"
    _EVENTS = []
    try:
        lm_fit(make_cfg(), ckpt_dir, keep="best")
        events = _EVENTS
    finally:
        _EVENTS = None
    finals = {str(ckpt_dir / n) for n in ("last.ckpt", "best.ckpt", DONE)}
    written = [e[1] for e in events if e[0] == "write"]
    renames = [e[1:] for e in events if e[0] == "rename"]
    outside = [p for p in written if not p.startswith(f"{other_fs}/")]
    assert outside == [], "a checkpoint went through a folder elsewhere (copied, not renamed)"
    assert not finals & set(written), "a final name was written to, not renamed into"
    for final in finals:
        sources = [src for src, dst in renames if dst == final]
        assert sources and all(Path(s).parent == ckpt_dir for s in sources), final


# -- 4. data-dependent bounds before any expensive stage ----------------------------------------


def test_a_size_exponent_out_of_range_fails_before_encoding(make_cfg, monkeypatch):
    import caplm.runtime.pipeline
    import caplm.train

    def no_encoding(*args, **kwargs):
        raise AssertionError("the images were encoded before the corpus size was checked")

    monkeypatch.setattr(caplm.runtime.pipeline, "load_features", no_encoding)
    with pytest.raises(ValueError) as err:
        caplm.train.run(make_cfg(["transfer=init", "corpus.size_exponent=-9"]))
    message = str(err.value)
    assert "corpus.size_exponent=-9 gives round(10^-9 x 120 caption training sentences) = 0" in (
        message
    )
    assert "set corpus.size_exponent between -2.38 and 0.001" in message  # 1 to 120 sentences


def test_the_size_exponent_range_is_exact():
    from omegaconf import OmegaConf

    from caplm.data.corpora import check_size

    cfg = lambda e: OmegaConf.create({"name": "c", "size_exponent": e})  # noqa: E731
    assert check_size(cfg(-1.681), 24, 100) == 1  # round(0.5004) = 1
    assert check_size(cfg(0.621), 24, 100) == 100  # round(100.3)
    with pytest.raises(ValueError, match="between -1.681 and 0.621, or null"):
        check_size(cfg(0.622), 24, 100)  # 100.6 -> 101
    with pytest.raises(ValueError, match="between -3.999 and 0.0, or null"):  # not -4.0:
        check_size(cfg(-9), 5000, 5000)  # round(10^-4 x 5000) = round(0.5) = 0
    assert check_size(cfg(None), 24, 100) == 100


# -- 5. damage in a read-only cache -------------------------------------------------------------


def test_a_damaged_entry_in_a_read_only_cache_is_reported_with_its_reason(
    make_cfg, tmp_path, monkeypatch
):
    import caplm.io

    (entry,), (lm, vocab) = _entries(tmp_path, make_cfg, seeds=(1,))
    model = entry.path / MODEL_FILE
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    monkeypatch.setattr(caplm.io.os, "access", lambda path, mode: False)  # as a read-only mount
    with pytest.raises(PermissionError) as err:
        get_or_train(lm, corpus(), vocab, 1, tmp_path, lm_and_trainer(make_cfg)[1])
    message = str(err.value)
    assert f"cannot build language model {entry.key} at {entry.path}: " in message
    assert (
        f"{model} is {model.stat().st_size} bytes" in message
        and "(truncated or replaced)" in message
    )
    assert "is not writable" in message


def test_damaged_features_in_a_read_only_cache_are_reported_with_their_reason(
    tmp_path, monkeypatch
):
    import caplm.io

    ds = _dataset()
    encode_dataset(ds, _MeanEncoder(), tmp_path)
    (cache,) = (tmp_path / "features").glob("*.npz")
    cache.write_bytes(cache.read_bytes()[:100])
    monkeypatch.setattr(caplm.io.os, "access", lambda path, mode: False)
    with pytest.raises(PermissionError) as err:
        encode_dataset(ds, _MeanEncoder(), tmp_path)
    assert f"{cache}: unreadable feature cache" in str(err.value)


# -- 6. a results.json of another job -----------------------------------------------------------


def test_a_results_file_of_another_job_is_moved_aside_and_the_checkpoints_kept(make_cfg, caplog):
    job = Job(make_cfg())
    with job.claim():
        pass  # job.json of this job
    checkpoint = job.dir / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"this job's checkpoint")
    other = {CONFIG_HASH: "0123456789abcdef", STATUS: COMPLETE, "x": 1}
    write_json(job.dir / "results.json", other)
    with caplog.at_level(logging.WARNING), Job(make_cfg()).claim() as done:
        assert done is None  # it runs
    (aside,) = job.dir.glob("results.json.bad-*")
    assert json.loads(aside.read_text()) == other
    assert not (job.dir / "results.json").exists()
    assert checkpoint.read_bytes() == b"this job's checkpoint"
    assert json.loads((job.dir / JOB_FILE).read_text())[CONFIG_HASH] == job.key
    assert "config hash 0123456789abcdef vs" in caplog.text and "moved aside" in caplog.text


# -- 7. temporaries of killed writers -----------------------------------------------------------


def test_temporaries_of_a_killed_lm_writer_are_removed_when_the_entry_is_built(make_cfg, tmp_path):
    lm, trainer = lm_and_trainer(make_cfg)
    vocab = Vocabulary.build(SENTENCES)
    path = tmp_path / stable_hash(lm_identity(lm, corpus(), vocab, 1))
    (path / "checkpoints").mkdir(parents=True)
    stale = [path / f".{MODEL_FILE}.k1ll3d.tmp", path / "checkpoints" / ".last.ckpt.x9.tmp"]
    for tmp in stale:
        tmp.write_bytes(b"half a file")
    entry = get_or_train(lm, corpus(), vocab, 1, tmp_path, trainer)
    assert entry.path == path and entry.trained_here
    assert [t for t in stale if t.exists()] == []


def test_temporaries_of_a_killed_job_and_encoding_are_removed(make_cfg, tmp_path):
    job = Job(make_cfg())
    pictures = job.dir / "test_pictures"
    pictures.mkdir(parents=True)
    stale = [pictures / ".train0.png.a1b2.tmp", job.dir / ".results.json.c3d4.tmp"]
    for tmp in stale:
        tmp.write_bytes(b"x")
    keep = pictures / "train0.png"
    keep.write_bytes(b"a picture")
    with job.claim():
        pass
    assert [t for t in stale if t.exists()] == [] and keep.exists()

    ds = _dataset()
    encode_dataset(ds, _MeanEncoder(), tmp_path / "cache")
    (cache,) = (tmp_path / "cache" / "features").glob("*.npz")
    other_entry = cache.parent / ".another.npz.e5f6.tmp"  # another entry's writer: not ours
    stale = cache.parent / f".{cache.name}.e5f6.tmp"
    for tmp in (stale, other_entry):
        tmp.write_bytes(b"x")
    cache.unlink()
    encode_dataset(ds, _MeanEncoder(), tmp_path / "cache")
    assert not stale.exists() and other_entry.exists()
