"""Transferability scores of language models, with no caption generator trained::

    python -m caplm.transferability SWEEP_DIR [overrides]   # the LMs a sweep's jobs used
    python -m caplm.transferability --cache [overrides]     # every LM of the cache, for data=...

``SWEEP_DIR``: every complete job that used an LM (it has ``lm.json`` and Hydra's
``.hydra/config.yaml``) has that LM scored for its own caption data, once per LM and data. The
scores are added to the job's ``results.json`` (``transferability/*``, and ``lm/in_domain`` where
an older job lacks it) and listed one LM per row in ``SWEEP_DIR/transferability.csv``;
``python -m caplm.report SWEEP_DIR`` then judges them against the generators' CIDEr. Works on
generator sweeps and on LM-only sweeps (``python -m caplm.lm``) alike.

``--cache``: the LMs under ``paths.lm_cache_dir``, scored for the data the overrides compose
(``data=scenes_lab``; default ``data=shapes``), listed in
``<cache_dir>/transferability/<data>-<hash>.csv``.

Overrides also set the scoring (``transferability.positions=...``, ``samples``, ...; see
``conf/transferability/default.yaml``). An LM that cannot be scored (its vocabulary shares no
word with the captions) is listed with the reason and skipped.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from caplm.evaluation.transfer_scores import SCORES
from caplm.results import transferability_key
from caplm.runtime.lm_scoring import CSV, USAGE, UsageError, score_cache, score_sweep


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    args = sys.argv[1:] if argv is None else list(argv)
    if {"-h", "--help"} & set(args):
        print(f"{USAGE}\n\n{__doc__.strip()}")
        return 0
    cache = "--cache" in args
    args = [a for a in args if a != "--cache"]
    places = [a for a in args if "=" not in a]
    overrides = [a for a in args if "=" in a]
    try:
        if cache == bool(places) or len(places) > 1:
            raise UsageError(f"give one sweep folder or --cache\n{USAGE}")
        if cache:
            table, out = score_cache(overrides)
        else:
            out = Path(places[0]) / CSV
            table = score_sweep(Path(places[0]), overrides)
    except UsageError as err:
        print(f"caplm.transferability: {err}", file=sys.stderr)
        return 2
    shown = [c for c in ("lm", "corpus", "size_exponent", "seed", *SCORES, "logme_random",
                         "skipped") if c in table]  # fmt: skip
    print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"scores of {len(table)} LMs: {out}")
    skipped = transferability_key("skipped").split("/", 1)[1]
    if skipped in table and table[skipped].notna().any():
        print(f"{int(table[skipped].notna().sum())} LM(s) could not be scored: see 'skipped'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
