"""caplm: transfer learning from language models to image caption generators."""

from pathlib import Path

__version__ = "0.1.0"

#: The checkout's root (where conf/, data/ and multirun/ live).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"
