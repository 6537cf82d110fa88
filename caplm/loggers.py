"""Experiment loggers, one per trained part of a job (``lm``, ``capgen``).

The ``logger`` config group's ``_target_`` points here; each factory takes ``part`` so the
language model's and the generator's curves stay apart (their own CSV files; in W&B one run
with ``lm-``/``capgen-`` prefixed metrics).
"""

from __future__ import annotations

from lightning.pytorch.loggers import CSVLogger


def csv_logger(save_dir: str, part: str, name: str = "logs") -> CSVLogger:
    """Metrics of one part in ``<save_dir>/<name>/<part>/metrics.csv``."""
    return CSVLogger(save_dir=save_dir, name=name, version=part)


def build(logger_cfg, part: str):
    """The configured logger for ``part``, or False when ``logger=none``."""
    if not logger_cfg or "_target_" not in logger_cfg:
        return False
    from hydra.utils import instantiate

    return instantiate(logger_cfg, part=part)
