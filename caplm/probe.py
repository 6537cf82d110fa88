"""A linear probe of the image features: ``python -m caplm.probe [overrides]``.

Can a frozen linear classifier read every attribute the captions mention (objects, colours,
sizes, counts, places, relations) off a generated dataset's image features? It composes
``conf/train.yaml``'s ``data`` and ``paths`` with the overrides given (``data=scenes``,
``data.encoder.pool_grid=1``, ...), loads the dataset and its features the way a job does
(so the features cache under ``paths.cache_dir`` is shared with training), runs
:func:`caplm.evaluation.linear_probe.probe_job`, prints a table with PASS/FAIL against 95% and
writes it all to ``<paths.cache_dir>/probe/<dataset>-<hash of the data config>.json``. It is a
measurement: it exits 0 whatever the accuracies are.
"""

from __future__ import annotations

import logging
import sys

from caplm.evaluation.linear_probe import describe, probe_job
from caplm.runtime.config import compose_checked

USAGE = """usage: python -m caplm.probe [OVERRIDE ...]

OVERRIDE: a Hydra override of conf/train.yaml's groups, e.g. data=scenes,
data.encoder.pool_grid=1, paths.data_dir=PATH (the data config chooses what is probed)."""


def main(argv: list[str] | None = None) -> int:
    overrides = sys.argv[1:] if argv is None else list(argv)
    if {"-h", "--help"} & set(overrides):
        print(f"{USAGE}\n\n{__doc__.strip()}")
        return 0
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    report, path = probe_job(compose_checked(overrides), overrides)
    print(describe(report, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
