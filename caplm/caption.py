"""Caption new images with a finished job: ``python -m caplm.caption JOB_DIR IMAGE...``
(``--help`` lists the options; :mod:`caplm.runtime.captioner` says what each does)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from caplm.runtime.captioner import CaptionError, find_images, format_text, load_job


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m caplm.caption",
        description="Caption images with the trained caption generator of a finished job.",
    )
    parser.add_argument("job_dir", metavar="JOB_DIR", help="the job's output folder")
    parser.add_argument(
        "images", metavar="IMAGE", nargs="+", help="image files, or folders of images"
    )
    parser.add_argument(
        "--beam-width", type=_positive, default=None, help="beam width (default: the job's)"
    )
    parser.add_argument(
        "--n-best",
        type=_positive,
        default=1,
        help="the K best captions per image, with log-probabilities",
    )
    parser.add_argument("--json", action="store_true", help="write JSON instead of text lines")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(message)s")
    args = parse_args(argv)
    try:
        captioner = load_job(args.job_dir, args.device)
        paths = find_images(args.images)
        width = args.beam_width or captioner.model.hparams.beam_width
        if args.n_best > width:
            print(
                f"--n-best {args.n_best}: the beam is widened from {width} to {args.n_best}",
                file=sys.stderr,
            )
            width = args.n_best
        results = captioner.caption(paths, width, args.n_best)
    except CaptionError as err:
        print(f"caplm.caption: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
    else:
        sys.stdout.write(format_text(results, args.n_best))
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


if __name__ == "__main__":
    sys.exit(main())
