"""``model=merge_attention``: merge, with the picture's regions attended from each prefix state.

The prefix (embedding + RNN, or a Transformer) stays image-free, as merge's, so a language
model transfers into it exactly as into merge. The image is a set of R region vectors (B, R,
D) (``data.encoder.regions``, or a features file of shape (N, R, D)); each goes through
merge's image layer (dense, activation, dropout) to a value v_r. At every step the prefix
state h_t attends over them (scaled dot-product, ``attention_heads`` heads)::

    q_t = W_q h_t,  k_r = W_k v_r + p_r,  a_t = softmax_r(q_t . k_r / sqrt(d)),
    c_t = sum_r a_t,r v_r,  logits_t = output(merge(h_t, c_t))

where p_r is a learned embedding of region r's place (``region_positions: learned``; ``none``:
no place). Each head attends with its own slice of q and k and reads its own slice of the
values. A region whose features are all zero is padding (a features file with fewer regions
for some images pads them with zero rows): it is never attended (an image with no real
region attends to nothing, c_t = 0). With one region, a_t = 1 and c_t = v_1: exactly merge.

In beam search the keys and values of each image are computed once, and ride in the
search state beside the prefix's.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from caplm.models.caption_generator import CaptionGenerator, pack_state, unpack_state
from caplm.models.common import (
    check_choice,
    check_sizes,
    evaluating,
    init_parameters,
    take_rows,
)

log = logging.getLogger(__name__)

ARCHITECTURE = "merge_attention"
REGION_POSITIONS = ("learned", "none")


def region_mask(features: torch.Tensor) -> torch.Tensor:
    """(B, R) true for the real regions of features (B, R, D): those not all zero."""
    return (features != 0).any(-1)


class RegionAttention(nn.Module):
    """Scaled dot-product attention of queries (prefix states) over region values."""

    def __init__(self, query_size: int, value_size: int, size: int, heads: int, regions: int,
                 positions: str):  # fmt: skip
        super().__init__()
        check_sizes({"attention_size": size, "attention_heads": heads})
        check_choice("region_positions", positions, REGION_POSITIONS)
        for what, n in (("attention_size", size), ("post_image_size", value_size)):
            if n % heads:
                raise ValueError(
                    f"{what} ({n}) must be a multiple of attention_heads ({heads}): each head "
                    f"gets {what} / attention_heads of it"
                )
        self.heads = heads
        self.query = nn.Linear(query_size, size)
        self.key = nn.Linear(value_size, size)
        self.positions = (
            nn.Parameter(torch.zeros(regions, size)) if positions == "learned" else None
        )

    def keys(self, values: torch.Tensor) -> torch.Tensor:
        """Region keys (B, R, size) of values (B, R, P): per image, computed once."""
        k = self.key(values)
        return k if self.positions is None else k + self.positions

    def forward(
        self, h: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """h (B, T, H), keys (B, R, A), values (B, R, P), mask (B, R) -> the attended vectors
        (B, T, P) and the weights (B, heads, T, R) (0 on padding regions)."""
        B, T, _ = h.shape
        R, n = keys.size(1), self.heads
        q = self.query(h).view(B, T, n, -1).transpose(1, 2)  # (B, n, T, a)
        k = keys.view(B, R, n, -1).transpose(1, 2)  # (B, n, R, a)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.size(-1))  # (B, n, T, R)
        scores = scores.masked_fill(~mask[:, None, None, :], -float("inf"))
        weights = scores.softmax(-1).nan_to_num(0.0)  # no real region: attends to nothing
        v = values.view(B, R, n, -1).transpose(1, 2)  # (B, n, R, p)
        return (weights @ v).transpose(1, 2).reshape(B, T, -1), weights


class MergeAttentionGenerator(CaptionGenerator):
    """Merge with attention over the image's regions (see the module's doc)."""

    architectures = (ARCHITECTURE,)

    def __init__(
        self,
        vocab_size: int,
        feature_size: int,
        attention_size: int = 128,
        attention_heads: int = 1,
        region_positions: str = "learned",
        **kwargs,
    ):
        kwargs.setdefault("architecture", ARCHITECTURE)
        super().__init__(vocab_size, feature_size, **kwargs)
        hp = self.hparams
        # The image layer reads one region at a time (merge's reads them all, flattened).
        self.image[0] = nn.Linear(feature_size, hp.post_image_size)
        self.attention = RegionAttention(
            self.prefix.output_size, hp.post_image_size, attention_size, attention_heads,
            self.image_inputs, region_positions,
        )  # fmt: skip
        init_parameters(self, hp.init)

    def _keys_values(self, features: torch.Tensor):
        """Keys (B, R, A), values (B, R, P) and mask (B, R) of features (B, R, D) (or (B,
        F): one region)."""
        features = self.check_features(features)
        if features.dim() == 2:
            features = features[:, None, :]
        values = self.image(features)
        return self.attention.keys(values), values, region_mask(features)

    def forward(self, features: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        h, _ = self.prefix(inputs)
        attended, _ = self.attention(h, *self._keys_values(features))
        return self.output(self._merge(h, attended))

    def real_logits(self, batch: dict, rows: torch.Tensor | None) -> torch.Tensor:
        h, _ = self.prefix(batch["inputs"])
        attended, _ = self.attention(h, *self._keys_values(batch["features"]))
        return self.output(self._merge(take_rows(h, rows), take_rows(attended, rows)))

    def attention_weights(self, features: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Each step's attention over the regions, averaged over the heads: (B, T, R) for
        features (B, R, D) and inputs (B, T) (``<bos>`` + words: step t predicts word t + 1).
        Runs in eval mode without gradients."""
        with evaluating(self):
            features, inputs = features.to(self.device), inputs.to(self.device)
            h, _ = self.prefix(inputs)
            return self.attention(h, *self._keys_values(features))[1].mean(1)

    def _search_start(self, features: torch.Tensor):
        """Each image's keys, values and mask, computed once, ride in the search state."""

        def step(prev: torch.Tensor, state: tuple[torch.Tensor, ...]):
            *prefix_state, keys, values, mask = state
            h, prefix_state = self.prefix(prev[:, None], unpack_state(prefix_state))
            attended, _ = self.attention(h, keys[0], values[0], mask[0])
            logits = self.output(self._merge(h[:, 0], attended[:, 0]))
            return logits.log_softmax(-1), (*pack_state(prefix_state), keys, values, mask)

        keys, values, mask = self._keys_values(features)
        start = pack_state(self.prefix.initial_state(features.size(0)))
        return step, (*start, keys[None], values[None], mask[None])

    def caption_image_logprobs(self, features, inputs, targets) -> torch.Tensor:
        """Exact batched scoring of every (caption, image) pair: merge's split of the logits
        does not hold here (the image's term depends on h_t). See
        :meth:`CaptionGenerator.pair_logprobs`."""
        return self.pair_logprobs(features, inputs, targets)
