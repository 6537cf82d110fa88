"""``transfer=wise_ft``: weight-space ensembling of a frozen and a fine-tuned generator
(Wortsman et al. 2022, "Robust fine-tuning of zero-shot models").

theta_0 is the generator fitted with the transferred parts frozen (``transfer=frozen``);
theta_1 the same generator fine-tuned end to end from theta_0. Every alpha of the grid gives
``theta_alpha = (1 - alpha) theta_0 + alpha theta_1``, scored on validation (cheaply, by
default: the token cross-entropy, one pass each); the best is kept. :meth:`WiseFT.fit`:

1. theta_0: the generator fitted with the transferred parts frozen, checkpointed in
   ``checkpoints/theta0/`` (its own ``fit_done.json``, ``last.ckpt``: resumable alone);
2. theta_1: fine-tuned end to end from theta_0 in ``checkpoints/`` (as any job's fit),
   from the run's seed again, so it is the same whether or not step 1 ran in this process;
3. every alpha of ``transfer.alphas`` scored on validation (``val/loss`` and ``val/pplx``; with
   ``transfer.select=bleu`` also greedy ``val/BLEU-4`` on up to 200 images, and the choice by
   it); the best theta_alpha is left in the model for the test evaluation.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable

import torch

from caplm.models.common import evaluating
from caplm.models.transfer.modes import TransferMode
from caplm.results import wise_ft_key

log = logging.getLogger(__name__)

THETA0 = "theta0"
BLEU_IMAGES = 200
#: What the alpha is chosen by on validation: ``loss`` (token cross-entropy, one pass per
#: alpha) or ``bleu`` (BLEU-4 of greedy captions: dearer).
SELECT = ("loss", "bleu")


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


class WiseFT(TransferMode):
    name = "wise_ft"
    freezes = True  # theta_0's fit; theta_1's trains everything
    needs_parts = True
    keys = ("alphas", "select")

    def check(self, t) -> list[tuple[str, str]]:
        out, alphas = [], t.get("alphas")
        if (
            not isinstance(alphas, list | tuple)
            or not alphas
            or any(isinstance(a, bool) or not isinstance(a, int | float) for a in alphas)
            or any(not 0 <= a <= 1 for a in alphas)
        ):
            out.append(("alphas", f"transfer.alphas={alphas!r}; must be a non-empty list of "
                        "numbers in [0, 1] (0: the frozen fit, 1: the fine-tuned one)"))  # fmt: skip
        if t.get("select") not in SELECT:
            out.append(("select", f"transfer.select={t.get('select')!r}; choose one of "
                        f"{', '.join(SELECT)}"))  # fmt: skip
        return out

    def fit(self, run) -> tuple[dict, dict]:
        """Both fits and the choice; returns the record of the fits (``epochs`` and
        ``train_time_s`` of both together, the rest theta_1's, ``transfer`` theta_0's counts)
        and the ``transfer/wise_ft_*`` results."""
        model = run.model
        record0 = run.fit([run.transfer], subdir=THETA0, logger=False)
        theta_0 = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.requires_grad_(True)
        run.reseed()
        record1 = run.fit([])
        theta_1 = {k: v.detach().clone() for k, v in model.state_dict().items()}

        select = run.settings.select
        bleu = select == "bleu"

        def score(m) -> dict:
            loss = validation_loss(m, run.data.val_dataloader())
            out = {"val/loss": loss, "val/pplx": math.exp(loss)}
            if bleu:
                out["val/BLEU-4"] = run.val_bleu(m, BLEU_IMAGES)
            return out

        alpha, scores = choose_alpha(
            model, theta_0, theta_1, run.settings.alphas, score,
            select="val/BLEU-4" if bleu else "val/loss", lower_is_better=not bleu,
        )  # fmt: skip
        log.info("wise_ft: alpha %s chosen by %s; %s", alpha, select, scores)
        results = {wise_ft_key("alpha"): alpha}
        for a, s in scores.items():
            results.update({wise_ft_key(k.removeprefix("val/"), a): v for k, v in s.items()})
        results[wise_ft_key("theta0_epochs")] = record0["epochs"]
        results[wise_ft_key("theta0_train_time_s")] = record0["train_time_s"]
        record = {
            **record1,
            "epochs": record0["epochs"] + record1["epochs"],
            "train_time_s": record0["train_time_s"] + record1["train_time_s"],
            "transfer": record0["transfer"],
        }
        return record, results
