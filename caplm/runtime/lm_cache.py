"""The shared language-model cache: each LM is trained once and reused by every job.

An LM is identified by a hash of what determines it: its config (architecture, optimiser,
epochs, early stopping; ``arch`` only when it is not ``rnn``, so RNN LMs keep the keys they
had before Transformers came, and ``fit.robust`` only when it perturbs anything), the exact text it trains and validates on (which fixes the
corpus, its size exponent and the run's shuffle), its vocabulary, the seed, and the numeric
precision it was trained in (only when it is not float32, so float32 LMs keep their keys: a
bf16 LM is never reused by a float32 job, nor the other way round). Jobs of a
sweep, or of later sweeps, that need the same LM find it under ``<lm_cache_dir>/<key>/``. A
file lock makes concurrent jobs (other processes, other GPUs, other nodes on a shared file
system) wait while one of them trains it; an interrupted training resumes from its last
checkpoint.

Layout of an entry: ``lm.pt`` (hyper-parameters + weights), ``vocab.json``, ``info.json``
(written last: its presence marks the entry complete; it is the entry's manifest: its key and
the size and SHA-256 of ``lm.pt`` and ``vocab.json``), ``checkpoints/`` (Lightning's). An
entry whose manifest names another key, or whose files are not those it records (damaged,
or copied from another entry), is named in a warning, moved aside and trained again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import Timeout

from caplm.data.datamodules import TextDataModule
from caplm.data.text import Vocabulary
from caplm.data.types import Corpus
from caplm.io import (
    UNREADABLE,
    Mismatch,
    atomic_write,
    build_lock,
    check_files,
    file_record,
    move_aside,
    read_json,
    remove_stale_temporaries,
    stable_hash,
    to_dict,
    write_json,
)
from caplm.models import robust
from caplm.models.common import constructor_args
from caplm.models.language_model import LanguageModel
from caplm.runtime.training import fit

log = logging.getLogger(__name__)

CACHE_VERSION = 1
MODEL_FILE, VOCAB_FILE, INFO_FILE = "lm.pt", "vocab.json", "info.json"


@dataclass
class CachedLM:
    key: str
    path: Path
    model: LanguageModel
    vocab: Vocabulary
    info: dict
    trained_here: bool  # this job trained it (False: reused from the cache)


#: Lightning's short precision names, as the long ones they stand for.
PRECISION_ALIASES = {"32": "32-true", "64": "64-true", "16": "16-mixed", "bf16": "bf16-mixed"}


def lm_identity(
    lm_cfg, corpus: Corpus, vocab: Vocabulary, seed: int, precision: str | int = "32-true"
) -> dict:
    """Everything that determines a trained LM (and nothing that does not, like devices).

    ``precision`` is the Lightning precision the LM trains in (resolved: ``bf16-mixed``, not
    ``bf16-where-supported``); float32 adds nothing, so float32 entries keep their keys."""
    cfg = to_dict(lm_cfg)
    cfg.pop("name", None)  # a preset's name is a label; its values are what count
    if cfg.get("arch", "rnn") == "rnn":  # RNN LMs keep the keys they had before `arch` existed
        cfg.pop("arch", None)
    robust.drop_off(cfg, ("fit", "robust"))  # plain LMs keep the keys they had before it existed
    identity = {
        "version": CACHE_VERSION,
        "lm": cfg,
        "corpus": stable_hash({"train": corpus.train, "val": corpus.val}),
        "vocab": stable_hash(vocab.itos),
        "seed": int(seed),
    }
    precision = PRECISION_ALIASES.get(str(precision), str(precision))
    if precision != "32-true":
        identity["precision"] = precision
    return identity


def get_or_train(
    lm_cfg,
    corpus: Corpus,
    vocab: Vocabulary,
    seed: int,
    cache_dir: str | Path,
    make_trainer: Callable,
    poll_s: float = 10.0,
    precision: str | int = "32-true",
) -> CachedLM:
    """The LM for this corpus/config/seed/precision: from the cache, or trained now and stored.

    ``make_trainer(ckpt_dir, fit_cfg)`` returns ``(trainer, history)`` (see
    :func:`caplm.runtime.training.make_trainer`); ``precision`` is the one it trains in.
    """
    identity = lm_identity(lm_cfg, corpus, vocab, seed, precision)
    key = stable_hash(identity)
    path = Path(cache_dir) / key
    cached, damage = _cached(key, path)  # complete: no lock needed, so read-only caches work
    if cached is not None:
        return cached
    lock = build_lock(path, f"language model {key}", damaged=damage)
    waited = False
    while True:
        try:
            lock.acquire(timeout=poll_s)
            break
        except Timeout:
            if not waited:
                log.info("LM %s is being trained by another job; waiting for it", key)
            waited = True
    try:
        cached, _ = _cached(key, path, move_bad=True)  # another job may have trained it meanwhile
        if cached is not None:
            return cached
        remove_stale_temporaries(path)  # no live writer: we hold the lock
        return _train(key, path, identity, lm_cfg, corpus, vocab, seed, make_trainer)
    finally:
        lock.release()


def load_entry(path: str | Path) -> CachedLM:
    """The complete entry in an LM's cache folder (``<lm_cache_dir>/<key>``), read-only."""
    path = Path(path)
    if not (path / INFO_FILE).is_file():
        raise FileNotFoundError(
            f"{path}: not a complete LM cache entry (no {INFO_FILE}): the LM is missing or was "
            "never finished; run the job that trains it again"
        )
    return _load(path.name, path, trained_here=False)


