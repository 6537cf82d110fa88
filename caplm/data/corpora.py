"""Language-model corpora and the study's corpus-size control.

A corpus has a *pool* of training sentences and a fixed validation text. The language model
trains on ``round(10^e x n)`` sentences of the pool, where ``n`` is the number of training
captions of the caption dataset and ``e`` the corpus's ``size_exponent``: the pool is shuffled
by the run's seed, then truncated, so corpora of different domains are compared at equal
sizes (Tanti et al., 2019). ``size_exponent: null`` takes the whole pool.

Every corpus is tokenised by the caption dataset's normaliser (``data.normaliser``, recorded
as ``CaptionDataset.normaliser``), so the LM and the captions always see the same words.

Sources (``corpus.source``):
- ``captions``: the caption dataset's own training captions (never val/test); validated on
  its val captions.
- ``caption_dataset``: the training captions of *another* caption dataset (``corpus.dataset``,
  a ``data``-style config: the study's "mscoco" LM for a Flickr8k captioner), validated on its
  val captions; read directly, no files exported.
- ``shapes_extra`` / ``scenes_extra``: captions of extra generated scenes of the ``shapes`` /
  ``scenes`` generator, disjoint from the dataset's images (the analogue of MSCOCO captions for
  a Flickr8k captioner).
- ``scenes_news``: news-wire sentences generated in code that share part of the scenes
  captions' vocabulary, not their templates (the analogue of lm1b for a Flickr8k captioner).
- ``textfile``: a plain-text UTF-8 file, one sentence per line; validated on ``val_file``, or
  on a held-out part of the file fixed across runs. Lines with no token (blank ones) are
  dropped, and how many is logged.
- ``lm1b``: the 1 Billion Word benchmark's own folders under ``corpus.root``: the first
  ``train_shards`` training shards, validated on the held-out shards ``val_shards``; sentences
  of ``min_words`` to ``max_words`` words after normalisation are kept (2 to 50, as the study).

``corpus.dedup`` (``none`` | ``exact`` | ``near``, :mod:`caplm.data.dedup`) removes duplicate
sentences from the pool before the size control; never from the validation text, and never
from the caption training set (``captions``).

The LM is validated (early stopping, perplexity) on the whole validation text unless
``max_val_sentences`` is set: then on that many of its sentences, chosen by content (a hash of
each sentence), so the same text gives the same subset whatever order a reader lists it in.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from caplm.data import scenes
from caplm.data.dedup import deduplicate
from caplm.data.readers import load_caption_dataset
from caplm.data.scenes import ScenesConfig
from caplm.data.shapes import ShapesConfig, extra_scene_captions
from caplm.data.text import normaliser, read_utf8
from caplm.data.types import CaptionDataset, Corpus

log = logging.getLogger(__name__)

SOURCES = ("captions", "caption_dataset", "extra", "shapes_extra", "scenes_extra", "scenes_news",
           "textfile", "lm1b")  # fmt: skip
#: The keys a ``corpus`` config may have: those of every source, then each source's own.
CORPUS_KEYS = ("name", "source", "size_exponent", "max_size_exponent", "min_word_freq",
               "max_val_sentences", "dedup", "dedup_near")  # fmt: skip
SOURCE_KEYS = {
    "captions": (),
    "caption_dataset": ("dataset",),
    "extra": ("generator", "num_scenes", "val_scenes"),
    "shapes_extra": ("shapes", "num_scenes", "val_scenes"),
    "scenes_extra": ("scenes", "num_scenes", "val_scenes"),
    "scenes_news": ("seed", "num_sentences", "val_sentences"),
    "textfile": ("train_file", "val_file", "val_fraction"),
    "lm1b": ("root", "train_shards", "val_shards", "min_words", "max_words"),
}
#: Whether each source is text of the caption domain (captions of other images) or not; None
#: for a user's text file, whose domain caplm cannot know.
IN_DOMAIN = {"captions": True, "caption_dataset": True, "extra": True, "shapes_extra": True,
             "scenes_extra": True, "scenes_news": False, "textfile": None, "lm1b": False}  # fmt: skip
GENERATED = ("shapes", "scenes")  # the generated datasets, with extra scenes for corpus=extra
LM1B_TRAIN = "training-monolingual.tokenized.shuffled/news.en-{:05d}-of-00100"
LM1B_HELDOUT = "heldout-monolingual.tokenized.shuffled/news.en.heldout-{:05d}-of-00050"


def outside_design(corpus_cfg) -> str | None:
    """Why a corpus's size exponent is outside its design (``corpus.max_size_exponent``: the
    study grows the in-domain corpus only up to e = 0), or None. A sweep over one list of
    exponents for several corpora marks such points not applicable instead of failing."""
    if corpus_cfg.get("source") == "captions" and corpus_cfg.get("dedup", "none") != "none":
        return (
            f"corpus 'captions' is the caption training set itself, which is never deduplicated "
            f"(corpus.dedup={corpus_cfg.dedup}); deduplicate another corpus"
        )
    top, e = corpus_cfg.get("max_size_exponent"), corpus_cfg.get("size_exponent")
    if top is None or e is None or float(e) <= float(top):
        return None
    return (
        f"corpus {corpus_cfg.name!r} goes up to size_exponent {top} in this design "
        f"(corpus.max_size_exponent), not {e}"
    )


def corpus_size(size_exponent: float | None, num_caption_sentences: int, pool_size: int) -> int:
    """Sentences the LM trains on: round(10^e x caption training sentences), or the pool."""
    if size_exponent is None:
        return pool_size
    return int(round(10.0 ** float(size_exponent) * num_caption_sentences))


def check_size(corpus_cfg, num_caption_sentences: int, pool_size: int) -> int:
    """The sentences ``corpus.size_exponent`` gives (:func:`corpus_size`), or a ValueError
    with the exponents that give 1 to ``pool_size`` sentences and the setting to change."""
    e, n = corpus_cfg.get("size_exponent"), num_caption_sentences
    size = corpus_size(e, n, pool_size)
    if e is None or 1 <= size <= pool_size:
        return size
    if n < 1 or pool_size < 1:
        raise ValueError(f"corpus {corpus_cfg.name!r}: {n} caption training sentences and a "
                         f"pool of {pool_size}: no size_exponent gives an LM corpus")  # fmt: skip
    low = math.ceil(1000 * math.log10(0.5 / n))  # in thousandths: round(10^e n) >= 1
    high = math.floor(1000 * math.log10((pool_size + 0.5) / n))  # round(10^e n) <= pool_size
    while corpus_size(low / 1000, n, pool_size) < 1:  # round() halves to even at the edge
        low += 1
    while corpus_size(high / 1000, n, pool_size) > pool_size:
        high -= 1
    low, high = low / 1000, high / 1000
    raise ValueError(
        f"corpus {corpus_cfg.name!r}: corpus.size_exponent={e} gives round(10^{e} x {n} caption "
        f"training sentences) = {size} LM training sentences, but it must be 1 to {pool_size} "
        f"(the corpus's pool); set corpus.size_exponent between {low} and {high}, or null for "
        "the whole pool"
    )


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


def build_corpus(corpus_cfg, captions: CaptionDataset, seed: int, cache_dir=None) -> Corpus:
    """The LM corpus described by ``corpus_cfg`` for a caption dataset and run seed, tokenised
    by the dataset's normaliser (``cache_dir``: where a ``caption_dataset`` source caches)."""
    source, rule = corpus_cfg.source, captions.normaliser
    normalise = normaliser(rule)
    pool, val = corpus_pool(corpus_cfg, captions, cache_dir)
    method, removed = corpus_cfg.get("dedup", "none"), 0
    if method != "none":  # before the size control: the LM still sees round(10^e x n)
        if source == "captions":
            raise ValueError(outside_design(corpus_cfg))
        before = len(pool)
        pool, removed = deduplicate(_tokens(pool, normalise), method, corpus_cfg.get("dedup_near"))
        log.info("corpus %s: dedup=%s removed %d of %d pool sentences", corpus_cfg.name, method,
                 removed, before)  # fmt: skip
    n_captions = len(captions.sentences("train"))
    size = corpus_size(corpus_cfg.size_exponent, n_captions, len(pool))
    if removed and size > len(pool):
        raise ValueError(
            f"corpus {corpus_cfg.name!r}: corpus.dedup={method} left {len(pool)} of "
            f"{len(pool) + removed} pool sentences, fewer than the {size} that size_exponent "
            f"{corpus_cfg.size_exponent} asks for; lower corpus.size_exponent or give the "
            "corpus a larger pool"
        )
    check_size(corpus_cfg, n_captions, len(pool))
    train = _tokens(subsample(pool, size, seed, corpus_cfg.name), normalise)
    val = _tokens(val, normalise)
    if not val:
        raise ValueError(f"corpus {corpus_cfg.name!r} has no validation sentences")
    max_val = corpus_cfg.get("max_val_sentences")
    val_total = len(val)
    val = sample_by_content(val, max_val)
    info = {
        "pool_size": len(pool),
        "size_exponent": corpus_cfg.size_exponent,
        "caption_train_sentences": n_captions,
        "normaliser": rule,
        "val_sentences": len(val),
        "val_sentences_available": val_total,
        "max_val_sentences": max_val,
        "dedup": method,
        "dedup_removed": removed,
    }
    log.info(
        "corpus %s: %d of %d sentences (e=%s), %d val%s",
        corpus_cfg.name,
        len(train),
        len(pool),
        corpus_cfg.size_exponent,
        len(val),
        f" (of {val_total}: corpus.max_val_sentences={max_val})" if len(val) < val_total else "",
    )
    return Corpus(name=corpus_cfg.name, train=train, val=val, info=info)


