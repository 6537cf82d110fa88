"""``transfer=none``: no transfer; the generator starts from random weights (the baseline).
No LM is trained."""

from __future__ import annotations

from caplm.models.transfer.modes import TransferMode


class NoTransfer(TransferMode):
    name = "none"
    uses_lm = False
