"""The caption generator's vocabulary under a ``transfer.vocab_policy``."""

from __future__ import annotations

from caplm.data.text import Vocabulary
from caplm.models.transfer.modes import check_vocab_policy


def generator_vocabulary(
    caption_vocab: Vocabulary, lm_vocab: Vocabulary | None, policy: str = "intersect"
) -> Vocabulary:
    """``intersect`` (the study): caption training words the LM also knows, so every word gets
    a transferred row (a small LM vocabulary narrows what the generator can say). ``caption``:
    the caption vocabulary alone. Without an LM it is the caption vocabulary.
    """
    check_vocab_policy(policy)
    if lm_vocab is None or policy == "caption":
        return caption_vocab
    return caption_vocab.intersect(lm_vocab)