def corpus_pool(corpus_cfg, captions: CaptionDataset, cache_dir=None) -> tuple[list, list]:
    """A corpus's whole pool of training sentences and its validation text, as its source
    gives them (raw strings for the generated sources, token lists otherwise)."""
    source, rule = corpus_cfg.source, captions.normaliser
    normalise = normaliser(rule)
    if source == "captions":
        pool, val = captions.sentences("train"), captions.sentences("val")
    elif source == "caption_dataset":
        pool, val = _caption_dataset(corpus_cfg, rule, cache_dir)
    elif source in ("shapes_extra", "scenes_extra"):
        kind = source.removesuffix("_extra")
        pool, val = _generated_extra(kind, corpus_cfg.get(kind), corpus_cfg, cache_dir)
    elif source == "extra":
        pool, val = _extra(corpus_cfg, captions, cache_dir)
    elif source == "scenes_news":
        pool, val = _scenes_news(corpus_cfg, cache_dir)
    elif source == "textfile":
        pool, val = _textfile(corpus_cfg, normalise)
    elif source == "lm1b":
        pool, val = _lm1b(corpus_cfg, normalise)
    else:
        raise ValueError(f"corpus.source={source!r} is unknown; choose one of {', '.join(SOURCES)}")
    return pool, val


def sample_by_content(sentences: list[list[str]], limit: int | None) -> list[list[str]]:
    """All ``sentences``, or ``limit`` of them chosen by a hash of their words (kept in their
    order), so the subset does not depend on the order a reader lists them in."""
    if not limit or len(sentences) <= limit:
        return sentences

    def rank(item):
        index, words = item
        return hashlib.sha256(" ".join(words).encode()).digest(), index

    chosen = sorted(sorted(enumerate(sentences), key=rank)[:limit])
    return [words for _, words in chosen]


