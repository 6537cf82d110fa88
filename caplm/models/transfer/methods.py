"""The callbacks a ``transfer`` config's method adds to the generator's fit (none for the
study's modes, so their fits are unchanged). ``wise_ft``'s two fits are run by
:mod:`caplm.runtime.wise_ft`."""

from __future__ import annotations

from lightning.pytorch.callbacks import Callback

from caplm.models.transfer.aux_lm import AuxLM
from caplm.models.transfer.l2_sp import L2SP
from caplm.models.transfer.modes import check_mode
from caplm.models.transfer.ulmfit import ULMFiT


def method_callbacks(t, lm_state=None, row_index=None) -> list[Callback]:
    """Callbacks (after :class:`WeightTransfer`, which copies first) for transfer config ``t``."""
    mode = t["mode"]
    check_mode(mode)
    parts = list(t["parts"])
    if mode == "l2_sp":
        return [L2SP(t["alpha"], t["beta"], parts, row_index)]
    if mode == "aux_lm":
        return [AuxLM(t["gamma"], t["gamma_end"], lm_state, row_index)]
    if mode == "ulmfit":
        return [ULMFiT(parts, t["lr_factor"], t["cut_frac"], t["ratio"])]
    return []
