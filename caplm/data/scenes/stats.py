"""Vocabulary statistics of a set of sentences (captions or a corpus): how many word types,
how long-tailed their frequencies are, how long the sentences are."""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Iterable


def as_tokens(sentences: Iterable[str]) -> list[list[str]]:
    """Token lists of clean sentences (the scenes captions and corpora are lower-case words
    separated by single spaces, so splitting is tokenising), each word stored once: a pool
    of 500,000 sentences takes about 110 MB instead of about 470 MB."""
    return [list(map(sys.intern, s.split())) for s in sentences]


def statistics(sentences: Iterable[str | list[str]]) -> dict[str, float]:
    """``sentences``: strings (split on whitespace) or token lists. Returns

    - ``sentences``, ``tokens``, ``types``; ``hapax`` (types seen once) and ``hapax_share``
      (their share of the types), ``rare_share`` (types seen at most 5 times);
    - ``length_min``, ``length_mean``, ``length_max`` (tokens per sentence);
    - ``zipf_slope``: the least-squares slope of log frequency against log rank over all
      types (about -1 for Zipf's law), ``zipf_r2`` its fit, and ``top10_share``: the share of
      tokens that are the ten most frequent types.
    """
    counts: Counter[str] = Counter()
    lengths = []
    for s in sentences:
        tokens = s.split() if isinstance(s, str) else s
        counts.update(tokens)
        lengths.append(len(tokens))
    if not lengths:
        raise ValueError("statistics of no sentences")
    freqs = sorted(counts.values(), reverse=True)
    n_tokens = sum(freqs)
    slope, r2 = _loglog_fit(freqs)
    return {
        "sentences": len(lengths),
        "tokens": n_tokens,
        "types": len(freqs),
        "hapax": sum(f == 1 for f in freqs),
        "hapax_share": sum(f == 1 for f in freqs) / max(len(freqs), 1),
        "rare_share": sum(f <= 5 for f in freqs) / max(len(freqs), 1),
        "length_min": min(lengths),
        "length_mean": sum(lengths) / len(lengths),
        "length_max": max(lengths),
        "zipf_slope": slope,
        "zipf_r2": r2,
        "top10_share": sum(freqs[:10]) / max(n_tokens, 1),
    }


def _loglog_fit(freqs: list[int]) -> tuple[float, float]:
    """Slope and R^2 of log(frequency) on log(rank), ranks 1..n."""
    if len(freqs) < 2:
        return 0.0, 0.0
    xs = [math.log(r) for r in range(1, len(freqs) + 1)]
    ys = [math.log(f) for f in freqs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    syy = sum((y - my) ** 2 for y in ys)
    slope = sxy / sxx
    r2 = (sxy * sxy) / (sxx * syy) if syy > 0 else 0.0
    return slope, r2
