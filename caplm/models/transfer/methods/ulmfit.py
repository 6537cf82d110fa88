"""``transfer=ulmfit``: ULMFiT's fine-tuning (Howard & Ruder 2018, "Universal language model
fine-tuning for text classification"): discriminative learning rates, a slanted triangular
schedule and gradual unfreezing.

The layer groups, top first (:func:`ulmfit_groups`): ``head``
(the image and output layers and every part not transferred), ``rnn`` (the transferred RNN
parts, or Transformer blocks), ``embedding``. Group ``k`` (0 = head) learns at
``lr / lr_factor**k`` and is frozen until epoch ``k`` (0-based): one more group trains each
epoch, from the top. Every group is
in the optimiser from the start (a frozen one has no gradient, so the optimiser skips it:
it does not move), so the one schedule drives them all, and resuming is plain. Early stopping
counts only the epochs from the last unfreezing on (its count is reset until then).
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import BaseFinetuning

from caplm.models.common import OPTIMIZERS
from caplm.models.transfer.callback import selected_names
from caplm.models.transfer.modes import TransferMode, part_name

#: The layer groups, top (trained from the first epoch) to bottom, and the parts in each below
#: the head; the head is everything else (the image layer, the output layer, and the parts not
#: transferred). ``rnn`` is the sequence model, an RNN's or a Transformer's blocks
#: (``blocks:I-J`` included); a Transformer's positions go with its embedding unless ``rnn``
#: names them.
ULMFIT_GROUPS = {
    "rnn": ("rnn", "rnn_input", "rnn_recurrent", "rnn_bias", "init_state", "blocks", "final_norm"),
    "embedding": ("embedding", "positions"),
}


def ulmfit_groups(parts) -> list[str]:
    """The layer groups for ``transfer.parts``, top first: ``head``, then ``rnn`` and
    ``embedding`` where some of their parts are transferred."""
    names = {part_name(p) for p in parts}
    return ["head", *(g for g, members in ULMFIT_GROUPS.items() if set(members) & names)]


def slanted_triangular(step: int, total: int, cut_frac: float, ratio: float) -> float:
    """The learning-rate multiplier at ``step`` of ``total``: rising linearly from 1/ratio to
    1 over the first ``cut_frac`` of the steps, then falling linearly back to 1/ratio."""
    cut = max(1, int(total * cut_frac))
    if step < cut:
        p = step / cut
    else:
        p = max(0.0, 1 - (step - cut) / max(1, total - cut))
    return (1 + p * (ratio - 1)) / ratio


def group_names(module: torch.nn.Module, parts) -> list[list[str]]:
    """The parameter names of each of ulmfit's groups, top (head) first."""
    groups = ulmfit_groups(parts)
    below, taken = {}, set()
    for g in groups[1:]:  # a parameter two groups' parts name goes to the upper one
        names = selected_names(module, [p for p in parts if part_name(p) in ULMFIT_GROUPS[g]])
        below[g] = [n for n in names if n not in taken]
        taken.update(names)
    head = [n for n, _ in module.named_parameters() if n not in taken]
    return [head, *below.values()]


class ULMFiT(BaseFinetuning):
    """Gradual unfreezing (Lightning's fine-tuning callback), and the discriminative rates
    and schedule as the generator's optimiser."""

    def __init__(self, parts, lr_factor: float, cut_frac: float, ratio: float):
        super().__init__()
        self.parts, self.lr_factor = tuple(parts), float(lr_factor)
        self.cut_frac, self.ratio = float(cut_frac), float(ratio)
        self.groups: list[list[str]] = []

    @property
    def last_unfreeze(self) -> int:
        """The (0-based) epoch in which the last group starts training."""
        return len(self.groups) - 1

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        self.groups = group_names(pl_module, self.parts)
        if len(self.groups) < 2:
            raise ValueError(f"transfer=ulmfit: transfer.parts={list(self.parts)} leaves one "
                             "layer group; nothing to unfreeze gradually")  # fmt: skip
        params = dict(pl_module.named_parameters())
        for names in self.groups[1:]:
            for n in names:
                params[n].requires_grad_(False)
        pl_module.optimizer_factory = self.configure_optimizers

    def finetune_function(self, pl_module, epoch: int, optimizer) -> None:
        params = dict(pl_module.named_parameters())
        for k, names in enumerate(self.groups):
            if k <= epoch:  # <=, not ==: a resumed fit unfreezes what was unfrozen before
                for n in names:
                    params[n].requires_grad_(True)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        stopping = trainer.early_stopping_callback
        if stopping is not None and trainer.current_epoch <= self.last_unfreeze:
            stopping.wait_count = 0
            stopping.best_score = torch.tensor(torch.inf if stopping.mode == "min" else -torch.inf)

    def configure_optimizers(self, module: L.LightningModule):
        hp = module.hparams
        params = dict(module.named_parameters())
        groups = [
            {"params": [params[n] for n in names], "lr": hp.lr / self.lr_factor**k}
            for k, names in enumerate(self.groups)
            if names
        ]
        optimizer = OPTIMIZERS[hp.optimizer](groups, lr=hp.lr, weight_decay=hp.weight_decay)
        total = max(1, int(module.trainer.estimated_stepping_batches))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: slanted_triangular(step, total, self.cut_frac, self.ratio)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class ULMFiTMethod(TransferMode):
    name = "ulmfit"
    needs_parts = True
    keys = ("lr_factor", "cut_frac", "ratio")

    def check(self, t) -> list[tuple[str, str]]:
        out = [*self.number(t, "lr_factor", lambda v: v >= 1, "a number >= 1"),
               *self.number(t, "cut_frac", lambda v: 0 < v < 1, "a number in (0, 1)"),
               *self.number(t, "ratio", lambda v: v >= 1, "a number >= 1")]  # fmt: skip
        parts = list(t.get("parts") or ())
        groups = ulmfit_groups(parts)
        if len(groups) < 2:
            out.append(("parts", f"transfer=ulmfit with transfer.parts={parts} has one layer "
                        f"group ({groups[0]}): its groups collapse, so there is nothing to "
                        "unfreeze gradually; transfer the embedding and/or an RNN part"))  # fmt: skip
        return out

    def callbacks(self, t, lm_state=None, row_index=None) -> list:
        return [ULMFiT(list(t["parts"]), t["lr_factor"], t["cut_frac"], t["ratio"])]
