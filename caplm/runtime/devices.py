"""One GPU per job when parallel jobs share a machine, and the CPU threads of each job.

Hydra's joblib launcher runs jobs in a pool of worker processes and reuses them, so setting
``CUDA_VISIBLE_DEVICES`` per job does not stick (CUDA reads it once per process). Instead each
worker *process* claims one GPU for its lifetime by taking an exclusive lock on it: the first
free GPU in a list; a process's later jobs keep the GPU it already holds; when it exits, the
operating system releases the lock. Locks are named by the GPU's UUID and live in a node-local
folder, so jobs of different SLURM allocations on one node (each seeing "GPU 0") never block
each other wrongly.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

from filelock import FileLock, Timeout

from caplm import available_cores
from caplm.io import safe_name

log = logging.getLogger(__name__)

_held: tuple[int, FileLock] | None = None  # (index, lock) this process holds


def default_lock_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"caplm-gpu-locks-{os.getuid()}"


def claim_device(device_ids: list[str], lock_dir: Path | None = None, poll_s: float = 5.0) -> int:
    """Index (into ``device_ids``) of the device this process holds, claiming one if needed.

    ``device_ids`` names the devices (GPU UUIDs in practice). Waits while all are held by
    other processes.
    """
    global _held
    if _held is not None:
        return _held[0]
    if not device_ids:
        raise RuntimeError("no GPU visible to claim (trainer=gpu); check CUDA_VISIBLE_DEVICES")
    lock_dir = Path(lock_dir or default_lock_dir())
    lock_dir.mkdir(parents=True, exist_ok=True)
    waited = False
    while True:
        for index, device in enumerate(device_ids):
            lock = FileLock(str(lock_dir / f"{safe_name(device)}.lock"))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue
            _held = (index, lock)
            log.info("process %d holds device %d (%s)", os.getpid(), index, device)
            return index
        if not waited:
            log.info("all %d devices are held by other jobs; waiting", len(device_ids))
            waited = True
        time.sleep(poll_s)


def release_device() -> None:
    """Give up the held device (tests; a worker process normally holds it until it exits)."""
    global _held
    if _held is not None:
        _held[1].release()
        _held = None


def visible_gpus() -> list[str]:
    """UUIDs of the CUDA devices this process sees."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [
        str(getattr(torch.cuda.get_device_properties(i), "uuid", f"cuda{i}"))
        for i in range(torch.cuda.device_count())
    ]


def pin_trainer_devices(trainer_cfg: dict) -> dict:
    """For ``accelerator: gpu`` with ``devices: 1``, the one GPU this process holds.

    Other settings (CPU, several devices for DDP, an explicit list) are left as they are.
    """
    if trainer_cfg.get("accelerator") not in ("gpu", "cuda") or trainer_cfg.get("devices") != 1:
        return trainer_cfg
    index = claim_device(visible_gpus())
    return {**trainer_cfg, "devices": [index]}


#: ``trainer.precision`` value that caplm resolves: bf16 mixed precision on a GPU that has it.
BF16_WHERE_SUPPORTED = "bf16-where-supported"


def resolve_precision(trainer_cfg: dict) -> dict:
    """``precision: bf16-where-supported`` (``trainer=gpu``'s default) becomes Lightning's
    ``bf16-mixed`` on a CUDA GPU that supports bfloat16 (Ampere and later), else ``32-true``
    (and on the CPU); any other value is Lightning's own and passes unchanged."""
    if trainer_cfg.get("precision") != BF16_WHERE_SUPPORTED:
        return trainer_cfg
    import torch

    gpu = trainer_cfg.get("accelerator") in ("gpu", "cuda", "auto") and torch.cuda.is_available()
    bf16 = gpu and torch.cuda.is_bf16_supported()
    if gpu and not bf16:
        log.info("this GPU has no bfloat16: training in float32 (trainer.precision=32-true)")
    return {**trainer_cfg, "precision": "bf16-mixed" if bf16 else "32-true"}


def job_threads(threads: int | None, launcher, cores: int | None = None) -> int | None:
    """Torch CPU threads for a job: ``threads`` when set; else, under a launcher that runs
    ``n_jobs`` jobs at once on this machine (joblib: ``hydra/launcher=parallel`` or ``gpus``),
    the cores divided among them (at least 1), since each job would otherwise start one
    thread per core and parallel jobs oversubscribe the cores (measured: two 2-thread jobs
    on 2 cores ran about 20x slower than one); else None (torch's default)."""
    if threads:
        return int(threads)
    launcher = launcher or {}
    n_jobs = launcher.get("n_jobs")
    if "joblib" not in str(launcher.get("_target_", "")).lower() or not isinstance(n_jobs, int):
        return None
    cores = available_cores() if cores is None else cores
    if n_jobs < 0:  # joblib's -1: all cores, -2: all but one, ...
        n_jobs = max(1, cores + 1 + n_jobs)
    return max(1, cores // n_jobs) if n_jobs > 1 else None
