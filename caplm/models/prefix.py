"""The prefix encoder: word embedding + RNN over a caption prefix, never seeing the image.

This module is the part that transfers. The language model and the caption generator both
hold one as ``.prefix``, with the same parameter names and shapes (only the embedding's
number of rows, the vocabulary size, may differ), so the LM's prefix state_dict can be
copied into the generator once its embedding rows are selected for the generator's
vocabulary.

``make_prefix`` builds the prefix of a :class:`PrefixConfig`'s architecture family (``arch``): ``rnn`` (this
module's ``PrefixEncoder``) or ``transformer`` (:mod:`caplm.models.transformer`). Both have
``forward(tokens, state) -> (outputs (B, T, output_size), state)``, ``initial_state(B)``,
``arch``, ``output_size`` and ``max_positions`` (None: unbounded).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import torch
from torch import nn

from caplm.data.text import PAD_ID
from caplm.models.common import check_dropouts, check_sizes
from caplm.models.transformer import TransformerPrefix

ARCHS = ("rnn", "transformer")
#: The Transformer's own settings (``conf/lm/transformer_*.yaml``); an RNN leaves them None.
#: Its width d_model is ``rnn_size`` (the prefix's output size, whatever the family).
TRANSFORMER_KEYS = ("n_heads", "ff_size", "max_positions", "positions", "block_dropout")
#: What a Transformer's None settings mean (ff_size None: 4 x d_model).
TRANSFORMER_DEFAULTS = {"max_positions": 64, "positions": "learned", "block_dropout": 0.1}
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

    arch = "rnn"
    max_positions = None  # no limit on the sequence length

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
        check_sizes({"vocab_size": vocab_size, "embed_size": embed_size, "rnn_size": rnn_size,
                     "num_layers": num_layers})  # fmt: skip
        check_dropouts({"embed_dropout": embed_dropout, "rnn_dropout": rnn_dropout})
        self.rnn_type, self.output_size = rnn_type, rnn_size
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


@dataclass(frozen=True)
class PrefixConfig:
    """The prefix's settings, one object for the LM, the generator, :func:`make_prefix` and the
    transfer's messages (nanoGPT's ``GPTConfig``): the keys of the same names in the ``lm``
    and ``model`` configs (``conf/lm/*.yaml``; the generator's follow the LM's). An RNN
    (``rnn_type``, ``rnn_dropout``) leaves the Transformer settings None; a Transformer has
    width ``rnn_size`` (d_model) and ``num_layers`` blocks of ``n_heads`` heads."""

    arch: str = "rnn"
    embed_size: int = 256
    rnn_size: int = 256
    rnn_type: str | None = "gru"
    num_layers: int = 1
    embed_dropout: float = 0.0
    rnn_dropout: float = 0.0
    n_heads: int | None = None
    ff_size: int | None = None
    max_positions: int | None = None
    positions: str | None = None
    block_dropout: float | None = None

    @classmethod
    def of(cls, settings: Mapping) -> PrefixConfig:
        """The prefix settings of a mapping (an ``lm``/``model`` config, a model's hparams);
        its other keys are ignored."""
        return cls(**{f.name: settings[f.name] for f in fields(cls) if f.name in settings})

    def summary(self) -> str:
        """In words, for error messages."""
        if self.arch == "hf":  # lm=hf: its sizes are its folder's (caplm/models/hf_prefix.py)
            return "a Hugging Face model (lm.path)"
        layers = f"{self.num_layers} layer(s)"
        if self.arch == "transformer":
            return (
                f"transformer, embed {self.embed_size}, d_model {self.rnn_size}, {layers}, "
                f"{self.n_heads} heads"
            )
        return f"{self.rnn_type}, embed {self.embed_size}, rnn {self.rnn_size}, {layers}"


def make_prefix(vocab_size: int, config: PrefixConfig) -> PrefixEncoder | TransformerPrefix:
    """The prefix of family ``config.arch``: an RNN (the Transformer settings must be None) or
    a Transformer (``rnn_type`` and ``rnn_dropout`` unused)."""
    c = config
    if c.arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {c.arch!r}")
    given = {k: getattr(c, k) for k in TRANSFORMER_KEYS}
    if c.arch == "rnn":
        foreign = [k for k, v in given.items() if v is not None]
        if foreign:
            raise ValueError(
                f"{', '.join(foreign)}: Transformer settings, but arch is rnn; remove them "
                "or set arch: transformer"
            )
        return PrefixEncoder(vocab_size, c.embed_size, c.rnn_size, c.rnn_type, c.num_layers,
                             c.embed_dropout, c.rnn_dropout)  # fmt: skip
    if c.n_heads is None:
        raise ValueError("arch: transformer needs n_heads (attention heads per block)")
    settings = {k: TRANSFORMER_DEFAULTS[k] if given[k] is None else given[k]
                for k in TRANSFORMER_DEFAULTS}  # fmt: skip
    return TransformerPrefix(
        vocab_size,
        c.embed_size,
        c.rnn_size,
        c.num_layers,
        c.n_heads,
        4 * c.rnn_size if c.ff_size is None else c.ff_size,
        settings["max_positions"],
        settings["positions"],
        c.embed_dropout,
        settings["block_dropout"],
    )


def check_same_heads(lm_cfg, model_cfg) -> None:
    """A Transformer LM's weights fit a generator prefix with other ``n_heads`` (the shapes are
    the same), but its attention would be split into other heads: refused, naming both."""
    if model_cfg.get("arch", "rnn") != "transformer" or lm_cfg.get("arch", "rnn") != "transformer":
        return
    if lm_cfg.get("n_heads") != model_cfg.get("n_heads"):
        raise ValueError(
            f"cannot transfer: the language model (lm={lm_cfg.get('name')}) has "
            f"n_heads={lm_cfg.get('n_heads')} but the caption generator's prefix has "
            f"model.n_heads={model_cfg.get('n_heads')}; the weights would be split into other "
            "heads. Keep model.n_heads equal to lm.n_heads (as conf/model/merge.yaml does)."
        )
