"""Language-model corpora and the study's corpus-size control.

A corpus has a *pool* of training sentences and a fixed validation text. The language model
trains on ``round(10^e x n)`` sentences of the pool, where ``n`` is the number of training
captions of the caption dataset and ``e`` the corpus's ``size_exponent``: the pool is shuffled
by the run's seed, then truncated, so corpora of different domains are compared at equal
sizes (Tanti et al., 2019). ``size_exponent: null`` takes the whole pool.

Sources (``corpus.source``):
- ``captions``: the caption dataset's own training captions (never val/test); validated on
  its val captions.
- ``shapes_extra``: captions of extra generated scenes, disjoint from the dataset's images
  (the analogue of MSCOCO captions for a Flickr8k captioner).
- ``textfile``: a plain-text UTF-8 file, one sentence per line (as the 1 Billion Word
  benchmark); validated on ``val_file``, or on a held-out part of the file fixed across runs.
  Lines with no token (blank ones) are dropped, and how many is logged.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from caplm.data.shapes import ShapesConfig, extra_scene_captions
from caplm.data.text import read_utf8, tokenize
from caplm.data.types import CaptionDataset, Corpus

log = logging.getLogger(__name__)

SOURCES = ("captions", "shapes_extra", "textfile")
#: The keys a ``corpus`` config may have: those of every source, then each source's own.
CORPUS_KEYS = ("name", "source", "size_exponent", "min_word_freq", "max_val_sentences")
SOURCE_KEYS = {
    "captions": (),
    "shapes_extra": ("shapes", "num_scenes", "val_scenes"),
    "textfile": ("train_file", "val_file", "val_fraction"),
}


def corpus_size(size_exponent: float | None, num_caption_sentences: int, pool_size: int) -> int:
    """Sentences the LM trains on: round(10^e x caption training sentences), or the pool."""
    if size_exponent is None:
        return pool_size
    return int(round(10.0 ** float(size_exponent) * num_caption_sentences))


def subsample(sentences: list, size: int, seed: int, corpus_name: str) -> list:
    """``size`` sentences of ``sentences``, shuffled by ``seed`` then truncated."""
    if size > len(sentences):
        raise ValueError(
            f"corpus {corpus_name!r} has {len(sentences)} training sentences but "
            f"{size} were asked for (size_exponent too large for this corpus); lower "
            "corpus.size_exponent or give the corpus more text"
        )
    if size < 1:
        raise ValueError(f"corpus {corpus_name!r}: size_exponent gives {size} sentences")
    order = np.random.default_rng(seed).permutation(len(sentences))[:size]
    return [sentences[i] for i in order]


def build_corpus(corpus_cfg, captions: CaptionDataset, seed: int) -> Corpus:
    """The LM corpus described by ``corpus_cfg`` for a caption dataset and run seed."""
    source = corpus_cfg.source
    if source == "captions":
        pool, val = captions.sentences("train"), captions.sentences("val")
    elif source == "shapes_extra":
        pool, val = _shapes_extra(corpus_cfg)
    elif source == "textfile":
        pool, val = _textfile(corpus_cfg)
    else:
        raise ValueError(f"corpus.source={source!r} is unknown; choose one of {', '.join(SOURCES)}")
    n_captions = len(captions.sentences("train"))
    size = corpus_size(corpus_cfg.size_exponent, n_captions, len(pool))
    train = subsample(pool, size, seed, corpus_cfg.name)
    max_val = corpus_cfg.get("max_val_sentences")
    if max_val and len(val) > max_val:
        val = val[:max_val]
    if not val:
        raise ValueError(f"corpus {corpus_cfg.name!r} has no validation sentences")
    info = {
        "pool_size": len(pool),
        "size_exponent": corpus_cfg.size_exponent,
        "caption_train_sentences": n_captions,
    }
    log.info(
        "corpus %s: %d of %d sentences (e=%s), %d val",
        corpus_cfg.name,
        len(train),
        len(pool),
        corpus_cfg.size_exponent,
        len(val),
    )
    return Corpus(name=corpus_cfg.name, train=train, val=val, info=info)


def _shapes_extra(corpus_cfg):

    if corpus_cfg.get("shapes") is None:
        raise ValueError(
            "corpus=shapes_extra describes extra scenes of the shapes generator, so it needs "
            "data=shapes (corpus.shapes is empty)"
        )
    config = ShapesConfig(**corpus_cfg.shapes)
    pool = extra_scene_captions(config, corpus_cfg.num_scenes, part="train")
    val = extra_scene_captions(config, corpus_cfg.val_scenes, part="val")
    return [tokenize(s) for s in pool], [tokenize(s) for s in val]


def read_sentences(path: str | Path) -> list[list[str]]:
    """Tokenised non-empty lines of a UTF-8 text file (one sentence per line)."""
    path = Path(path)
    if not path.is_file():
        hint = ""
        if "corpora" in str(path):
            hint = " (fetch the registry corpora with `make corpora`)"
        raise FileNotFoundError(f"{path}: corpus text file not found{hint}")
    lines = read_utf8(path).splitlines()
    sentences = [s for s in map(tokenize, lines) if s]
    if not sentences:
        raise ValueError(f"{path}: corpus text file has no sentences")
    if len(sentences) < len(lines):
        log.info(
            "%s: dropped %d of %d lines that are empty after tokenisation",
            path,
            len(lines) - len(sentences),
            len(lines),
        )
    return sentences


def _textfile(corpus_cfg):
    sentences = read_sentences(corpus_cfg.train_file)
    if corpus_cfg.get("val_file"):
        return sentences, read_sentences(corpus_cfg.val_file)
    # Hold out a part fixed across runs (seed 0 here, not the run's seed), so every run's LM
    # is validated on the same text and never trains on it.
    fraction = float(corpus_cfg.get("val_fraction", 0.05))
    n_val = max(1, math.ceil(fraction * len(sentences)))
    order = np.random.default_rng(0).permutation(len(sentences))
    val = [sentences[i] for i in order[:n_val]]
    pool = [sentences[i] for i in np.sort(order[n_val:])]
    return pool, val
