"""How many exact and near duplicates a corpus's pool and the caption training set hold.

    python -m caplm.runtime.duplicates data=shapes_lab corpus=extra [corpus.dedup_near.threshold=0.7]

Composes ``conf/train.yaml`` with the overrides (checked), then counts, for the corpus's whole
pool and for the caption dataset's training captions, the sentences ``corpus.dedup=exact``
and ``corpus.dedup=near`` (at the corpus's ``dedup_near`` settings) would remove. Counting
never changes the caption set: it is never deduplicated (:mod:`caplm.data.dedup`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from caplm.data.corpora import corpus_pool
from caplm.data.dedup import deduplicate
from caplm.data.readers import load_caption_dataset
from caplm.data.text import normaliser
from caplm.io import to_dict
from caplm.runtime.config import compose_checked


def count(sentences: list, near: dict) -> dict:
    """``{"sentences", "exact", "near", "near_s"}``: the sentences, how many ``exact`` and
    ``near`` would remove, and the seconds the near pass took."""
    exact = deduplicate(sentences, "exact")[1]
    start = time.perf_counter()
    near_removed = deduplicate(sentences, "near", near)[1]
    return {"sentences": len(sentences), "exact": exact, "near": near_removed,
            "near_s": time.perf_counter() - start}  # fmt: skip


def main(overrides: list[str]) -> list[dict]:
    cfg = compose_checked(overrides)
    dataset = load_caption_dataset(cfg.data, Path(cfg.paths.cache_dir))
    normalise = normaliser(dataset.normaliser)
    near = to_dict(cfg.corpus.get("dedup_near")) or None
    if near is None:
        raise SystemExit(f"corpus={cfg.corpus.name} has no dedup_near settings to count with")
    texts = {f"{cfg.data.name} caption training set": dataset.sentences("train")}
    if cfg.corpus.source != "captions":
        pool, _ = corpus_pool(cfg.corpus, dataset, cfg.paths.cache_dir)
        texts[f"corpus={cfg.corpus.name} pool"] = [
            normalise(s) if isinstance(s, str) else s for s in pool
        ]
    rows = []
    print(f"near: {near}")
    for name, sentences in texts.items():
        row = {"text": name, **count(sentences, near)}
        n = row["sentences"]
        print(f"{name}: {n} sentences; exact duplicates {row['exact']} ({100 * row['exact'] / n:.1f}%), "
              f"near {row['near']} ({100 * row['near'] / n:.1f}%; {row['near_s']:.1f} s)")  # fmt: skip
        rows.append(row)
    return rows


if __name__ == "__main__":
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(f"usage: python -m caplm.runtime.duplicates [OVERRIDE ...]\n\n{__doc__.strip()}")
    else:
        main(sys.argv[1:])
