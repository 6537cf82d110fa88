"""A linear probe of the image features: ``python -m caplm.probe [overrides]``.

Can a frozen linear classifier read every attribute the captions mention (objects, colours,
sizes, counts, places, relations) off a generated dataset's image features? It composes
``conf/train.yaml``'s ``data`` and ``paths`` with the overrides given (``data=scenes``,
``data.encoder.pool_grid=1``, ...), loads the dataset and its features the way a job does
(so the features cache under ``paths.cache_dir`` is shared with training), runs
:func:`caplm.evaluation.probe.probe` (trained on train, regularisation picked on val, scored
on test), prints a table with PASS/FAIL against 95% and writes it all to
``<paths.cache_dir>/probe/<dataset>-<hash of the data config>.json``. It is a measurement:
it exits 0 whatever the accuracies are.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from caplm.data.features import load_features
from caplm.data.readers import load_caption_dataset
from caplm.evaluation.probe import THRESHOLD, attribute_labels, format_table, probe, summarise
from caplm.io import stable_hash, to_dict, write_json
from caplm.runtime.config import compose_checked

log = logging.getLogger("caplm.probe")


def run(overrides: list[str]) -> tuple[dict, Path]:
    """Probe the features the overrides' ``data`` config gives; returns the report and where
    it was written."""
    start = time.perf_counter()
    cfg = compose_checked(overrides)
    cache_dir = Path(cfg.paths.cache_dir)
    data_cfg = to_dict(cfg.data)
    dataset = load_caption_dataset(cfg.data, cache_dir)
    if "scenes" not in dataset.info:
        raise ValueError(
            f"data={dataset.name}: the probe needs a generated dataset (shapes, scenes), which "
            "knows what is in each image"
        )
    features = load_features(cfg.data, dataset, cache_dir)
    loaded = time.perf_counter()
    ids = {split: dataset.image_ids(split) for split in dataset.splits}
    labels = attribute_labels(dataset.name, dataset.info["scenes"])
    results = probe(features, ids, labels)
    seconds = time.perf_counter() - start
    report = {
        "dataset": dataset.name,
        "data": data_cfg,
        "overrides": list(overrides),
        "threshold": THRESHOLD,
        "images": {split: len(v) for split, v in ids.items()},
        "feature_size": int(np.shape(features["train"])[1]),
        "seconds": {
            "data_and_features": loaded - start,
            "probe": seconds - (loaded - start),
            "total": seconds,
        },  # fmt: skip
        "families": summarise(results),
        "attributes": results,
    }
    path = cache_dir / "probe" / f"{dataset.name}-{stable_hash(data_cfg)}.json"
    write_json(path, report)
    return report, path


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    overrides = sys.argv[1:] if argv is None else list(argv)
    report, path = run(overrides)
    encoder = report["data"].get("encoder") or {}
    print(
        f"\nlinear probe of {report['dataset']} features ({report['feature_size']} values per "
        f"image; encoder {encoder.get('name')} at {encoder.get('image_size')} px, pool_grid "
        f"{encoder.get('pool_grid')}, taps {encoder.get('taps')}); images {report['images']}; "
        f"{report['seconds']['total']:.0f} s"
    )
    print(format_table(report["attributes"], report["threshold"]))
    chosen = Counter(r["scaling"] for r in report["attributes"].values() if r["scaling"])
    print("scaling chosen on val: " + ", ".join(f"{k} {n}" for k, n in sorted(chosen.items())))
    print(f"probe: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
