"""Experiment loggers, one per trained part of a job (``lm``, ``capgen``).

The ``logger`` config group's ``_target_`` points at a factory here; each takes ``part`` so the
language model's and the generator's curves stay apart (their own CSV files; in W&B one run
per job with ``lm-``/``capgen-`` prefixed metrics). :func:`report` adds a job's final results
(summary values) and a table of sample captions.
"""

from __future__ import annotations

import csv
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from caplm.io import atomic_write
from caplm.results import capgen_key

log = logging.getLogger(__name__)

WANDB_MODES = ("offline", "online", "disabled")
#: How long an online W&B logger waits for its server before it logs offline instead.
REACH_TIMEOUT_S = 3.0


def csv_logger(save_dir: str, part: str, name: str = "logs") -> CSVLogger:
    """Metrics of one part in ``<save_dir>/<name>/<part>/metrics.csv``."""
    return ResumableCSVLogger(save_dir=save_dir, name=name, version=part)


class _KeepingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that it leaves an earlier fit's ``metrics.csv`` for
    :meth:`keep_epochs_before` to trim (Lightning's deletes it when it starts)."""

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if path.is_file():  # later rows are appended under the same header
            with path.open(newline="") as f:
                self.metrics_keys = sorted(csv.DictReader(f).fieldnames or [])

    def keep_epochs_before(self, epoch: int) -> None:
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            fields, rows = list(reader.fieldnames or []), list(reader)
        kept = [r for r in rows if r.get("epoch") and int(float(r["epoch"])) < epoch]
        if not kept:
            path.unlink()
            return

        def write(tmp: Path) -> None:
            with tmp.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=fields)
                writer.writeheader()
                writer.writerows(kept)

        atomic_write(path, write)
        self.metrics_keys = sorted(fields)


class ResumableCSVLogger(CSVLogger):
    """A CSV logger whose curves survive a resumed fit: the rows of the epochs a checkpoint
    holds are kept, those of the interrupted epoch dropped, so each epoch is there once."""

    @property
    @rank_zero_experiment
    def experiment(self) -> _KeepingWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _KeepingWriter(log_dir=self.log_dir)
        return self._experiment

    def keep_epochs_before(self, epoch: int) -> None:
        """Drop the rows of epochs >= ``epoch`` (0-based; 0 on a fresh fit drops them all)."""
        self.experiment.keep_epochs_before(epoch)


def wandb_logger(
    save_dir: str,
    part: str,
    project: str = "caplm",
    entity: str | None = None,
    group: str | None = None,
    name: str | None = None,
    tags=(),
    mode: str = "offline",
    run_id: str | None = None,
) -> Logger:
    """A Weights & Biases logger; ``offline`` by default (no login, no network, never waits).

    Offline runs are written to ``<save_dir>/wandb/offline-run-*``; ``wandb sync`` uploads them.
    """
    if mode not in WANDB_MODES:
        raise ValueError(f"logger.mode={mode!r}; choose one of {', '.join(WANDB_MODES)}")
    if mode == "online" and not reachable(wandb_server()):
        log.warning(
            "W&B server %s cannot be reached (no network?); logging offline instead. "
            "Upload later with: wandb sync %s/wandb/offline-run-*",
            wandb_server(),
            save_dir,
        )
        mode = "offline"
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    os.environ["WANDB_MODE"] = mode  # also covers wandb calls made outside the logger
    os.environ.setdefault("WANDB_SILENT", "true")
    return WandbLogger(
        save_dir=save_dir,
        project=project,
        entity=entity,
        group=group,
        name=name,
        tags=list(tags),
        mode=mode,
        id=run_id,
        resume="allow",
        prefix=part,
        settings=wandb.Settings(init_timeout=90),
    )


def wandb_server() -> str:
    """The W&B server a run would talk to (``WANDB_BASE_URL``, else W&B's cloud)."""
    return os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")


def reachable(url: str, timeout_s: float = REACH_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``url``'s host and port opens within ``timeout_s``."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            return True
    except OSError:  # refused, unreachable, unknown host, timed out
        return False


def build(logger_cfg, part: str) -> Logger | bool:
    """The configured logger for ``part``, or False when ``logger=none``."""
    if not logger_cfg or "_target_" not in logger_cfg:
        return False
    from hydra.utils import instantiate

    return instantiate(logger_cfg, part=part)


def replay_history(logger: Logger | bool, history: list[dict]) -> None:
    """Log per-epoch curves again into this job's logger: a cached model's, or those of the
    epochs a resumed fit restored (at each epoch's training step; histories without it: at
    the epoch)."""
    if not logger:
        return
    for row in history:
        metrics = {k: v for k, v in row.items() if k not in ("epoch", "time_s", "step")}
        logger.log_metrics(metrics, step=int(row.get("step", row["epoch"])))


def continue_curves(trainer_loggers, history: list[dict], epochs_done: int) -> None:
    """Curves of a fit restored after ``epochs_done`` epochs hold each epoch once: a CSV log
    keeps its rows of those epochs and drops the interrupted one's; a logger that starts a
    new run (W&B, after :func:`set_aside_interrupted_runs`) is given those epochs again."""
    for logger in trainer_loggers:
        if hasattr(logger, "keep_epochs_before"):
            logger.keep_epochs_before(epochs_done)
        elif epochs_done:
            replay_history(logger, history[:epochs_done])


def set_aside_interrupted_runs(job_dir: str | Path) -> list[Path]:
    """Rename the offline W&B runs of an interrupted attempt of this job to
    ``interrupted-<name>``, so that ``wandb sync <job>/wandb/offline-run-*`` uploads only the
    run that finishes, which holds every epoch once (they are kept, not deleted)."""
    moved = []
    for run in sorted(Path(job_dir, "wandb").glob("offline-run-*")):
        moved.append(run.rename(run.with_name(f"interrupted-{run.name}")))
        log.info("W&B run %s of an interrupted attempt set aside as %s", run, moved[-1].name)
    return moved


def report(
    logger: Logger | bool,
    results: dict,
    captions: list[dict],
    load_image: Callable[[str], np.ndarray] | None = None,
    max_rows: int = 50,
) -> None:
    """Final results as summary values, and (W&B) a table of sample captions."""
    if not logger:
        return
    numeric = {
        k: float(v)
        for k, v in results.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    logger.log_metrics(numeric)
    if _is_wandb(logger):
        import wandb

        run = logger.experiment
        run.summary.update({**numeric, **{k: v for k, v in results.items() if isinstance(v, str)}})
        table = wandb.Table(columns=["image_id", "image", "generated", "references", "logprob"])
        for c in captions[:max_rows]:
            image = None
            if load_image is not None:
                try:
                    image = wandb.Image(load_image(c["image_id"]))
                except (OSError, ValueError) as err:  # a missing image file must not stop a run
                    log.warning("no image for the caption table: %s", err)
            table.add_data(
                c["image_id"], image, c["caption"], "\n".join(c["references"]), c["logprob"]
            )
        run.log({capgen_key("test_captions"): table})
    logger.save()


def finish() -> None:
    """Close this process's W&B run so the next job of a worker process starts clean."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def _is_wandb(logger) -> bool:
    return type(logger).__name__ == "WandbLogger"
