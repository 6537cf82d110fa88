"""``transfer=init``: the LM's parts copied as the generator's initialisation, then
fine-tuned with the rest of it."""

from __future__ import annotations

from caplm.models.transfer.modes import TransferMode


class Init(TransferMode):
    name = "init"
