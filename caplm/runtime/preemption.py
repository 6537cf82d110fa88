"""Preemption: a cluster's scheduler sends SIGTERM (or SIGUSR1, ahead of its kill) before it
kills a job. Within a fit, the job finishes the batch in progress and stops; elsewhere it
stops at once. Its resumable state is its last checkpoint (``last.ckpt``, saved at every
epoch's end: the epoch in progress is trained again on resume, from the same random state,
so the resumed job ends as an uninterrupted one) and its job.json; it exits with
``PREEMPTED_EXIT``. Run the same command again to resume it. Under ``hydra/launcher=slurm``
it asks submitit to requeue it, with submitit's own handler (``checkpoint_and_try_requeue``:
the launcher's ``checkpoint`` resubmits the same job, then ``scontrol requeue``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading

from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)

#: The exit status of a preempted job: EX_TEMPFAIL, "try again" (it resumes where it stopped).
PREEMPTED_EXIT = 75
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(Exception):
    """A job asked to stop by its scheduler (``signum``), its state saved."""

    def __init__(self, signum: int):
        super().__init__(f"preempted by {signal.Signals(signum).name}")
        self.signum = signum


_state = {"signum": None, "fitting": 0}


@contextlib.contextmanager
def preemptible():
    """Within the block, SIGTERM and SIGUSR1 stop the job (see the module doc); the handlers
    that were there before are restored after it. Only the main thread can take signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.getsignal(s) for s in SIGNALS}
    _state["signum"] = None
    for s in SIGNALS:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def _handler(signum, frame) -> None:
    _state["signum"] = signum
    log.warning("received %s: stopping (within a fit: after the batch in progress)",
                signal.Signals(signum).name)  # fmt: skip
    if not _state["fitting"]:
        raise Preempted(signum)


@contextlib.contextmanager
def fitting():
    """A fit: a signal stops it at its next batch's end (``StopOnSignal``), not mid-step."""
    _state["fitting"] += 1
    try:
        yield
    finally:
        _state["fitting"] -= 1
    if _state["signum"] is not None:
        raise Preempted(_state["signum"])


class StopOnSignal(Callback):
    """Raises Preempted at the end of the batch during which a signal came."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if _state["signum"] is not None:
            raise Preempted(_state["signum"])

    on_validation_batch_end = on_train_batch_end


def requeue_under_submitit(signum: int) -> None:
    """Under submitit (``hydra/launcher=slurm``), hand the job to submitit's own preemption
    handler, which resubmits it and asks SLURM to requeue it (it then exits)."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return
    from submitit import JobEnvironment

    handler = signal.getsignal(JobEnvironment._usr_sig())
    if callable(handler):
        log.warning("asking submitit to requeue this job")
        handler(signum, None)
