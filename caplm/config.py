"""Config helpers: the OmegaConf resolvers caplm's configs use, registered on import."""

from __future__ import annotations

from omegaconf import OmegaConf

from caplm import PROJECT_ROOT


def job_dirname(override_dirname: str) -> str:
    """A job's folder name: its overrides (``corpus=captions,seed=2``), or ``default``."""
    return override_dirname or "default"


def num_gpus() -> int:
    """GPUs visible here (at least 1, so a launcher's pool is never empty)."""
    import torch

    return max(1, torch.cuda.device_count())


def register_resolvers() -> None:
    for name, fn in {
        "caplm_root": lambda: str(PROJECT_ROOT),
        "job_dirname": job_dirname,
        "num_gpus": num_gpus,
    }.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


register_resolvers()
