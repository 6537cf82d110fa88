"""Deduplicating an LM corpus's pool (``corpus.dedup``), before the size control.

Lee et al. (2022, "Deduplicating training data makes language models better") found that
corpora full of near-duplicates make LMs that memorise; ``corpus.dedup`` removes them from a
corpus's pool of training sentences before the pool is shuffled and cut to
``round(10^e x n)`` sentences, so a deduplicated LM still sees as many sentences as any other
(the pool must hold them: a too-small pool is a clear error). Its validation text and the
caption sets are never deduplicated (``corpus=captions`` is the caption training set itself:
not deduplicated, and a sweep marks such a point not applicable).

- ``none``: the pool as it is.
- ``exact``: a sentence whose words are those of an earlier one is removed.
- ``near``: also a sentence whose set of word n-grams (``dedup_near.ngram``; a sentence with
  fewer words is one n-gram) has Jaccard similarity >= ``dedup_near.threshold`` with that of
  an earlier kept sentence. Candidates come from MinHash LSH (``datasketch``,
  ``dedup_near.num_perm`` permutations, queried at a looser threshold than asked), and each
  candidate's Jaccard similarity is then computed exactly, so nothing below the threshold is
  ever removed and the threshold's edge is exact.

In every method the first of a group of duplicates (in pool order) is the one kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

METHODS = ("none", "exact", "near")
#: The keys of ``corpus.dedup_near``.
NEAR_KEYS = ("threshold", "ngram", "num_perm")
#: How far below the threshold LSH looks for candidates (each then checked exactly).
LOOSER = 0.2
MINHASH_SEED = 1


def check(method: str, near: Mapping | None = None) -> None:
    """Raise ValueError naming a bad ``corpus.dedup`` / ``corpus.dedup_near`` value."""
    if method not in METHODS:
        raise ValueError(f"corpus.dedup is {method!r}; one of {', '.join(METHODS)}")
    if method != "near":
        return
    near = dict(near or {})
    missing = [k for k in NEAR_KEYS if k not in near]
    if missing:
        raise ValueError(f"corpus.dedup=near needs corpus.dedup_near.{', '.join(missing)}")
    if not 0.0 < float(near["threshold"]) <= 1.0:
        raise ValueError(f"corpus.dedup_near.threshold is {near['threshold']!r}; in (0, 1]")
    for key in ("ngram", "num_perm"):
        value = near[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"corpus.dedup_near.{key} is {value!r}; an integer >= 1")


def drop_off(corpus: dict) -> dict:
    """A corpus config (as a dict) without its dedup settings when ``dedup`` is ``none``, so
    job identities stay what they were before the settings existed."""
    if corpus.get("dedup", "none") == "none":
        corpus.pop("dedup", None)
        corpus.pop("dedup_near", None)
    return corpus


def shingles(words: Sequence[str], n: int) -> frozenset:
    """The set of a sentence's word n-grams (a sentence of fewer words is one n-gram)."""
    words = tuple(words)
    if len(words) <= n:
        return frozenset([words])
    return frozenset(words[i : i + n] for i in range(len(words) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def deduplicate(
    sentences: Sequence[Sequence[str]], method: str, near: Mapping | None = None
) -> tuple[list, int]:
    """``sentences`` (token lists) without duplicates by ``method``, and how many were
    removed; the first of each group of duplicates is kept, the order is kept."""
    check(method, near)
    if method == "none":
        return list(sentences), 0
    seen, unique = set(), []
    for words in sentences:
        key = tuple(words)
        if key not in seen:
            seen.add(key)
            unique.append(words)
    if method == "exact":
        return unique, len(sentences) - len(unique)
    kept = _near(unique, float(near["threshold"]), int(near["ngram"]), int(near["num_perm"]))
    return kept, len(sentences) - len(kept)


def _near(sentences: list, threshold: float, n: int, num_perm: int) -> list:
    from datasketch import MinHash, MinHashLSH

    sets = [shingles(words, n) for words in sentences]
    grams = [[" ".join(g).encode() for g in s] for s in sets]
    hashes = MinHash.bulk(grams, num_perm=num_perm, seed=MINHASH_SEED)
    lsh = MinHashLSH(threshold=max(0.05, threshold - LOOSER), num_perm=num_perm)
    kept = []
    for i, (words, shingle_set, mh) in enumerate(zip(sentences, sets, hashes, strict=True)):
        if any(jaccard(shingle_set, sets[j]) >= threshold for j in lsh.query(mh)):
            continue
        lsh.insert(i, mh)
        kept.append(words)
    return kept
