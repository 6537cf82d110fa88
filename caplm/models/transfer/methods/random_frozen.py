"""``transfer=random_frozen``: the study's control. Nothing is copied; the untrained, randomly
initialised parts are frozen, which tells how much of transfer's effect is the LM's training
and how much just a fixed prefix encoder."""

from __future__ import annotations

from caplm.models.transfer.modes import TransferMode


class RandomFrozen(TransferMode):
    name = "random_frozen"
    uses_lm = False
    freezes = True
