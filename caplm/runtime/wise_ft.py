"""``transfer=wise_ft``'s two fits and its choice of alpha (the arithmetic is
:mod:`caplm.models.transfer.wise_ft`).

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
from pathlib import Path

import lightning as L

from caplm.evaluation.bleu import CorpusBLEU4
from caplm.evaluation.evaluate import generate
from caplm.models.transfer.wise_ft import choose_alpha, validation_loss
from caplm.results import wise_ft_key
from caplm.runtime.training import fit, make_trainer

log = logging.getLogger(__name__)

THETA0 = "theta0"
BLEU_IMAGES = 200


def fit_wise_ft(
    cfg, model, data, ckpt_dir: Path, logger, transfer, validation
) -> tuple[dict, dict]:
    """Both fits and the choice; returns the record of the fits (``epochs`` and
    ``train_time_s`` of both together, the rest theta_1's, ``transfer`` theta_0's counts) and
    the ``transfer/wise_ft_*`` results. ``validation()`` makes a fresh val-BLEU callback."""
    dir0 = Path(ckpt_dir) / THETA0
    trainer0, history0 = make_trainer(
        cfg.trainer, dir0, cfg.model.fit, logger=False, callbacks=[transfer, validation()]
    )
    record0 = fit(trainer0, model, data, dir0, history0,
                  extra=lambda: {"transfer": transfer.stats.as_results()})  # fmt: skip
    theta_0 = {k: v.detach().clone() for k, v in model.state_dict().items()}

    model.requires_grad_(True)
    L.seed_everything(cfg.seed, workers=True)
    data.shuffle_generator.manual_seed(cfg.seed)
    trainer1, history1 = make_trainer(
        cfg.trainer, ckpt_dir, cfg.model.fit, logger=logger, callbacks=[validation()]
    )
    record1 = fit(trainer1, model, data, ckpt_dir, history1)
    theta_1 = {k: v.detach().clone() for k, v in model.state_dict().items()}

    select = cfg.transfer.select
    bleu = select == "bleu"
    refs = data.references("val")[:BLEU_IMAGES]
    val_bleu = CorpusBLEU4([[" ".join(r) for r in rs] for rs in refs])

    def score(m) -> dict:
        loss = validation_loss(m, data.val_dataloader())
        out = {"val/loss": loss, "val/pplx": math.exp(loss)}
        if bleu:
            words, _ = generate(m, data.features["val"][:BLEU_IMAGES], data.vocab, beam_width=1)
            out["val/BLEU-4"] = val_bleu([" ".join(w) for w in words])
        return out

    alpha, scores = choose_alpha(
        model, theta_0, theta_1, cfg.transfer.alphas, score,
        select="val/BLEU-4" if bleu else "val/loss", lower_is_better=not bleu,
    )  # fmt: skip
    log.info("wise_ft: alpha %s chosen by %s; %s", alpha, select, scores)
    results = {wise_ft_key("alpha"): alpha}
    for a, s in scores.items():
        results.update({wise_ft_key(name.removeprefix("val/"), a): v for name, v in s.items()})
    results[wise_ft_key("theta0_epochs")] = record0["epochs"]
    results[wise_ft_key("theta0_train_time_s")] = record0["train_time_s"]
    record = {
        **record1,
        "epochs": record0["epochs"] + record1["epochs"],
        "train_time_s": record0["train_time_s"] + record1["train_time_s"],
        "transfer": record0["transfer"],
    }
    return record, results