def entries(cache_dir: str | Path) -> list[Path]:
    """The folders of the complete entries of an LM cache, in key order."""
    return sorted(p.parent for p in Path(cache_dir).glob(f"*/{INFO_FILE}"))


def _cached(key: str, path: Path, move_bad: bool = False) -> tuple[CachedLM | None, str | None]:
    """The complete entry at ``path`` (or None) and why a bad one cannot be used (truncated,
    emptied, another key's files). A bad one is moved aside when ``move_bad`` (under the
    lock: it is then trained again)."""
    if not (path / INFO_FILE).is_file():
        return None, None
    try:
        cached = _load(key, path, trained_here=False)
    except UNREADABLE as err:
        if move_bad:
            move_aside(path, f"{err}; the LM is trained again")
        return None, str(err)
    log.info("LM %s found in the cache (%s)", key, path)
    return cached, None


def _train(key, path: Path, identity, lm_cfg, corpus, vocab, seed, make_trainer) -> CachedLM:
    import lightning as L

    log.info("training LM %s on %d sentences (%s)", key, len(corpus.train), corpus.name)
    L.seed_everything(seed, workers=True)
    model = LanguageModel(vocab_size=len(vocab), **constructor_args(LanguageModel, lm_cfg))
    if not robust.is_off(lm_cfg.fit.get("robust")):
        model.robust = robust.RobustTraining(lm_cfg.fit.robust)
    record = {
        "checkpoint": None,
        "epochs": 0,
        "train_time_s": 0.0,
        "history": [],
        "resumed_after": [],
    }
    fit_cfg = lm_cfg.fit
    limit = model.prefix.max_positions
    if limit is not None and fit_cfg.max_len + 1 > limit:
        raise ValueError(
            f"lm.fit.max_len={fit_cfg.max_len} cuts sentences to {fit_cfg.max_len} words, "
            f"{fit_cfg.max_len + 1} positions with <bos>, but lm.max_positions={limit}; raise "
            "lm.max_positions or lower lm.fit.max_len"
        )
    if fit_cfg.max_epochs > 0:
        data = TextDataModule(
            corpus, vocab, batch_size=fit_cfg.batch_size, max_len=fit_cfg.max_len, seed=seed
        )
        ckpt_dir = path / "checkpoints"
        trainer, history = make_trainer(ckpt_dir, fit_cfg)
        start = time.perf_counter()
        record = fit(
            trainer,
            model,
            data,
            ckpt_dir,
            history,
            keep="best" if fit_cfg.early_stopping else "last",
            key=key,
        )
        log.info(
            "LM %s trained: %d epochs, %.1f s of training steps in all (this attempt %.1f s%s)",
            key,
            record["epochs"],
            record["train_time_s"],
            time.perf_counter() - start,
            f"; resumed after epochs {record['resumed_after']}" if record["resumed_after"] else "",
        )
    atomic_write(
        path / MODEL_FILE,
        lambda p: torch.save({"hparams": dict(model.hparams), "state_dict": model.state_dict()}, p),
    )
    vocab.save(path / VOCAB_FILE)
    info = {
        "key": key,
        "files": {name: file_record(path / name) for name in (MODEL_FILE, VOCAB_FILE)},
        "identity": identity,
        "corpus_name": corpus.name,
        "corpus_size": len(corpus.train),
        "val_sentences": len(corpus.val),
        "vocab_size": len(vocab),
        "params": sum(p.numel() for p in model.parameters()),
        **{k: record[k] for k in ("epochs", "train_time_s", "history", "resumed_after")},
    }
    write_json(path / INFO_FILE, info)  # last: marks the entry complete
    return _load(key, path, trained_here=True)


def _load(key: str, path: Path, trained_here: bool) -> CachedLM:
    """The entry at ``path``; raises one of ``UNREADABLE`` when any of its files is bad."""
    info = read_json(path / INFO_FILE)
    if not isinstance(info, dict) or info.get("key") != key:
        found = info.get("key") if isinstance(info, dict) else info
        raise Mismatch(f"{path / INFO_FILE} is the entry of LM {found!r}, not of {key!r}")
    if "files" in info:  # entries written before manifests recorded files have none
        check_files(path, info["files"])
    saved = torch.load(path / MODEL_FILE, map_location="cpu", weights_only=False)
    model = LanguageModel(**saved["hparams"])
    model.load_state_dict(saved["state_dict"])
    model.eval()
    return CachedLM(
        key,
        path,
        model,
        Vocabulary.load(path / VOCAB_FILE),
        info,
        trained_here,
    )
