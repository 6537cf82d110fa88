"""Config helpers: the OmegaConf resolvers caplm's configs use, registered on import."""

from __future__ import annotations

from omegaconf import OmegaConf

from caplm import PROJECT_ROOT
from caplm.io import stable_hash

MAX_DIRNAME = 120


def job_dirname(overrides) -> str:
    """A job's folder name from its command-line/sweep overrides: ``corpus=captions,seed=2``.

    Settings that do not change a job's results (devices, loggers, paths; see
    ``caplm.jobs.NOT_RESULTS``) are left out, so a re-run with other such settings finds the
    same folder. ``/`` (config groups such as ``data/encoder=small_cnn``, paths in values)
    becomes ``.``; a name too long for a file system is cut and given a hash of the whole, so
    distinct jobs keep distinct folders. No overrides: ``default``.
    """
    from caplm.jobs import NOT_RESULTS

    kept = []
    for item in overrides:
        key = str(item).split("=", 1)[0].lstrip("+~")
        if key.split(".")[0].split("/")[0] not in (*NOT_RESULTS, "experiment"):
            kept.append(str(item).lstrip("+~"))
    name = ",".join(sorted(kept)).replace("/", ".") or "default"
    if len(name) > MAX_DIRNAME:
        name = f"{name[: MAX_DIRNAME - 17]}-{stable_hash(name)}"
    return name


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
