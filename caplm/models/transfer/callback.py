"""Copying and freezing the prefix, and the ``WeightTransfer`` callback that does it.

The generator's prefix encoder (embedding + RNN + its learned initial state, or embedding +
positions + Transformer blocks) has the same parameter names and shapes as the language
model's, except the embedding's number of rows: the two vocabularies differ, so embedding
rows are copied by token string. The modes and parts are defined in
:mod:`caplm.models.transfer.modes`; a part is named by the generator's prefix architecture
(``arch``), and an LM of another architecture, or of other layers, is refused by name.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from caplm.data.text import SPECIALS
from caplm.models.transfer.modes import ARCH_LABELS, TransferMode, get_mode, part_prefixes
from caplm.results import keyed

log = logging.getLogger(__name__)

EMBEDDING = "prefix.embedding.weight"
#: The output layer's parameters (``transfer.parts`` ``output``): rows by token, as the embedding.
OUTPUT_WEIGHT, OUTPUT_BIAS = "output.weight", "output.bias"


@dataclass
class TransferStats:
    mode: str
    rows: int = 0  # embedding rows copied (ordinary words, special tokens excluded)
    rows_missing: int = 0  # generator words the LM lacks (kept at random init)
    params_transferred: int = 0  # scalar values copied
    params_frozen: int = 0  # scalar values frozen

    def as_results(self) -> dict:
        return keyed("transfer", {k: v for k, v in asdict(self).items() if k != "mode"})


def selected_names(module: torch.nn.Module, parts) -> list[str]:
    """Names of the generator parameters that belong to the transferred parts."""
    prefixes = _name_prefixes(module.prefix, parts)
    return [n for n, _ in module.named_parameters() if n.startswith(prefixes)]


def _name_prefixes(prefix: torch.nn.Module, parts) -> tuple[str, ...]:
    """The parameter-name prefixes ``parts`` select in ``prefix`` (its architecture, blocks)."""
    if hasattr(prefix, "part_prefixes"):  # a Hugging Face prefix finds its parts itself
        return tuple(p for part in parts for p in prefix.part_prefixes(part))
    layers = len(prefix.blocks) if hasattr(prefix, "blocks") else None
    return tuple(p for part in parts for p in part_prefixes(part, prefix.arch, layers))


def state_arch(state: dict) -> str:
    """The prefix architecture a model's state dict is of: ``hf``, ``transformer`` or ``rnn``."""
    if any(k.startswith("prefix.body.") for k in state):
        return "hf"
    return "transformer" if any(k.startswith("prefix.blocks.") for k in state) else "rnn"


@torch.no_grad()
def transfer_prefix(
    generator: torch.nn.Module,
    mode: str | TransferMode,
    parts=("embedding", "rnn"),
    lm_state: dict[str, torch.Tensor] | None = None,
    row_index: torch.Tensor | None = None,
    describe: str = "",
) -> TransferStats:
    """Copy (a mode that ``uses_lm``: ``init``, ``frozen``, the methods) and/or freeze (a mode
    that ``freezes``: ``frozen``, ``random_frozen``, ``wise_ft``'s first fit) the prefix.

    ``lm_state`` is the LM's state dict (names as in the generator: ``prefix.*``);
    ``row_index[i]`` is the LM id of the generator's token ``i``, or -1 where the LM lacks it.
    """
    mode = get_mode(mode)
    stats = TransferStats(mode.name)
    names = selected_names(generator, parts)
    params = dict(generator.named_parameters())
    if mode.uses_lm:
        if lm_state is None or row_index is None:
            raise ValueError(
                f"transfer.mode={mode.name} needs a language model and a vocabulary map"
            )
        _check_architecture(generator, parts, names, lm_state, describe)
        rnn_size = generator.prefix.output_size
        for name in names:
            _copy(params[name], name, lm_state, row_index, stats, describe, rnn_size)
    if mode.freezes:
        for name in names:
            params[name].requires_grad_(False)
            stats.params_frozen += params[name].numel()
    new = getattr(generator, "new_in_prefix", ())
    if mode.uses_lm and new:
        log.info("transfer: %s are the architecture's own (new, not from the LM)", ", ".join(new))
    log.info("transfer %s of %s: %s", mode.name, ",".join(parts), stats)
    return stats


