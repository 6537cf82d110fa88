"""``transfer=l2_sp``: fine-tuning pulled towards the LM's weights (Li, Grandvalet & Davoine
2018, "Explicit inductive bias for transfer learning with convolutional networks").

The penalty ``alpha/2 ||theta_parts - theta_LM||^2 + beta/2 ||theta_rest||^2`` is added to
the *loss* (so Adam normalises its gradient with the rest, unlike weight decay added to the
gradients). ``theta_parts`` are the entries copied from the LM; ``theta_rest`` every other
trainable entry (the image and output layers, and embedding rows of words the LM lacks).
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from caplm.models.transfer.callback import copied_masks
from caplm.models.transfer.modes import TransferMode


class L2SP(Callback):
    """Snapshots the transferred weights when fitting starts (after :class:`WeightTransfer`
    copied them; on resume, before the checkpoint's weights replace them, so the anchor is
    always the LM's) and adds :meth:`penalty` to the generator's training loss."""

    name = "l2_sp"

    def __init__(self, alpha: float, beta: float, parts, row_index=None):
        if alpha < 0 or beta < 0:
            raise ValueError(f"transfer.alpha and transfer.beta must be >= 0, got {alpha}, {beta}")
        self.alpha, self.beta, self.parts, self.row_index = alpha, beta, tuple(parts), row_index
        self.anchors: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and self.anchors is None:
            self.anchor(pl_module)
            pl_module.loss_terms.append(self)

    @torch.no_grad()
    def anchor(self, module: torch.nn.Module) -> None:
        """Take the module's current transferred weights as theta_LM."""
        params = dict(module.named_parameters())
        masks = copied_masks(module, self.parts, self.row_index)
        self.anchors = {n: (params[n].detach().clone(), m) for n, m in masks.items()}

    def penalty(self, module: torch.nn.Module) -> torch.Tensor:
        if self.anchors is None:
            raise RuntimeError("L2SP.anchor(module) must run before the penalty")
        sp = rest = None
        for name, p in module.named_parameters():
            if not p.requires_grad:
                continue
            if name in self.anchors:
                ref, mask = self.anchors[name]
                if ref.device != p.device:
                    ref, mask = ref.to(p.device), mask.to(p.device)
                    self.anchors[name] = ref, mask
                sp = _add(sp, ((p - ref)[mask] ** 2).sum())
                rest = _add(rest, (p[~mask] ** 2).sum())
            else:
                rest = _add(rest, (p**2).sum())
        zero = next(module.parameters()).new_zeros(())
        sp, rest = zero if sp is None else sp, zero if rest is None else rest
        return self.alpha / 2 * sp + self.beta / 2 * rest

    def __call__(self, module, batch) -> tuple[str, torch.Tensor]:
        return self.name, self.penalty(module)


def _add(total, value):
    return value if total is None else total + value


class L2SPMethod(TransferMode):
    name = "l2_sp"
    needs_parts = True
    keys = ("alpha", "beta")

    def check(self, t) -> list[tuple[str, str]]:
        return self.non_negative_keys(t)

    def callbacks(self, t, lm_state=None, row_index=None) -> list:
        return [L2SP(t["alpha"], t["beta"], list(t["parts"]), row_index)]
