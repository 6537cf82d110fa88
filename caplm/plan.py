"""A dry run of a run or a sweep: ``python -m caplm.plan [--lm] <the same overrides> [-m]``.

Every job's name and state (done, reusable, to run, not applicable), the distinct LMs to
train and an estimate of the run time, without training anything (caplm/runtime/dry_run.py).
"""

from __future__ import annotations

import sys

from caplm.runtime.dry_run import main

if __name__ == "__main__":
    sys.exit(main())
