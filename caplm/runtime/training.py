"""Trainer plumbing shared by the language model and the caption generator.

Both train the same way: early stopping on validation loss (optional), the best checkpoint
kept as ``best.ckpt`` and the latest as ``last.ckpt`` after every epoch, so an interrupted
fit resumes from ``last.ckpt`` and loses at most the epoch it was in.

Checkpoints are written to a temporary name in their own folder and renamed
(:class:`AtomicCheckpointIO`: atomic on any file system), hold the key of the fit they belong
to (the job's or LM entry's) and no absolute path that matters on resume
(:class:`FolderCheckpoint`), so a fit resumed in a moved or copied folder ends as an
uninterrupted one. ``fit_done.json``, written last, is the fit's manifest: its key and the size
and SHA-256 of the checkpoint it keeps; a checkpoint or record that does not match is named in
a warning, moved aside, and the fit is done again from scratch (same seed, same result).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from omegaconf import DictConfig

from caplm.io import (
    UNREADABLE,
    Mismatch,
    atomic_write,
    check_files,
    file_record,
    move_aside,
    read_json,
    remove_stale_temporaries,
    to_dict,
    write_json,
)
from caplm.runtime.devices import pin_trainer_devices, resolve_precision
from caplm.runtime.loggers import continue_curves
from caplm.runtime.preemption import Preempted, StopOnSignal, fitting

log = logging.getLogger(__name__)

MONITOR = "val/loss"
#: What a fit may select its checkpoint and stop early by (``fit.monitor``, an opt-in key:
#: val/loss when absent, as the study), and which way is better. ``val/BLEU-4`` is the
#: generator's greedy BLEU-4 on up to 200 val images (``ValidationBLEU``); an LM has none.
MONITORS = {"val/loss": "min", "val/BLEU-4": "max"}


class RNGState(Callback):
    """Every random number generator a fit draws from (torch's on the CPU and each GPU,
    numpy's, Python's), saved in each checkpoint and restored from it, so a resumed fit
    draws (dropout masks, ...) exactly what an uninterrupted one draws. The data order is
    the data module's own generator (``caplm.data.datamodules``), checkpointed likewise."""

    def state_dict(self) -> dict:
        state = {
            "torch": torch.get_rng_state(),
            "numpy": _numpy_state(),
            "python": random.getstate(),
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict) -> None:
        torch.set_rng_state(state["torch"])
        _set_numpy_state(state["numpy"])
        random.setstate(state["python"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def _numpy_state() -> dict:
    """numpy's global RNG state as tensors and numbers (checkpoints load with weights_only)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}  # fmt: skip


def _set_numpy_state(s: dict) -> None:
    keys = s["keys"].numpy().astype(np.uint32)
    np.random.set_state((s["name"], keys, s["pos"], s["has_gauss"], s["cached_gaussian"]))


#: Called after each epoch's row of every fit (see :func:`epoch_listener`).
_EPOCH_LISTENERS: list[Callable[[], None]] = []


@contextlib.contextmanager
def epoch_listener(listener: Callable[[], None]):
    """Call ``listener()`` at the end of every epoch of the fits inside the block, after the
    epoch's row is recorded and before its checkpoint is saved (a job's time accounts then
    cover every epoch a checkpoint holds)."""
    _EPOCH_LISTENERS.append(listener)
    try:
        yield
    finally:
        _EPOCH_LISTENERS.remove(listener)


class EpochLine(Callback):
    """One log line per epoch where no progress bar is drawn (output not to a terminal):
    ``epoch 3/30: train/loss 2.310, val/loss 2.452 (4.1 s)``."""

    def __init__(self, history: EpochHistory):
        self.history = history

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking or not self.history.epochs:
            return
        row = self.history.epochs[-1]
        shown = ", ".join(f"{k} {v:.3f}" for k, v in row.items() if "/" in k)
        log.info("epoch %d/%d: %s (%.1f s)", row["epoch"], trainer.max_epochs, shown, row["time_s"])


def _on_terminal() -> bool:
    """Whether the progress bar's stream (stderr) is a terminal, where a bar redraws in place;
    in a file, each redraw would be a line of its own."""
    return sys.stderr.isatty()


class EpochHistory(Callback):
    """Per-epoch metrics and wall time, kept in checkpoints so a resumed fit keeps them, and
    the epochs after which the fit was resumed (``resumed_after``)."""

    def __init__(self):
        self.epochs: list[dict] = []
        self.resumed_after: list[int] = []
        self._start = 0.0

    def on_train_start(self, trainer, pl_module):
        # after any restore: curves of a resumed fit keep the epochs its checkpoint holds
        continue_curves(trainer.loggers, self.epochs, trainer.current_epoch)

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module):
        self._record(trainer)
        if not trainer.sanity_checking:
            for listener in list(_EPOCH_LISTENERS):  # e.g. the job's time accounts
                listener()

    def _record(self, trainer):
        # Not on_validation_epoch_end: callbacks' epoch-end hooks run before the module's,
        # where it logs val/loss, so that epoch's metrics would land on the next row. Here
        # (as for EarlyStopping and ModelCheckpoint) they are this epoch's; and the history
        # comes before the checkpoint callbacks, so the checkpoint saved now holds this row.
        if trainer.sanity_checking:
            return
        row = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        row["epoch"] = trainer.current_epoch + 1
        row["step"] = trainer.global_step
        row["time_s"] = time.perf_counter() - self._start
        self.epochs.append(row)

    @property
    def train_time_s(self) -> float:
        return sum(r["time_s"] for r in self.epochs)

    def state_dict(self):
        return {"epochs": self.epochs, "resumed_after": self.resumed_after}

    def load_state_dict(self, state):  # called when a fit resumes from a checkpoint
        self.epochs = list(state["epochs"])
        self.resumed_after = [*state.get("resumed_after", []), len(self.epochs)]


class CompileStep(Callback):
    """``trainer.compile``: the model's loss (forward, and with it the backward) compiled by
    ``torch.compile`` for the fit (``true``: its default backend, inductor; a string: that
    backend). Opt-in: measured, it pays on a GPU, where the sync-free loss has fixed shapes
    (``make gpu-check``); on the CPU caplm picks the real target rows, whose count varies,
    so the graph breaks there."""

    def __init__(self, backend: str = "inductor"):
        self.backend = backend

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage == "fit" and "batch_loss" not in vars(pl_module):
            pl_module.batch_loss = torch.compile(pl_module.batch_loss, backend=self.backend)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        vars(pl_module).pop("batch_loss", None)  # back to the plain method (saving, evaluation)


#: Trainer settings caplm handles itself (not Lightning's): ``compile`` (:class:`CompileStep`).
CAPLM_TRAINER_KEYS = ("compile",)


def compile_callbacks(setting) -> list[Callback]:
    """``trainer.compile``'s callback: none for false/null, else :class:`CompileStep`."""
    if not setting:
        return []
    return [CompileStep() if setting is True else CompileStep(str(setting))]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file beside their final name, then renamed
    (Lightning's own save goes through the system temp folder: a copy, not a rename, when the
    job folder is on another file system, so a kill could leave half a checkpoint)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))


