"""Language models alone: ``python -m caplm.lm [+experiment=lm_grid] [overrides] [-m]``.

One job: the caption dataset's captions (text only: no images, no features) -> the LM corpus
-> the LM (from the shared cache, or trained once and stored there, so a later generator sweep
reuses it) -> the study's LM measures -> ``results.json``. The measures are plain and
OOV-corrected mean, median and geometric-mean perplexity on the corpus's validation text
(``lm/val_*``) and on the caption dataset's val and test captions (``lm/capval_*``,
``lm/captest_*``), the LM vocabulary's coverage of each, and the diversity of its samples.
``python -m caplm.report`` tabulates them (``job/transfer`` is ``lm_only``).
"""

from __future__ import annotations

import time

import hydra
from omegaconf import DictConfig

from caplm import CONF_DIR
from caplm.runtime.pipeline import lm_job, log_lm_headline


def run(cfg: DictConfig) -> dict:
    """Run one LM-only job; returns its results (also in ``<output_dir>/results.json``)."""
    return lm_job(cfg)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train_lm")
def main(cfg: DictConfig) -> None:
    start = time.perf_counter()
    log_lm_headline(cfg, lm_job(cfg), start)


if __name__ == "__main__":
    main()
