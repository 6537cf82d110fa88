"""``transfer=wise_ft``: weight-space ensembling of a frozen and a fine-tuned generator
(Wortsman et al. 2022, "Robust fine-tuning of zero-shot models").

theta_0 is the generator fitted with the transferred parts frozen (``transfer=frozen``);
theta_1 the same generator fine-tuned end to end from theta_0. Every alpha of the grid gives
``theta_alpha = (1 - alpha) theta_0 + alpha theta_1``, scored on validation (cheaply, by
default: the token cross-entropy, one pass each); the best is kept. The two fits are run by
:mod:`caplm.runtime.wise_ft`; this module is the arithmetic and the choice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from caplm.models.common import evaluating


def interpolate(theta_0: dict, theta_1: dict, alpha: float) -> dict:
    """``(1 - alpha) theta_0 + alpha theta_1`` entry by entry (floating-point entries; others
    are theta_1's). alpha 0 and 1 give exact copies of theta_0 and theta_1."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"transfer.alphas: alpha must be in [0, 1], got {alpha!r}")
    if theta_0.keys() != theta_1.keys():
        raise ValueError("theta_0 and theta_1 have different entries")
    out = {}
    for name, w1 in theta_1.items():
        w0 = theta_0[name]
        if alpha == 0:
            out[name] = w0.clone()
        elif alpha == 1 or not torch.is_floating_point(w1):
            out[name] = w1.clone()
        else:
            out[name] = torch.lerp(w0.to(w1.dtype), w1, float(alpha))
    return out


@torch.no_grad()
def validation_loss(model, batches: Iterable[dict]) -> float:
    """Token-mean cross-entropy of ``model`` over ``batches`` (every real token weighs the
    same, as ``val/loss``), in eval mode."""
    total, tokens = 0.0, 0
    with evaluating(model):
        for batch in batches:
            batch = {k: v.to(model.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            loss, n = model.batch_loss(batch)
            total += float(loss) * int(n)
            tokens += int(n)
    return total / max(tokens, 1)


def choose_alpha(
    model,
    theta_0: dict,
    theta_1: dict,
    alphas: Iterable[float],
    score: Callable[[object], dict],
    select: str = "val/loss",
    lower_is_better: bool = True,
) -> tuple[float, dict[float, dict]]:
    """Score every ``theta_alpha`` (``score(model) -> {metric: value}``, which must hold
    ``select``), leave the best in ``model`` and return its alpha and every alpha's scores.
    Ties go to the first alpha of the grid."""
    scores: dict[float, dict] = {}
    best = None
    for alpha in alphas:
        model.load_state_dict(interpolate(theta_0, theta_1, float(alpha)))
        scores[float(alpha)] = s = score(model)
        value = s[select] if lower_is_better else -s[select]
        if best is None or value < best[1]:
            best = (float(alpha), value)
    if best is None:
        raise ValueError("transfer.alphas is empty")
    model.load_state_dict(interpolate(theta_0, theta_1, best[0]))
    return best[0], scores