def _check_architecture(generator, parts, names, lm_state: dict, describe: str) -> None:
    """The LM's prefix is of the generator's architecture, with the same parameters in the
    transferred parts (no block or layer left behind on either side)."""
    lm_arch, gen_arch = state_arch(lm_state), generator.prefix.arch
    if lm_arch != gen_arch:
        raise ValueError(
            f"cannot transfer: the language model's prefix is {ARCH_LABELS[lm_arch]} "
            f"(arch: {lm_arch}) but the caption generator's is {ARCH_LABELS[gen_arch]} "
            f"(arch: {gen_arch}). {describe} The generator's prefix must be the LM's "
            "architecture: keep model.arch and its sizes equal to the lm config's (as "
            "conf/model/merge.yaml does)."
        )
    prefixes = _name_prefixes(generator.prefix, parts)
    ours = {n for n in names if n.startswith("prefix.")}
    theirs = {n for n in lm_state if n.startswith(prefixes) and n.startswith("prefix.")}
    lacking = getattr(generator, "untransferable", {})  # an architecture with no place for them
    for name in sorted(theirs & lacking.keys()):
        log.warning("transfer: the language model's %s cannot move: %s", name, lacking[name])
    theirs -= lacking.keys()
    if ours != theirs:
        lm_only, gen_only = sorted(theirs - ours), sorted(ours - theirs)
        said = [f"only the language model has {', '.join(lm_only[:3])}" if lm_only else "",
                f"only the caption generator has {', '.join(gen_only[:3])}" if gen_only else ""]  # fmt: skip
        raise ValueError(
            f"cannot transfer {', '.join(parts)}: the two prefixes differ in their layers "
            f"({'; '.join(s for s in said if s)}). {describe} The generator's prefix must "
            "have the LM's layers: keep model.num_layers and rnn_type equal to the lm config's."
        )


def _copy(
    param, name, lm_state, row_index, stats: TransferStats, describe: str, rnn_size: int = 0
) -> None:
    if name not in lm_state:
        raise ValueError(f"the language model has no parameter {name!r} to transfer")
    source = lm_state[name].to(param.device, param.dtype)
    if name in (OUTPUT_WEIGHT, OUTPUT_BIAS):
        _copy_output(param, name, source, row_index, stats, describe, rnn_size)
    elif name == EMBEDDING:
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


def _copy_output(param, name, source, row_index, stats, describe: str, rnn_size: int) -> None:
    """The LM's output layer into the generator's: the row of each word both vocabularies
    have; of the weight, the columns that read the RNN output (the first ``rnn_size``, which
    are all of them with ``merge=add``); the image's columns keep their initialisation."""
    weight = name == OUTPUT_WEIGHT
    fits = len(row_index) == len(param) and (
        not weight or (source.shape[1] == rnn_size and param.shape[1] >= rnn_size)
    )
    if not fits:
        raise ValueError(_mismatch(name, tuple(source.shape), tuple(param.shape), describe))
    have = row_index >= 0
    if weight:
        param[have, :rnn_size] = source[row_index[have]]
        stats.params_transferred += int(have.sum()) * rnn_size
    else:
        param[have] = source[row_index[have]]
        stats.params_transferred += int(have.sum())


def _mismatch(name, lm_shape, gen_shape, describe: str) -> str:
    return (
        f"cannot transfer {name}: the language model's is {lm_shape} but the caption "
        f"generator's is {gen_shape}. {describe} The generator's prefix must have the LM's "
        "sizes: keep model.arch/embed_size/rnn_size/rnn_type/num_layers (and a Transformer's "
        "n_heads/ff_size/max_positions) equal to the lm config's."
    )


class WeightTransfer(Callback):
    """Applies :func:`transfer_prefix` when fitting starts (before the optimiser exists).

    On resume from a checkpoint the copied weights are then overwritten by the checkpoint's,
    which is what they had become; frozen parameters stay out of the optimiser.
    """

    def __init__(
        self,
        mode: str | TransferMode,
        parts=("embedding", "rnn"),
        lm_state=None,
        row_index=None,
        describe: str = "",
    ):
        mode = get_mode(mode)
        self.mode, self.parts = mode, tuple(parts)
        self.lm_state, self.row_index, self.describe = lm_state, row_index, describe
        self.stats: TransferStats | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or self.stats is not None:
            return
        self.stats = transfer_prefix(
            pl_module, self.mode, self.parts, self.lm_state, self.row_index, self.describe
        )


def copied_masks(
    generator: torch.nn.Module, parts, row_index: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """For each transferred parameter, a boolean mask of the entries :func:`transfer_prefix`
    copies from the LM: all of them, but for the embedding and the output layer only the rows
    of words the LM has (and of the output weight only the columns that read the RNN)."""
    params = dict(generator.named_parameters())
    rnn_size = generator.prefix.output_size
    masks = {}
    for name in selected_names(generator, parts):
        mask = torch.ones_like(params[name], dtype=torch.bool)
        if name in (EMBEDDING, OUTPUT_WEIGHT, OUTPUT_BIAS) and row_index is not None:
            mask[(row_index < 0).to(mask.device)] = False
        if name == OUTPUT_WEIGHT:
            mask[:, rnn_size:] = False
        masks[name] = mask
    return masks
