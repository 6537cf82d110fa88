"""``transfer=lora`` (lm=hf only): the parts copied from the LM as for ``init``, then the whole
Hugging Face body frozen and low-rank adapters (LoRA, Hu et al. 2021, via ``peft``) added to its
attention projections (``target_modules``; null: peft's choice for the model type, e.g. GPT-2's
``c_attn``, Llama's ``q_proj``/``v_proj``), trained with the image branch and output layer.
What users of small GPUs do instead of fine-tuning a 1B-parameter prefix end to end.

The adapters are part of the generator from then on: the settings go into its hyperparameters
(``lora``), so a checkpoint rebuilds the same model (a resumed fit, ``python -m caplm.caption``).
"""

from __future__ import annotations

import logging
import warnings

import lightning as L
from lightning.pytorch.callbacks import Callback

from caplm.models.transfer.modes import TransferMode

log = logging.getLogger(__name__)

#: ``conf/transfer/lora.yaml``'s own keys (their defaults are there).
LORA_KEYS = ("r", "lora_alpha", "lora_dropout", "target_modules")


def add_lora(generator, settings: dict) -> tuple[int, int]:
    """Add the adapters to ``generator.prefix.body`` and freeze the rest of the body; returns
    (trainable adapter values, frozen body values)."""
    from peft import LoraConfig, inject_adapter_in_model

    body = getattr(generator.prefix, "body", None)
    if body is None:
        raise ValueError("transfer=lora adapts a Hugging Face prefix: use it with lm=hf")
    targets = settings.get("target_modules")
    config = LoraConfig(
        r=int(settings["r"]),
        lora_alpha=settings["lora_alpha"],
        lora_dropout=settings["lora_dropout"],
        target_modules=list(targets) if targets else None,
    )
    with warnings.catch_warnings():  # GPT-2's Conv1D: peft sets fan_in_fan_out itself
        warnings.filterwarnings("ignore", message="fan_in_fan_out")
        inject_adapter_in_model(config, body)
    trainable = frozen = 0
    for name, p in body.named_parameters():
        adapter = "lora_" in name
        p.requires_grad_(adapter)
        trainable += p.numel() if adapter else 0
        frozen += 0 if adapter else p.numel()
    generator.hparams["lora"] = {k: settings[k] for k in LORA_KEYS}
    return trainable, frozen


class LoRA(Callback):
    """Adds the adapters when fitting starts, after :class:`WeightTransfer` has copied the
    parts (and before a checkpoint is restored, whose names then match)."""

    def __init__(self, settings: dict):
        self.settings = {k: settings[k] for k in LORA_KEYS}
        self.done = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or self.done:
            return
        trainable, frozen = add_lora(pl_module, self.settings)
        log.info("LoRA: %d adapter values trained, %d body values frozen", trainable, frozen)
        self.done = True


class LoRAMethod(TransferMode):
    name = "lora"
    needs_parts = True
    keys = LORA_KEYS

    def check(self, t) -> list[tuple[str, str]]:
        r = t.get("r")
        out = []
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            out.append(("r", f"transfer.r={r!r} for transfer=lora; must be an integer >= 1"))
        out += self.number(t, "lora_alpha", lambda v: v > 0, "a number > 0")
        out += self.number(t, "lora_dropout", lambda v: 0 <= v < 1, "a number in [0, 1)")
        return out

    def callbacks(self, t, lm_state=None, row_index=None) -> list:
        return [LoRA(dict(t))]
