"""Config helpers: the OmegaConf resolvers caplm's configs use, registered on import."""

from __future__ import annotations

from omegaconf import OmegaConf

from caplm import PROJECT_ROOT


def job_dirname(override_dirname: str) -> str:
    """A job's folder name: its overrides (``corpus=captions,seed=2``), or ``default``."""
    return override_dirname or "default"


def register_resolvers() -> None:
    for name, fn in {
        "caplm_root": lambda: str(PROJECT_ROOT),
        "job_dirname": job_dirname,
    }.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


register_resolvers()