#: The paths of ModelCheckpoint's state (kept as file names: a resume finds them in its folder).
_CHECKPOINT_PATHS = ("best_model_path", "kth_best_model_path", "last_model_path")


class FolderCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose saved state names its files, not their absolute paths, and reads
    them back in the folder it now has (Lightning drops the best score when the folder's path
    differs, so a fit resumed in a moved folder would overwrite ``best.ckpt`` with its first
    epoch however bad)."""

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["dirpath"] = None
        for k in _CHECKPOINT_PATHS:
            state[k] = os.path.basename(state[k]) if state[k] else state[k]
        state["best_k_models"] = {os.path.basename(k): v for k, v in state["best_k_models"].items()}
        return state

    def load_state_dict(self, state: dict) -> None:
        state = {**state, "dirpath": self.dirpath}  # this folder, wherever it was written
        here = lambda name: os.path.join(self.dirpath, os.path.basename(name))  # noqa: E731
        for k in _CHECKPOINT_PATHS:
            state[k] = here(state[k]) if state.get(k) else state.get(k, "")
        if "best_k_models" in state:
            state["best_k_models"] = {here(k): v for k, v in state["best_k_models"].items()}
        super().load_state_dict(state)


#: Where a checkpoint holds the key of its fit.
FIT_KEY = "caplm_fit_key"


class FitKey(Callback):
    """Writes the key of the fit (the job's, the LM entry's) into each checkpoint."""

    def __init__(self, key: str):
        self.key = key

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        checkpoint[FIT_KEY] = self.key


#: The settings of an ``lm.fit`` / ``model.fit`` config node.
FIT_KEYS = (
    "batch_size",
    "max_len",
    "max_epochs",
    "early_stopping",
    "patience",
    "gradient_clip_val",
    "monitor",
    "robust",
)


def make_trainer(
    trainer_cfg: DictConfig | dict,
    ckpt_dir: Path,
    fit_cfg: DictConfig | dict,
    logger=False,
    callbacks: list[Callback] = (),
) -> tuple[L.Trainer, EpochHistory]:
    """A Trainer with checkpointing, for the ``fit`` settings of the LM or the generator:
    ``max_epochs``, ``gradient_clip_val``, and early stopping on validation loss with
    ``patience`` (none when ``patience`` is null or ``early_stopping`` is false); the best
    checkpoint and the stopping go by ``monitor`` (``MONITORS``; val/loss when absent)."""
    monitor = fit_monitor(fit_cfg)
    patience = fit_cfg.get("patience")
    if not fit_cfg.get("early_stopping", True):
        patience = None
    history = EpochHistory()
    checkpoints = [
        FolderCheckpoint(
            dirpath=ckpt_dir,
            filename="best",
            monitor=monitor,
            mode=MONITORS[monitor],
            save_last=True,
            save_top_k=1,
            enable_version_counter=False,
        ),
    ]
    stopping = (
        [EarlyStopping(monitor, patience=patience, mode=MONITORS[monitor])]
        if patience is not None
        else []
    )
    kwargs = to_dict(trainer_cfg)
    compiling = compile_callbacks(kwargs.pop("compile", False))
    kwargs = pin_trainer_devices(kwargs)  # a GPU slot per parallel job (no-op on the CPU)
    kwargs = resolve_precision(kwargs)
    lines = []
    if kwargs.get("enable_progress_bar", True) and not _on_terminal():
        kwargs["enable_progress_bar"] = False  # a line per epoch instead of a bar's redraws
        lines = [EpochLine(history)]
    plugins = [*(kwargs.pop("plugins", None) or []), AtomicCheckpointIO()]
    trainer = L.Trainer(
        **kwargs,
        max_epochs=fit_cfg["max_epochs"],
        gradient_clip_val=fit_cfg.get("gradient_clip_val"),
        logger=logger,
        # extra callbacks first: metrics they log are then seen by the history and checkpoints
        callbacks=[
            *callbacks,
            *compiling,
            history,
            *lines,
            RNGState(),
            *checkpoints,
            *stopping,
            StopOnSignal(),
        ],  # fmt: skip
        default_root_dir=str(ckpt_dir),
        plugins=plugins,
    )
    return trainer, history


DONE = "fit_done.json"
#: A job's checkpoint folder, in its output folder.
CHECKPOINTS = "checkpoints"


def fit_monitor(fit_cfg) -> str:
    """What a fit goes by: its ``monitor`` (see ``MONITORS``), val/loss when absent."""
    return fit_cfg.get("monitor") or MONITOR


def ended_at_cap(history: list[dict], max_epochs: int, monitor: str = MONITOR) -> bool:
    """Whether a fit ran all ``max_epochs`` epochs and its last epoch was still the best by
    ``monitor`` so far (lowest loss, highest BLEU): it stopped at its cap while improving."""
    values = [row[monitor] for row in history if monitor in row]
    best = min(values, default=None) if MONITORS[monitor] == "min" else max(values, default=None)
    return bool(max_epochs) and len(history) >= max_epochs and bool(values) and values[-1] == best


def warn_if_capped(
    what: str, history: list[dict], max_epochs: int, setting: str, monitor: str = MONITOR
) -> bool:
    """:func:`ended_at_cap`, with a warning that names ``what`` stopped and the ``setting``
    to raise (``lm.fit.max_epochs``, ...)."""
    capped = ended_at_cap(history, max_epochs, monitor)
    if capped:
        log.warning(
            "%s stopped at its cap of %d epochs while its %s was still improving; "
            "raise %s for a converged model",
            what,
            max_epochs,
            monitor,
            setting,
        )
    return capped


def fit(
    trainer: L.Trainer,
    model: L.LightningModule,
    datamodule,
    ckpt_dir: Path,
    history: EpochHistory,
    keep: str = "best",
    extra=None,
    key: str | None = None,
) -> dict:
    """Fit, leave the kept checkpoint's weights in ``model``, and return
    ``{"checkpoint", "epochs", "train_time_s", "history", "resumed_after"}`` (the epochs
    after which an interrupted fit was resumed: ``[]`` when it never was).

    Resumes from ``ckpt_dir/last.ckpt`` when an earlier fit was interrupted; when an earlier
    fit finished (``fit_done.json`` written), returns its record without training again.
    ``keep`` is ``best`` (lowest validation loss) or ``last`` (e.g. without early stopping);
    ``extra()`` adds to the record what later runs need without training (e.g. transfer counts).
    ``key`` (the job's or LM entry's) is written into the checkpoints and the record; one of
    another key is not used. Call it while holding the lock of the job or entry.
    """
    ckpt_dir = Path(ckpt_dir)
    done = ckpt_dir / DONE
    remove_stale_temporaries(ckpt_dir)  # of a killed writer: we hold the job's / entry's lock
    if done.is_file():
        try:
            record = read_json(done)
            _check_record(record, ckpt_dir, key)
            _load_weights(model, ckpt_dir, record)
        except UNREADABLE as err:  # the fit is redone from scratch: same seed, same result
            move_aside(ckpt_dir, f"{err}; fitting again from scratch")
        else:
            continue_curves(trainer.loggers, record["history"], record["epochs"])
            return {k: v for k, v in record.items() if k not in MANIFEST_KEYS}
    for checkpoint, why in _not_resumable(ckpt_dir, key):
        move_aside(checkpoint, f"{why}; fitting {type(model).__name__} from scratch")
    last = ckpt_dir / "last.ckpt"
    if key is not None:
        trainer.callbacks.append(FitKey(key))
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    try:
        with fitting():  # SIGTERM/SIGUSR1 stop it after a batch (caplm.runtime.preemption)
            trainer.fit(
                model, datamodule=datamodule, ckpt_path=str(last) if last.is_file() else None
            )
    except SIGTERMException:  # Lightning's own handler stopped it first
        raise Preempted(15) from None
    checkpoint = trainer.checkpoint_callback.best_model_path if keep == "best" else str(last)
    record = {
        "checkpoint": Path(checkpoint).name if checkpoint else None,
        "epochs": len(history.epochs),
        "train_time_s": history.train_time_s,
        "history": history.epochs,
        "resumed_after": history.resumed_after,
        **(extra() if extra else {}),
    }
    kept = [record["checkpoint"]] if record["checkpoint"] else []
    manifest = {"key": key, "files": {name: file_record(ckpt_dir / name) for name in kept}}
    write_json(done, {**record, **manifest})  # last: its checkpoint is complete
    _load_weights(model, ckpt_dir, record)
    return record


#: What ``fit_done.json`` holds beside the record ``fit`` returns.
MANIFEST_KEYS = ("key", "files")


def _check_record(record, ckpt_dir: Path, key: str | None) -> None:
    """Raise Mismatch when ``fit_done.json`` is another fit's, or its checkpoint is not the
    one it recorded (records written before manifests are taken as they are)."""
    if not isinstance(record, dict):
        raise Mismatch(f"{ckpt_dir / DONE} is not a fit's record")
    if key is not None and record.get("key") not in (None, key):
        raise Mismatch(f"{ckpt_dir / DONE} is the record of fit {record['key']!r}, not {key!r}")
    check_files(ckpt_dir, record.get("files") or {})


def _load_weights(model: L.LightningModule, ckpt_dir: Path, record: dict) -> None:
    if record["checkpoint"]:
        state = torch.load(ckpt_dir / record["checkpoint"], map_location="cpu", weights_only=False)
        model.load_state_dict(state["state_dict"])


def keyless(ckpt_dir: Path) -> list[Path]:
    """The records and checkpoints under ``ckpt_dir`` that name no fit (written before
    checkpoints held their key), which nothing could tell apart from another job's."""
    found = []
    for path in sorted(Path(ckpt_dir).rglob("*")):
        try:
            if path.name == DONE:
                saved = read_json(path)
            elif path.suffix == ".ckpt":
                saved = torch.load(path, map_location="cpu", weights_only=False)
            else:
                continue
        except UNREADABLE:
            continue  # fit() moves it aside itself
        if not isinstance(saved, dict) or not saved.get("key" if path.name == DONE else FIT_KEY):
            found.append(path)
    return found


def _not_resumable(ckpt_dir: Path, key: str | None) -> list[tuple[Path, str]]:
    """The checkpoints an interrupted fit left that cannot be resumed from, and why (not
    loadable, or of another fit's key)."""
    bad = []
    for checkpoint in sorted(ckpt_dir.glob("*.ckpt")):
        try:
            saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        except UNREADABLE as err:
            bad.append((checkpoint, f"not a loadable checkpoint ({type(err).__name__}: {err})"))
            continue
        found = saved.get(FIT_KEY) if isinstance(saved, dict) else None
        if key is not None and found not in (None, key):
            bad.append((checkpoint, f"a checkpoint of fit {found!r}, not of {key!r}"))
    return bad
