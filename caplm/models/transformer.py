"""The Transformer prefix encoder: a decoder-only, pre-norm Transformer over a caption prefix.

The drop-in alternative to the RNN of :mod:`caplm.models.prefix` (``arch: transformer`` in
``conf/lm/*.yaml``): the same interface, ``forward(tokens, state) -> (outputs, state)`` and
``initial_state(batch_size)``, and like the RNN it never sees the image. Per position::

    x = dropout(embed_proj(embedding(token)) + position)
    x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))      # each block, causal self-attention
    out = ln_f(x)                                      # the final LayerNorm

The "state" is a key/value cache, one tensor (num_layers, B, 2, n_heads, S, head_size) of the
keys and values of the S positions seen so far (S is also the next token's position), so
incremental decoding costs one position per step. Its rows are in dim 1, as an RNN state's,
so the beam search reorders it the same way.

Positions are learned (a table of ``max_positions`` rows) or sinusoidal (Vaswani et al.
2017; a fixed table, no parameters). A sequence longer than ``max_positions`` is scored, when
given whole, with a sliding window of ``max_positions`` tokens (each position sees at least
the ``max_positions / 2`` tokens before it); incremental decoding stops at ``max_positions``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from caplm.data.text import PAD_ID
from caplm.models.common import check_dropouts, check_sizes

ARCH = "transformer"
POSITIONS = ("learned", "sinusoidal")


class SelfAttention(nn.Module):
    """Causal multi-head self-attention, reading and extending a key/value cache."""

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, d) at positions S..S+T-1; cache (B, 2, H, S, head_size) -> (B, T, d), the
        cache of all S + T positions."""
        B, T, d = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        k = torch.cat([cache[:, 0].to(k.dtype), k], 2)  # (B, H, S + T, head_size)
        v = torch.cat([cache[:, 1].to(v.dtype), v], 2)
        S = cache.size(3)
        causal = torch.ones(T, S + T, dtype=torch.bool, device=x.device).tril(S)  # S+i sees <= S+i
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=causal, dropout_p=p)
        y = y.transpose(1, 2).reshape(B, T, d)
        return self.resid_dropout(self.proj(y)), torch.stack([k, v], 1)


class MLP(nn.Module):
    def __init__(self, d_model: int, ff_size: int, dropout: float):
        super().__init__()
        self.fc = nn.Linear(d_model, ff_size)
        self.proj = nn.Linear(ff_size, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm: LayerNorm before attention and before the MLP, residual around each."""

    def __init__(self, d_model: int, n_heads: int, ff_size: int, dropout: float):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, n_heads, dropout)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, ff_size, dropout)

    def forward(self, x: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, cache = self.attn(self.ln_1(x), cache)
        x = x + a
        return x + self.mlp(self.ln_2(x)), cache


def sinusoid_table(max_positions: int, d_model: int) -> torch.Tensor:
    """(max_positions, d_model): sin at even, cos at odd columns, wavelengths 2 pi .. 10000 2 pi."""
    pos = torch.arange(max_positions, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(1e4) / d_model))
    table = torch.zeros(max_positions, d_model)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)[:, : d_model // 2]
    return table


class TransformerPrefix(nn.Module):
    """Embedding (+ a projection when ``embed_size != d_model``) + positions -> dropout ->
    ``num_layers`` pre-norm blocks -> the final LayerNorm. Outputs are ``d_model`` wide."""

    arch = ARCH

    def __init__(
        self,
        vocab_size: int,
        embed_size: int,
        d_model: int,
        num_layers: int,
        n_heads: int,
        ff_size: int,
        max_positions: int,
        positions: str = "learned",
        embed_dropout: float = 0.0,
        block_dropout: float = 0.0,
    ):
        super().__init__()
        check_sizes({"vocab_size": vocab_size, "embed_size": embed_size,
                     "rnn_size (d_model)": d_model, "num_layers": num_layers, "n_heads": n_heads,
                     "ff_size": ff_size, "max_positions": max_positions})  # fmt: skip
        if d_model % n_heads:
            raise ValueError(
                f"rnn_size (the Transformer's width d_model, {d_model}) must be a multiple of "
                f"n_heads ({n_heads}): each head gets d_model / n_heads of it"
            )
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {', '.join(POSITIONS)}, got {positions!r}")
        check_dropouts({"embed_dropout": embed_dropout, "block_dropout": block_dropout})
        self.output_size, self.max_positions = d_model, max_positions
        self.n_heads, self.head_size = n_heads, d_model // n_heads
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=PAD_ID)
        self.embed_proj = nn.Linear(embed_size, d_model) if embed_size != d_model else nn.Identity()
        if positions == "learned":
            self.positions = nn.Embedding(max_positions, d_model)
        else:
            self.register_buffer(
                "sinusoid", sinusoid_table(max_positions, d_model), persistent=False
            )
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, ff_size, block_dropout) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """An empty key/value cache: (num_layers, batch_size, 2, n_heads, 0, head_size)."""
        w = self.norm.weight
        shape = (len(self.blocks), batch_size, 2, self.n_heads, 0, self.head_size)
        return torch.zeros(shape, dtype=w.dtype, device=w.device)

    def position_vectors(self, start: int, length: int) -> torch.Tensor:
        """(length, d_model): the vectors of positions start .. start + length - 1."""
        if hasattr(self, "positions"):
            index = torch.arange(start, start + length, device=self.positions.weight.device)
            return self.positions(index)
        return self.sinusoid[start : start + length]

    def forward(
        self, tokens: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, T) after the S positions cached in ``state`` (None: none) -> outputs
        (B, T, d_model) and the cache of all S + T positions."""
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be (batch, time), got shape {tuple(tokens.shape)}")
        if state is None:
            state = self.initial_state(tokens.size(0))
        start, T = state.size(-2), tokens.size(1)
        if start + T > self.max_positions:
            if start == 0:
                return self._windowed(tokens)
            raise ValueError(
                f"the Transformer prefix has max_positions={self.max_positions}, and decoding "
                f"reached position {start + T - 1}: raise max_positions (conf/lm) or decode "
                "fewer tokens"
            )
        x = self.embed_proj(self.embedding(tokens)) + self.position_vectors(start, T)
        x = self.embed_dropout(x)
        caches = []
        for block, cache in zip(self.blocks, state, strict=True):
            x, cache = block(x, cache)
            caches.append(cache)
        return self.norm(x), torch.stack(caches)

    def _windowed(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A sequence longer than max_positions W: the first W outputs from one window, then
        each next W / 2 from the window of W tokens that ends with them. The cache returned is
        the last window's (full: it cannot be extended)."""
        W, T = self.max_positions, tokens.size(1)
        stride = max(1, W // 2)
        out, state = self(tokens[:, :W])
        outs = [out]
        for lo in range(W, T, stride):
            hi = min(lo + stride, T)
            out, state = self(tokens[:, hi - W : hi])
            outs.append(out[:, lo - hi :])
        return torch.cat(outs, 1), state