def _caption_dataset(corpus_cfg, rule: str, cache_dir):
    if not corpus_cfg.get("dataset"):
        raise ValueError(
            f"corpus {corpus_cfg.name!r}: source caption_dataset needs corpus.dataset, a "
            "data-style config (format, annotations, ...) of the dataset whose captions it reads"
        )
    data_cfg = {**corpus_cfg.dataset, "normaliser": rule}
    other = load_caption_dataset(data_cfg, cache_dir)
    return other.sentences("train"), other.sentences("val")


def _tokens(sentences: list, normalise: Callable) -> list[list[str]]:
    """Sentences as tokens: raw strings (the generated sources, tokenised only once chosen)
    through the normaliser, token lists as they are."""
    return [normalise(s) if isinstance(s, str) else s for s in sentences]


def _generated_extra(kind: str, generator, corpus_cfg, cache_dir):
    """Captions of ``corpus.num_scenes`` extra scenes of the ``kind`` generator (settings
    ``generator``: the caption data's), validated on ``corpus.val_scenes`` others."""
    if generator is None:
        raise ValueError(
            f"corpus={corpus_cfg.source} describes extra scenes of the {kind} generator, so it "
            f"needs data={kind} (its generator settings are empty)"
        )
    if kind == "shapes":
        config = ShapesConfig(**generator)
        pool = extra_scene_captions(config, corpus_cfg.num_scenes, "train", cache_dir)
        return pool, extra_scene_captions(config, corpus_cfg.val_scenes, "val", cache_dir)
    config = ScenesConfig(**generator)
    pool = scenes.extra_scene_captions(config, corpus_cfg.num_scenes, "train", cache_dir)
    return pool, scenes.extra_scene_captions(config, corpus_cfg.val_scenes, "val", cache_dir)


