"""``transfer=aux_lm``: the caption loss plus ``gamma`` x the language-model loss of the
transferred LM's own output layer on the same caption prefixes, so the prefix keeps its LM
skill while it adapts (the auxiliary LM objective of Chronopoulou et al. 2019, "An
embarrassingly simple approach for transfer learning from pretrained language models").

The LM head is the LM's output layer, kept fixed (not trained, not in the checkpoint: it is
the LM's, rebuilt from the cached LM on resume). Its input is the generator's prefix output
of the very forward pass the caption loss uses (same dropout masks), caught by a forward
hook, so the aux term costs one extra matrix product. Targets are the caption's next words in
the LM's vocabulary (words the LM lacks are not scored). ``gamma`` goes linearly from
``gamma`` in the first epoch to ``gamma_end`` in epoch ``max_epochs``.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback

from caplm.data.text import PAD_ID
from caplm.models.transfer.modes import TransferMode

IGNORE = -1  # a target the LM head does not score


def gamma_at(epoch: int, max_epochs: int, gamma: float, gamma_end: float) -> float:
    """The aux weight in (0-based) ``epoch`` of ``max_epochs``: linear, gamma -> gamma_end."""
    if max_epochs <= 1:
        return float(gamma)
    return float(gamma + (gamma_end - gamma) * min(epoch, max_epochs - 1) / (max_epochs - 1))


class AuxLM(Callback):
    name = "aux_lm"

    def __init__(self, gamma: float, gamma_end: float, lm_state: dict, row_index: torch.Tensor):
        if gamma < 0 or gamma_end < 0:
            raise ValueError(f"transfer.gamma and gamma_end must be >= 0, got {gamma}, {gamma_end}")
        self.gamma, self.gamma_end = float(gamma), float(gamma_end)
        self.weight = lm_state["output.weight"].detach().clone()
        self.bias = lm_state["output.bias"].detach().clone()
        # generator id -> LM id; words the LM lacks (and padding) become -1 (ignored)
        self.target_map = torch.where(row_index >= 0, row_index, IGNORE)
        self._h: torch.Tensor | None = None
        self._hooked = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or self._hooked:
            return
        pl_module.prefix.register_forward_hook(self._catch)
        pl_module.loss_terms.append(self)
        self._hooked = True

    def _catch(self, module, args, output) -> None:
        self._h = output[0] if module.training else None

    def gamma_now(self, module: L.LightningModule) -> float:
        trainer = module._trainer  # None outside a fit: the first epoch's weight
        if trainer is None:
            return self.gamma
        return gamma_at(trainer.current_epoch, trainer.max_epochs or 1, self.gamma, self.gamma_end)

    def lm_loss(self, h: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The LM head's token-mean cross-entropy of the next words given prefix outputs h."""
        if self.weight.device != h.device:
            self.weight, self.bias = self.weight.to(h.device), self.bias.to(h.device)
            self.target_map = self.target_map.to(h.device)
        logits = F.linear(h, self.weight.to(h.dtype), self.bias.to(h.dtype))
        lm_targets = self.target_map[targets].masked_fill(targets == PAD_ID, IGNORE)
        if not (lm_targets != IGNORE).any():
            return h.new_zeros(())
        return F.cross_entropy(logits.flatten(0, 1), lm_targets.flatten(), ignore_index=IGNORE)

    def __call__(self, module, batch) -> tuple[str, torch.Tensor]:
        if self._h is None:
            raise RuntimeError("aux_lm: no prefix output caught in this training step")
        h, self._h = self._h, None
        loss = self.lm_loss(h, batch["targets"])
        module.log("train/aux_lm_loss", loss.detach(), batch_size=h.size(0))  # unweighted
        return self.name, self.gamma_now(module) * loss


class AuxLMMethod(TransferMode):
    name = "aux_lm"
    needs_parts = True
    keys = ("gamma", "gamma_end")

    def check(self, t) -> list[tuple[str, str]]:
        return self.non_negative_keys(t)

    def callbacks(self, t, lm_state=None, row_index=None) -> list:
        return [AuxLM(t["gamma"], t["gamma_end"], lm_state, row_index)]
