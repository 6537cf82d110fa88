"""The entry point: ``python -m caplm.train [+experiment=NAME] [overrides] [-m]``.

One job (a sweep with ``-m``): caption data and features -> the LM -> the caption generator ->
evaluation -> ``results.json``; the stages are :mod:`caplm.runtime.pipeline`'s. ``--help``
lists the config groups.
"""

from __future__ import annotations

import time

import hydra
from omegaconf import DictConfig

from caplm import CONF_DIR
from caplm.runtime.pipeline import log_train_headline, train_job


def run(cfg: DictConfig) -> dict:
    """Run one job; returns its results (also written to ``<output_dir>/results.json``)."""
    return train_job(cfg)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    start = time.perf_counter()
    log_train_headline(cfg, train_job(cfg), start)


if __name__ == "__main__":
    main()
