"""A GPU slot per job when parallel jobs share a machine, and the CPU threads of each job.

Hydra's joblib launcher runs jobs in a pool of worker processes and reuses them, so setting
``CUDA_VISIBLE_DEVICES`` per job does not stick (CUDA reads it once per process). Instead each
worker *process* claims one slot of one GPU for its lifetime by taking an exclusive lock on it
(``hydra/launcher=gpus`` runs ``jobs_per_gpu`` jobs on each GPU: the study's models are too
small to keep a GPU busy alone): the first free slot, slot 0 of every GPU before slot 1 of any,
so the GPUs fill evenly; a process's later jobs keep the slot it already holds; when it exits,
the operating system releases the lock. Locks are named by the GPU's UUID and live in a
node-local folder, so jobs of different SLURM allocations on one node (each seeing "GPU 0")
never block each other wrongly.
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

_held: tuple[int, int, FileLock] | None = None  # (index, slot, lock) this process holds


def default_lock_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"caplm-gpu-locks-{os.getuid()}"


def claim_device(
    device_ids: list[str], lock_dir: Path | None = None, poll_s: float = 5.0, slots: int = 1
) -> int:
    """Index (into ``device_ids``) of the device this process holds, claiming a slot if needed.

    ``device_ids`` names the devices (GPU UUIDs in practice), each with ``slots`` slots (jobs
    at once). Waits while every slot is held by other processes.
    """
    return claim_slot(device_ids, lock_dir, poll_s, slots)[0]


def claim_slot(
    device_ids: list[str], lock_dir: Path | None = None, poll_s: float = 5.0, slots: int = 1
) -> tuple[int, int]:
    """``(device index, slot)`` this process holds, claiming the first free one if needed:
    slot 0 of each device in turn, then slot 1, ... (see the module's docstring)."""
    global _held
    if _held is not None:
        return _held[0], _held[1]
    if not device_ids:
        raise RuntimeError("no GPU visible to claim (trainer=gpu); check CUDA_VISIBLE_DEVICES")
    if not isinstance(slots, int) or isinstance(slots, bool) or slots < 1:
        raise ValueError(f"hydra.launcher.jobs_per_gpu must be a positive integer, got {slots!r}")
    lock_dir = Path(lock_dir or default_lock_dir())
    lock_dir.mkdir(parents=True, exist_ok=True)
    waited = False
    while True:
        for slot in range(slots):
            for index, device in enumerate(device_ids):
                lock = FileLock(str(lock_dir / _lock_name(device, slot)))
                try:
                    lock.acquire(timeout=0)
                except Timeout:
                    continue
                _held = (index, slot, lock)
                log.info("process %d holds device %d (%s), slot %d of %d",
                         os.getpid(), index, device, slot, slots)  # fmt: skip
                return index, slot
        if not waited:
            log.info("all %d slots of %d devices are held by other jobs; waiting",
                     slots * len(device_ids), len(device_ids))  # fmt: skip
            waited = True
        time.sleep(poll_s)


def _lock_name(device: str, slot: int) -> str:
    """Slot 0 keeps the name a one-job-per-GPU lock always had."""
    return f"{safe_name(device)}.lock" if slot == 0 else f"{safe_name(device)}.slot{slot}.lock"


def release_device() -> None:
    """Give up the held slot (tests; a worker process normally holds it until it exits)."""
    global _held
    if _held is not None:
        _held[2].release()
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


def pin_trainer_devices(trainer_cfg: dict, launcher=None) -> dict:
    """For ``accelerator: gpu`` with ``devices: 1``, the GPU this process holds a slot of:
    ``launcher`` (Hydra's launcher config; None: the running multirun's) runs ``n_jobs``
    jobs at once, so each visible GPU has ``n_jobs / GPUs`` slots (rounded up; 1 outside a
    joblib launcher).

    Other settings (CPU, several devices for DDP, an explicit list) are left as they are.
    """
    if trainer_cfg.get("accelerator") not in ("gpu", "cuda") or trainer_cfg.get("devices") != 1:
        return trainer_cfg
    gpus = visible_gpus()
    launcher = _running_launcher() if launcher is None else launcher
    index = claim_device(gpus, slots=slots_per_gpu(launcher, len(gpus)))
    return {**trainer_cfg, "devices": [index]}


def slots_per_gpu(launcher, gpus: int) -> int:
    """Slots per GPU for ``launcher``'s jobs at once on ``gpus`` GPUs: ``n_jobs / gpus``
    rounded up under a joblib launcher (``hydra/launcher=gpus``: ``jobs_per_gpu``), else 1."""
    launcher = launcher or {}
    n_jobs = launcher.get("n_jobs")
    if "joblib" not in str(launcher.get("_target_", "")).lower() or not isinstance(n_jobs, int):
        return 1
    if n_jobs < 1:  # joblib's -1 (all cores, ...): at most a job per core anyway
        n_jobs = available_cores()
    return max(1, -(-n_jobs // max(1, gpus)))


def _running_launcher():
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().launcher if HydraConfig.initialized() else None


def default_jobs_per_gpu(gpu_gib: float | None, gib_per_job: float, gpus: int, cores: int) -> int:
    """Jobs to run at once on each GPU: as many as its memory (``gpu_gib``, None: no GPU)
    holds at ``gib_per_job`` each, and no more than the CPU cores allow (one job per core,
    across ``gpus`` GPUs, for its data loading and Python work); at least 1."""
    if gpu_gib is None:
        return 1
    by_memory = int(gpu_gib // float(gib_per_job))
    return max(1, min(by_memory, cores // max(1, gpus)))


def gpu_memory_gib() -> float | None:
    """The smallest visible GPU's memory in GiB (None without CUDA)."""
    import torch

    if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
        return None
    sizes = [
        torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())
    ]
    return min(sizes) / 2**30


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
