"""Per-caption perplexity, plain and corrected for out-of-vocabulary words, as in the study.

For each caption the model predicts L tokens (its words and the end token; padding is not
predicted). With log P the sum of their natural-log probabilities, the caption's perplexity
is exp(-log P / L). Over a test set we report its arithmetic mean, median and geometric mean.

A model with a smaller vocabulary maps more words to ``<unk>``, and one ``<unk>`` is easier to
predict than the many words it stands for, so plain perplexity favours small vocabularies.
The correction shares ``<unk>``'s probability equally among the n_oov_types word types of the
evaluated text that the vocabulary lacks: log P' = log P - n_unk * log(n_oov_types).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from caplm.data.text import UNK_ID, Vocabulary
from caplm.results import PPLX_KINDS, PPLX_STATS


def oov_stats(sentences: list[list[str]], vocab: Vocabulary) -> tuple[list[int], int]:
    """Per sentence the number of tokens that map to ``<unk>``; and the number of distinct
    such word types over all sentences (n_oov_types for :func:`perplexity_stats`)."""
    unk_counts = []
    oov_types = set()
    for tokens in sentences:
        oov = [t for t in tokens if vocab.stoi.get(t, UNK_ID) == UNK_ID]
        unk_counts.append(len(oov))
        oov_types.update(oov)
    return unk_counts, len(oov_types)


def coverage(sentences: list[list[str]], vocab: Vocabulary) -> dict[str, float]:
    """How far ``vocab`` covers a text: ``oov_type_rate`` (share of its word types that map to
    ``<unk>``) and ``oov_token_rate`` (share of its word tokens that do)."""
    counts = Counter(t for tokens in sentences for t in tokens)
    if not counts:
        raise ValueError("no words to measure the vocabulary's coverage on")
    missing = [w for w in counts if w not in vocab.stoi]
    return {
        "oov_type_rate": len(missing) / len(counts),
        "oov_token_rate": sum(counts[w] for w in missing) / sum(counts.values()),
    }


def caption_perplexities(
    token_logprobs: Sequence[np.ndarray], unk_counts: Sequence[int], n_oov_types: int
) -> dict[str, np.ndarray]:
    """Per-caption perplexity for each kind in PPLX_KINDS ("plain", "corrected")."""
    if len(token_logprobs) != len(unk_counts):
        raise ValueError(f"{len(token_logprobs)} captions but {len(unk_counts)} unk counts")
    if not token_logprobs:
        raise ValueError("no captions to compute perplexity on")
    lengths = np.array([len(lp) for lp in token_logprobs])
    n_unk = np.asarray(unk_counts)
    if (lengths == 0).any():
        raise ValueError("a caption has no predicted tokens (the end token always counts)")
    if (n_unk < 0).any() or (n_unk > lengths).any():
        raise ValueError("an unk count is negative or larger than its caption's token count")
    if n_unk.any() and n_oov_types < 1:
        raise ValueError(
            f"captions have {int(n_unk.sum())} <unk> targets but n_oov_types={n_oov_types}; "
            "every <unk> stands for at least one out-of-vocabulary word type (see oov_stats)"
        )
    log_p = np.array([np.sum(lp, dtype=np.float64) for lp in token_logprobs])
    log_p_corrected = log_p - n_unk * np.log(max(n_oov_types, 1))
    return {"plain": np.exp(-log_p / lengths), "corrected": np.exp(-log_p_corrected / lengths)}


def perplexity_stats(
    token_logprobs: Sequence[np.ndarray], unk_counts: Sequence[int], n_oov_types: int
) -> dict[str, float]:
    """Mean, median and geometric mean over captions of plain and corrected perplexity.

    ``token_logprobs``: per caption, the natural-log probability of each predicted token.
    ``unk_counts``: per caption, how many of its targets are ``<unk>``.
    ``n_oov_types``: distinct word types of the evaluated text missing from the vocabulary.
    Keys are f"{kind}_{stat}" for kind in PPLX_KINDS and stat in PPLX_STATS.
    """
    out = {}
    per_caption = caption_perplexities(token_logprobs, unk_counts, n_oov_types)
    # per word (comparable across tokenisers, caplm/data/subword.py): a word vocabulary's
    # token is a word, and the correction spreads <unk>'s probability over the OOV words
    per_caption["per_word"] = per_caption["corrected"]
    for kind in PPLX_KINDS:
        pplx = per_caption[kind]
        stats = {
            "mean": np.mean(pplx),
            "median": np.median(pplx),
            "geomean": np.exp(np.mean(np.log(pplx))),
        }
        out.update({f"{kind}_{stat}": float(stats[stat]) for stat in PPLX_STATS})
    return out
