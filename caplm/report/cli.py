"""``python -m caplm.report DIR [--out OUT] [--latest] [--gallery N]``: a sweep's report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from caplm.report.gallery import IMAGES
from caplm.report.markdown import write_report
from caplm.report.sweep import ReportError, latest_sweep, scan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m caplm.report",
        description="Tables, plots and rank correlations from a sweep's results.json files.",
    )
    parser.add_argument("dir", type=Path, help="a sweep folder, searched recursively")
    parser.add_argument("--out", type=Path, help="where the report goes (default: DIR/report)")
    parser.add_argument(
        "--latest", action="store_true", help="report the newest subfolder of DIR with results"
    )
    parser.add_argument(
        "--gallery",
        type=int,
        default=IMAGES,
        metavar="N",
        help=f"test images per dataset shown with each mode's caption (default {IMAGES}; 0: none)",
    )
    args = parser.parse_args(argv)
    try:
        root = latest_sweep(args.dir) if args.latest else args.dir
        sweep = scan(root)
        for why in sweep.skipped:
            print(f"caplm.report: warning: skipped {why}", file=sys.stderr)
        if sweep.complete.empty:
            raise ReportError(f"{root}: no complete job yet ({len(sweep.incomplete)} incomplete)")
    except ReportError as err:
        print(f"caplm.report: {err}", file=sys.stderr)
        return 2
    out = args.out or root / "report"
    verdicts = write_report(sweep, out, args.gallery)
    print(
        f"{sweep.finished} complete jobs ({len(sweep.complete)} distinct results) from {root}; "
        f"report: {out / 'report.md'}"
    )
    for line in verdicts:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
