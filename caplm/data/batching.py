"""Sentences as the id tensors every model takes: ``inputs`` (B, T) = ``<bos>`` + words and
``targets`` (B, T) = words + ``<eos>``, padded with ``<pad>`` (id 0). The data modules batch
training data with these, and evaluation batches what it scores with the same functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn.utils.rnn import pad_sequence

from caplm.data.text import BOS_ID, EOS_ID, PAD_ID, Vocabulary


def encode_sentences(sentences: Sequence[Sequence[str]], vocab: Vocabulary, max_len: int):
    """Id tensors of the sentences, each cut to ``max_len`` words."""
    return [torch.tensor(vocab.encode(s[:max_len]), dtype=torch.long) for s in sentences]


def pad_batch(sentences: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    """``inputs``/``targets`` tensors for a list of id sequences."""
    lengths = torch.tensor([len(s) for s in sentences])
    words = pad_sequence(list(sentences), batch_first=True, padding_value=PAD_ID)
    rows, width = len(sentences), words.size(1) + 1
    inputs = torch.full((rows, width), PAD_ID, dtype=torch.long)
    targets = torch.full((rows, width), PAD_ID, dtype=torch.long)
    inputs[:, 0] = BOS_ID
    inputs[:, 1:] = words
    targets[:, :-1] = words
    targets[torch.arange(rows), lengths] = EOS_ID
    return {"inputs": inputs, "targets": targets}
