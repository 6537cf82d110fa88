"""The prefix encoder: word embedding + RNN over a caption prefix, never seeing the image.

This module is the part that transfers. The language model and the caption generator both
hold one as ``.prefix``, with the same parameter names and shapes (only the embedding's
number of rows, the vocabulary size, may differ), so the LM's prefix state_dict can be
copied into the generator once its embedding rows are selected for the generator's
vocabulary.
"""

from __future__ import annotations

import torch
from torch import nn

from caplm.data.text import PAD_ID

RNN_TYPES = {"gru": nn.GRU, "lstm": nn.LSTM}

#: An RNN state: a tensor (GRU) or an ``(h, c)`` pair (LSTM), each (num_layers, B, rnn_size).
State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class PrefixEncoder(nn.Module):
    """Embedding -> dropout -> RNN -> dropout, from a learned initial state.

    As in the study, the RNN starts from a learned vector (``init_h``, plus ``init_c`` for an
    LSTM), not from the image: the image joins only after the RNN (the merge architecture).

    The GRU is ``torch.nn.GRU``, which applies the reset gate *after* the recurrent matrix
    product, ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``; the authors used
    TensorFlow's GRU, which applies it before, ``n = tanh(W_in x + W_hn (r * h) + b)``. The
    two are equally expressive; weights trained in one do not carry over to the other.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_size: int,
        rnn_size: int,
        rnn_type: str = "gru",
        num_layers: int = 1,
        embed_dropout: float = 0.0,
        rnn_dropout: float = 0.0,
    ):
        super().__init__()
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"rnn_type must be one of {sorted(RNN_TYPES)}, got {rnn_type!r}")
        for name, size in [("vocab_size", vocab_size), ("embed_size", embed_size),
                           ("rnn_size", rnn_size), ("num_layers", num_layers)]:  # fmt: skip
            if not isinstance(size, int) or size < 1:
                raise ValueError(f"{name} must be a positive integer, got {size!r}")
        for name, p in [("embed_dropout", embed_dropout), ("rnn_dropout", rnn_dropout)]:
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p!r}")
        self.rnn_type = rnn_type
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=PAD_ID)
        self.embed_dropout = nn.Dropout(embed_dropout)
        # With stacked layers, the same dropout also sits between layers.
        self.rnn = RNN_TYPES[rnn_type](
            embed_size,
            rnn_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=rnn_dropout if num_layers > 1 else 0.0,
        )
        self.rnn_dropout = nn.Dropout(rnn_dropout)
        self.init_h = nn.Parameter(torch.zeros(num_layers, rnn_size))
        if rnn_type == "lstm":
            self.init_c = nn.Parameter(torch.zeros(num_layers, rnn_size))

    def initial_state(self, batch_size: int) -> State:
        """The learned initial state, repeated over a batch: (num_layers, batch_size, rnn_size)."""
        # contiguous: cuDNN refuses an expanded (stride-0) hidden state.
        h = self.init_h[:, None, :].expand(-1, batch_size, -1).contiguous()
        if self.rnn_type == "lstm":
            return h, self.init_c[:, None, :].expand(-1, batch_size, -1).contiguous()
        return h

    def forward(
        self, tokens: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        """tokens (B, T) -> outputs (B, T, rnn_size) after dropout, and the final state."""
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be (batch, time), got shape {tuple(tokens.shape)}")
        if state is None:
            state = self.initial_state(tokens.size(0))
        outputs, state = self.rnn(self.embed_dropout(self.embedding(tokens)), state)
        return self.rnn_dropout(outputs), state
