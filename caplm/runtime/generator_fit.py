"""What a transfer mode's fit is given (:meth:`caplm.models.transfer.modes.TransferMode.fit`):
the generator, its data and weight transfer, and one Lightning fit with the job's trainer,
checkpoints, validation BLEU and logger, so a mode's fit says only what it does differently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import lightning as L

from caplm.evaluation.bleu import CorpusBLEU4
from caplm.evaluation.evaluate import generate
from caplm.runtime.training import fit, make_trainer


@dataclass
class GeneratorFit:
    cfg: object  # the job's config
    model: L.LightningModule
    data: object  # the CaptionDataModule
    ckpt_dir: Path
    logger: object  # the generator's Lightning logger (False: none)
    transfer: object  # the WeightTransfer callback
    validation: object  # () -> a fresh validation-BLEU callback
    key: str | None = None  # the job's: each fit's checkpoints are checked against it
    _bleu: dict = field(default_factory=dict)

    @property
    def settings(self):
        """The job's ``transfer`` config."""
        return self.cfg.transfer

    @property
    def lm_state(self):
        return self.transfer.lm_state

    @property
    def row_index(self):
        return self.transfer.row_index

    def fit(self, callbacks, subdir: str = "", logger: bool = True) -> dict:
        """One fit of the model with ``callbacks`` (and a fresh validation BLEU), checkpointed
        in ``checkpoints/<subdir>``; returns :func:`caplm.runtime.training.fit`'s record, with
        the transfer's counts (``transfer``) when the weight transfer is one of ``callbacks``."""
        ckpt_dir = self.ckpt_dir / subdir if subdir else self.ckpt_dir
        trainer, history = make_trainer(
            self.cfg.trainer,
            ckpt_dir,
            self.cfg.model.fit,
            logger=self.logger if logger else False,
            callbacks=[*callbacks, self.validation()],
        )
        transfers = self.transfer in callbacks
        extra = (lambda: {"transfer": self.transfer.stats.as_results()}) if transfers else None
        key = self.key and "/".join(filter(None, (self.key, subdir)))
        return fit(trainer, self.model, self.data, ckpt_dir, history, extra=extra, key=key)

    def reseed(self) -> None:
        """The job's seed again, for everything a fit draws (weights, dropout, batch order)."""
        L.seed_everything(self.cfg.seed, workers=True)
        self.data.shuffle_generator.manual_seed(self.cfg.seed)

    def val_bleu(self, model, images: int) -> float:
        """BLEU-4 of ``model``'s greedy captions of the first ``images`` validation images."""
        if images not in self._bleu:
            refs = self.data.references("val")[:images]
            self._bleu[images] = CorpusBLEU4([[" ".join(r) for r in rs] for rs in refs])
        words, _ = generate(
            model, self.data.features["val"][:images], self.data.vocab, beam_width=1
        )
        return self._bleu[images]([" ".join(w) for w in words])