def _extra(corpus_cfg, captions: CaptionDataset, cache_dir):
    """Extra scenes of whichever generator made the caption dataset (``corpus=extra``: the
    in-domain corpus of a sweep over ``data=shapes,scenes``)."""
    if captions.name not in GENERATED:
        raise ValueError(
            f"corpus=extra is the captions of extra scenes of a generated dataset "
            f"({', '.join(GENERATED)}); data is {captions.name!r}"
        )
    return _generated_extra(captions.name, corpus_cfg.get("generator"), corpus_cfg, cache_dir)


def _scenes_news(corpus_cfg, cache_dir):
    seed = int(corpus_cfg.seed)
    pool = scenes.news_sentences(seed, corpus_cfg.num_sentences, "train", cache_dir)
    return pool, scenes.news_sentences(seed, corpus_cfg.val_sentences, "val", cache_dir)


def read_sentences(
    path: str | Path,
    normalise: Callable[[str], list[str]],
    min_words: int = 1,
    max_words: int | None = None,
) -> list[list[str]]:
    """Normalised lines of a UTF-8 text file (one sentence per line) with ``min_words`` to
    ``max_words`` words; the words are interned (a large corpus repeats them millions of
    times)."""
    path = Path(path)
    if not path.is_file():
        hint = ""
        if "corpora" in str(path):
            hint = " (fetch the registry corpora with `make corpora`)"
        raise FileNotFoundError(f"{path}: corpus text file not found{hint}")
    lines = read_utf8(path).splitlines()
    top = max_words or math.inf
    sentences = []
    for line in lines:
        words = normalise(line)
        if min_words <= len(words) <= top:
            sentences.append(list(map(sys.intern, words)))
    if not sentences:
        raise ValueError(f"{path}: corpus text file has no sentences")
    if len(sentences) < len(lines):
        log.info(
            "%s: dropped %d of %d lines with %s words after normalisation",
            path,
            len(lines) - len(sentences),
            len(lines),
            f"fewer than {min_words} or more than {max_words}" if max_words else "no",
        )
    return sentences


def _textfile(corpus_cfg, normalise: Callable):
    sentences = read_sentences(corpus_cfg.train_file, normalise)
    if corpus_cfg.get("val_file"):
        return sentences, read_sentences(corpus_cfg.val_file, normalise)
    # Hold out a part fixed across runs (seed 0 here, not the run's seed), so every run's LM
    # is validated on the same text and never trains on it.
    fraction = float(corpus_cfg.get("val_fraction", 0.05))
    n_val = max(1, math.ceil(fraction * len(sentences)))
    order = np.random.default_rng(0).permutation(len(sentences))
    val = [sentences[i] for i in order[:n_val]]
    pool = [sentences[i] for i in np.sort(order[n_val:])]
    return pool, val


def _lm1b(corpus_cfg, normalise: Callable):
    """The benchmark's training shards 1..train_shards and held-out shards val_shards."""
    root = Path(corpus_cfg.root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root}: the 1 Billion Word benchmark folder (corpus.root) is not there; unpack "
            "1-billion-word-language-modeling-benchmark-r13output.tar.gz and point corpus.root "
            "at the folder that holds training-monolingual.tokenized.shuffled/"
        )
    n_train = int(corpus_cfg.train_shards)
    if not 1 <= n_train <= 99:
        raise ValueError(f"corpus.train_shards is {n_train}; the benchmark has 99 (1 to 99)")
    bounds = int(corpus_cfg.get("min_words", 2)), corpus_cfg.get("max_words", 50)
    pool = [
        s
        for i in range(1, n_train + 1)
        for s in read_sentences(root / LM1B_TRAIN.format(i), normalise, *bounds)
    ]
    val = [
        s
        for i in corpus_cfg.val_shards
        for s in read_sentences(root / LM1B_HELDOUT.format(int(i)), normalise, *bounds)
    ]
    return pool, val
