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

import logging
import time
from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig

from caplm import CONF_DIR
from caplm.data.readers import load_caption_dataset
from caplm.io import write_json
from caplm.results import RESULTS_FILE, pplx_key
from caplm.runtime.jobs import Job, run_job
from caplm.runtime.lm_stage import language_model, without_generator

log = logging.getLogger("caplm.lm")

#: Printed at the end of a job: the study's LM-quality measure on each text.
HEADLINE = {split: pplx_key("lm", split) for split in ("val", "capval", "captest")}


def run(cfg: DictConfig) -> dict:
    """Run one LM-only job; returns its results (also in ``<output_dir>/results.json``)."""
    return run_job(without_generator(cfg), _train_and_evaluate)


def _train_and_evaluate(cfg: DictConfig, job: Job):
    L.seed_everything(cfg.seed, workers=True)
    dataset = load_caption_dataset(cfg.data, Path(cfg.paths.cache_dir))
    job.lap("data")
    lm, results = language_model(cfg, dataset)
    write_json(job.dir / "lm.json", {"cache_key": lm.key, "path": str(lm.path)})
    job.lap("lm")
    return results, None


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train_lm")
def main(cfg: DictConfig) -> None:
    start = time.perf_counter()
    results = run(cfg)
    log.info(
        "done in %.0f s: corrected geometric-mean perplexity %s",
        time.perf_counter() - start,
        ", ".join(f"{split} {results[key]:.2f}" for split, key in HEADLINE.items()),
    )
    log.info("results: %s", Path(cfg.paths.output_dir) / RESULTS_FILE)


if __name__ == "__main__":
    main()
