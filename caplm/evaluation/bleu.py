"""Corpus BLEU-4 without Java, for the curves logged while a generator trains.

The references of a validation set do not change between epochs, so their clipped n-gram
counts are counted once (:class:`CorpusBLEU4`) and each epoch counts only its hypotheses'.
The score is torchmetrics' ``bleu_score(n_gram=4)`` (tested against it): whitespace tokens,
lower-cased, the closest reference length for the brevity penalty, no smoothing (0.0 when
some order has no match, where pycocoevalcap keeps a tiny epsilon).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

ORDER = 4


def ngram_counts(words: Sequence[str], order: int = ORDER) -> Counter:
    """How often each 1- to ``order``-gram (a tuple of words) occurs in ``words``."""
    counts: Counter = Counter()
    for n in range(1, order + 1):
        counts.update(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return counts


class CorpusBLEU4:
    """``bleu(hypotheses)``: corpus BLEU-4 of one hypothesis per image against the
    references given here (a list of reference strings per image)."""

    def __init__(self, references: Sequence[Sequence[str]]):
        tokens = [[r.lower().split() for r in refs] for refs in references]
        if any(not refs for refs in tokens):
            raise ValueError("every image needs at least one reference caption")
        self.lengths = [[len(r) for r in refs] for refs in tokens]
        self.clip = []  # per image: each n-gram's highest count in any one reference
        for refs in tokens:
            most: Counter = Counter()
            for ref in refs:
                most |= ngram_counts(ref)
            self.clip.append(most)

    def __call__(self, hypotheses: Sequence[str]) -> float:
        if len(hypotheses) != len(self.clip) or not hypotheses:
            raise ValueError(f"need one reference list per hypothesis, got {len(self.clip)} "
                             f"and {len(hypotheses)}")  # fmt: skip
        matched, total = [0] * ORDER, [0] * ORDER
        hyp_len = ref_len = 0
        for hyp, clip, lengths in zip(hypotheses, self.clip, self.lengths, strict=True):
            words = hyp.lower().split()
            hyp_len += len(words)
            ref_len += min(lengths, key=lambda n: abs(n - len(words)))  # the first closest
            for gram, count in ngram_counts(words).items():
                total[len(gram) - 1] += count
                matched[len(gram) - 1] += min(count, clip.get(gram, 0))
        if min(matched) == 0:
            return 0.0
        log_precision = sum(math.log(m / t) for m, t in zip(matched, total, strict=True)) / ORDER
        brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
        return brevity * math.exp(log_precision)


def corpus_bleu4(references: Sequence[Sequence[str]], hypotheses: Sequence[str]) -> float:
    """Corpus BLEU-4 of ``hypotheses`` (one per image) against ``references``."""
    return CorpusBLEU4(references)(hypotheses)
