"""The weight-transfer callback: an LM's embedding and RNN into a caption generator.

The generator's prefix encoder (embedding + RNN + its learned initial state) has the same
parameter names and shapes as the language model's, except the embedding's number of rows:
the two vocabularies differ, so embedding rows are copied by token string. Modes
(``transfer.mode``):

- ``none``: no transfer; random initialisation (the baseline).
- ``init``: copied from the LM, then fine-tuned with the rest of the generator.
- ``frozen``: copied and frozen (no gradient, not in the optimiser, unchanged by training).
- ``random_frozen``: nothing copied; the untrained, randomly initialised prefix is frozen
  (the study's control: how much of transfer's effect is just a fixed prefix encoder).

``transfer.parts`` picks what moves: ``embedding``, ``rnn`` (the RNN and its initial state).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from caplm.data.text import SPECIALS
from caplm.results import TRANSFER_MODES

log = logging.getLogger(__name__)

MODES = TRANSFER_MODES
PARTS = {"embedding": ("prefix.embedding.",), "rnn": ("prefix.rnn.", "prefix.init_")}
EMBEDDING = "prefix.embedding.weight"


@dataclass
class TransferStats:
    mode: str
    rows: int = 0  # embedding rows copied (ordinary words, special tokens excluded)
    rows_missing: int = 0  # generator words the LM lacks (kept at random init)
    params_transferred: int = 0  # scalar values copied
    params_frozen: int = 0  # scalar values frozen

    def as_results(self) -> dict:
        return {f"transfer/{k}": v for k, v in asdict(self).items() if k != "mode"}


def uses_lm(mode: str) -> bool:
    """Whether a transfer mode needs a trained language model."""
    check_mode(mode)
    return mode in ("init", "frozen")


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"transfer.mode={mode!r} is unknown; choose one of {', '.join(MODES)}")


def selected_names(module: torch.nn.Module, parts) -> list[str]:
    """Names of the generator parameters that belong to the transferred parts."""
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"transfer.parts has {sorted(unknown)}; known parts: {', '.join(PARTS)}")
    prefixes = tuple(p for part in parts for p in PARTS[part])
    return [n for n, _ in module.named_parameters() if n.startswith(prefixes)]


@torch.no_grad()
def transfer_prefix(
    generator: torch.nn.Module,
    mode: str,
    parts=("embedding", "rnn"),
    lm_state: dict[str, torch.Tensor] | None = None,
    row_index: torch.Tensor | None = None,
    describe: str = "",
) -> TransferStats:
    """Copy (``init``/``frozen``) and/or freeze (``frozen``/``random_frozen``) the prefix.

    ``lm_state`` is the LM's state dict (names as in the generator: ``prefix.*``);
    ``row_index[i]`` is the LM id of the generator's token ``i``, or -1 where the LM lacks it.
    """
    check_mode(mode)
    stats = TransferStats(mode)
    names = selected_names(generator, parts)
    params = dict(generator.named_parameters())
    if uses_lm(mode):
        if lm_state is None or row_index is None:
            raise ValueError(f"transfer.mode={mode} needs a language model and a vocabulary map")
        for name in names:
            _copy(params[name], name, lm_state, row_index, stats, describe)
    if mode in ("frozen", "random_frozen"):
        for name in names:
            params[name].requires_grad_(False)
            stats.params_frozen += params[name].numel()
    log.info("transfer %s of %s: %s", mode, ",".join(parts), stats)
    return stats


def _copy(param, name, lm_state, row_index, stats: TransferStats, describe: str) -> None:
    if name not in lm_state:
        raise ValueError(f"the language model has no parameter {name!r} to transfer")
    source = lm_state[name].to(param.device, param.dtype)
    if name == EMBEDDING:
        if source.shape[1:] != param.shape[1:] or len(row_index) != len(param):
            raise ValueError(_mismatch(name, tuple(source.shape), tuple(param.shape), describe))
        have = row_index >= 0
        param[have] = source[row_index[have]]
        words = have[len(SPECIALS) :]
        stats.rows = int(words.sum())
        stats.rows_missing = int((~words).sum())
        stats.params_transferred += int(have.sum()) * param.shape[1]
    else:
        if source.shape != param.shape:
            raise ValueError(_mismatch(name, tuple(source.shape), tuple(param.shape), describe))
        param.copy_(source)
        stats.params_transferred += param.numel()


def _mismatch(name, lm_shape, gen_shape, describe: str) -> str:
    return (
        f"cannot transfer {name}: the language model's is {lm_shape} but the caption "
        f"generator's is {gen_shape}. {describe} The generator's prefix must have the LM's "
        "sizes: keep model.embed_size/rnn_size/rnn_type/num_layers equal to the lm config's."
    )


class WeightTransfer(Callback):
    """Applies :func:`transfer_prefix` when fitting starts (before the optimiser exists).

    On resume from a checkpoint the copied weights are then overwritten by the checkpoint's,
    which is what they had become; frozen parameters stay out of the optimiser.
    """

    def __init__(
        self,
        mode: str,
        parts=("embedding", "rnn"),
        lm_state=None,
        row_index=None,
        describe: str = "",
    ):
        check_mode(mode)
        self.mode, self.parts = mode, tuple(parts)
        self.lm_state, self.row_index, self.describe = lm_state, row_index, describe
        self.stats: TransferStats | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or self.stats is not None:
            return
        self.stats = transfer_prefix(
            pl_module, self.mode, self.parts, self.lm_state, self.row_index, self.describe
        )


VOCAB_POLICIES = ("intersect", "caption")


def generator_vocabulary(caption_vocab, lm_vocab, policy: str = "intersect"):
    """The caption generator's vocabulary under a ``transfer.vocab_policy``.

    ``intersect`` (the study): caption training words the LM also knows, so every word gets a
    transferred row (a small LM vocabulary narrows what the generator can say). ``caption``:
    the caption vocabulary alone. Without an LM it is the caption vocabulary.
    """
    if policy not in VOCAB_POLICIES:
        raise ValueError(
            f"transfer.vocab_policy={policy!r} is unknown; choose one of "
            f"{', '.join(VOCAB_POLICIES)}"
        )
    if lm_vocab is None or policy == "caption":
        return caption_vocab
    return caption_vocab.intersect(lm_vocab)
