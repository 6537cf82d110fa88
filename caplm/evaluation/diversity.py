"""How varied the generated captions are, as the study measures it.

All counts are over tokenised captions without special tokens. ``vocab_size`` is the number
of ordinary words the model can emit (``len(vocab.words)``: ``<pad>``, ``<unk>``, ``<bos>``
and ``<eos>`` not counted), so ``vocab_used_frac`` is the share of them it actually used.
Captions reused from training are counted with repeats: the fraction is of generated captions.
"""

from __future__ import annotations


def diversity(generated: list[list[str]], train_captions: list[list[str]], vocab_size: int) -> dict:
    """Vocabulary use, uniqueness, reuse of training captions, distinct n-grams and lengths.

    Raises ValueError on an empty ``generated`` list: fractions and lengths are undefined.
    """
    if not generated:
        raise ValueError("no generated captions to measure diversity on")
    if vocab_size < 1:
        raise ValueError(f"vocab_size must count the ordinary words (>= 1), got {vocab_size}")
    captions = [tuple(c) for c in generated]
    train = {tuple(c) for c in train_captions}
    n = len(captions)
    lengths = [len(c) for c in captions]
    vocab_used = len({w for c in captions for w in c})
    unique = len(set(captions))
    reused = sum(c in train for c in captions)
    out = {
        "vocab_used": vocab_used,
        "vocab_used_frac": vocab_used / vocab_size,
        "unique_captions": unique,
        "unique_frac": unique / n,
        "reused_from_train": reused,
        "reused_frac": reused / n,
    }
    for k in (1, 2, 3):
        out[f"distinct_{k}grams"] = len(
            {c[i : i + k] for c in captions for i in range(len(c) - k + 1)}
        )
    out.update(len_mean=sum(lengths) / n, len_min=min(lengths), len_max=max(lengths))
    return out
