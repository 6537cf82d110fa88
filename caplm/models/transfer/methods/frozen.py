"""``transfer=frozen``: the LM's parts copied and frozen (no gradient, not in the optimiser,
unchanged by training)."""

from __future__ import annotations

from caplm.models.transfer.modes import TransferMode


class Frozen(TransferMode):
    name = "frozen"
    freezes = True
