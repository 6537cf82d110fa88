"""The language model: the prefix encoder (embedding + RNN, or a Transformer: ``arch``) and a
softmax over the vocabulary.

It is the caption generator without the image branch; its ``prefix`` is what transfers. The
Transformer's settings (``n_heads`` ...) are :func:`caplm.models.prefix.make_prefix`'s.
"""

from __future__ import annotations

import torch
from torch import nn

from caplm.data.text import BOS_ID, EOS_ID, PAD_ID
from caplm.models.common import (
    TokenModel,
    check_training_args,
    evaluating,
    init_parameters,
    take_rows,
    target_logprobs,
)
from caplm.models.prefix import PrefixConfig, make_prefix


class LanguageModel(TokenModel):
    #: How it trains with perturbed inputs (:class:`caplm.models.robust.RobustTraining`, set
    #: by the LM cache from ``lm.fit.robust``); None: plainly. Not a weight, not saved.
    robust = None

    def __init__(
        self,
        vocab_size: int,
        embed_size: int = 256,
        rnn_size: int = 256,
        rnn_type: str = "gru",
        num_layers: int = 1,
        embed_dropout: float = 0.1,
        rnn_dropout: float = 0.1,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        init: str = "xavier_normal",
        arch: str = "rnn",
        n_heads: int | None = None,
        ff_size: int | None = None,
        max_positions: int | None = None,
        positions: str | None = None,
        block_dropout: float | None = None,
    ):
        super().__init__()
        check_training_args(optimizer, lr, weight_decay, init)
        self.save_hyperparameters()
        self.prefix = make_prefix(vocab_size, PrefixConfig.of(self.hparams))
        self.output = nn.Linear(self.prefix.output_size, vocab_size)
        init_parameters(self, init)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (B, T) -> next-token logits (B, T, V)."""
        return self.output(self.prefix(inputs)[0])

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if self.robust is None:
            return super().training_step(batch, batch_idx)
        return self.robust.training_step(self, batch)

    def real_logits(self, batch: dict, rows: torch.Tensor | None) -> torch.Tensor:
        return self.output(take_rows(self.prefix(batch["inputs"])[0], rows))

    def token_logprobs(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Natural-log probability of each target token (B, T), 0 where the target is pad.

        Runs in eval mode without gradients (the module's mode is restored after)."""
        with evaluating(self):
            return target_logprobs(self(inputs.to(self.device)), targets.to(self.device))

    def sample(
        self,
        num: int,
        max_len: int = 20,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> list[list[int]]:
        """``num`` sentences by ancestral sampling from ``<bos>``, each ending at ``<eos>`` or
        after ``max_len`` tokens; the ids returned hold no ``<bos>``, ``<eos>`` or ``<pad>``
        (``<unk>`` may appear: it is part of the LM's distribution).

        ``generator`` makes the draws reproducible; it may live on another device than the
        model (a CPU generator with a CUDA model), the draws are made where it lives.
        """
        if num < 0 or max_len < 0:
            raise ValueError(f"num and max_len must be >= 0, got {num} and {max_len}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        limit = self.prefix.max_positions
        if limit is not None and max_len > limit:
            raise ValueError(
                f"max_len={max_len} words need {max_len} positions, but the Transformer LM "
                f"has max_positions={limit}; lower max_len or raise lm.max_positions"
            )
        if num == 0:
            return []
        steps = []
        with evaluating(self):
            prev = torch.full((num,), BOS_ID, dtype=torch.long, device=self.device)
            done = torch.zeros(num, dtype=torch.bool, device=self.device)
            state = None
            for _ in range(max_len):
                out, state = self.prefix(prev[:, None], state)
                logits = self.output(out[:, 0]) / temperature
                logits[:, [PAD_ID, BOS_ID]] = float("-inf")  # never valid as a next word
                probs = logits.softmax(-1)
                if generator is not None:
                    probs = probs.to(generator.device)
                prev = torch.multinomial(probs, 1, generator=generator)[:, 0].to(self.device)
                steps.append(prev)
                done |= prev == EOS_ID
                if done.all():
                    break
        rows = torch.stack(steps, 1).tolist() if steps else [[] for _ in range(num)]
        return [row[: row.index(EOS_ID)] if EOS_ID in row else row for row in rows]
