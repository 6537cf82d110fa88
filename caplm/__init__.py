"""caplm: transfer learning from language models to image caption generators."""

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
