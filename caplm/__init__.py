"""caplm: transfer learning from language models to image caption generators."""

import contextlib
import os
from pathlib import Path

__version__ = "0.1.0"

#: The checkout's root (where conf/, data/ and multirun/ live).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"


def data_dir() -> Path:
    """Where datasets, corpora and caches live: ``$CAPLM_DATA_DIR``, else ``<checkout>/data``
    (``paths.data_dir`` in the configs, ``make corpora``)."""
    return Path(os.environ.get("CAPLM_DATA_DIR") or PROJECT_ROOT / "data")


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, e.g. a SLURM allocation's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Torch's CPU threads set to ``threads`` inside the block (None: left as they are), and
    restored after it."""
    import torch  # here, not above: the base layer is imported by the report, which never loads torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
