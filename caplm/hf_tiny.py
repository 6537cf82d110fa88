"""Tiny Hugging Face causal LMs made here, from scratch: ``python -m caplm.hf_tiny OUT``.

They are NOT pretrained models: a byte-level BPE tokenizer trained with ``tokenizers`` on a
caption dataset's training captions (or any sentences), a 2-block GPT-2, GPT-NeoX (Pythia's
architecture) or Llama config, randomly initialised and, with ``--epochs``, trained a little
on the same sentences by a plain loop. Saved with ``save_pretrained`` (model + tokenizer), the
folder is what ``lm=hf lm.path=OUT`` reads, so the pipeline runs end to end on a machine
without a network (the tests, and ``+experiment=hf_transfer`` on the embedded data).

    python -m caplm.hf_tiny /tmp/tiny-gpt2 --family gpt2 --epochs 3
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from caplm.runtime.tiny_models import FAMILIES, build, shapes_sentences


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--family", choices=FAMILIES, default="gpt2")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--vocab-size", type=int, default=300)
    ap.add_argument(
        "--epochs", type=int, default=0, help="training epochs on the captions (0: random)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--num-train", type=int, default=1000, help="shapes training images (x5 captions)"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    build(args.out, args.family, shapes_sentences(args.num_train), args.seed, args.vocab_size, args.hidden,
          args.layers, args.epochs)  # fmt: skip
    print(f"{args.out}: a tiny {args.family} trained from scratch here (NOT pretrained)")


if __name__ == "__main__":
    main()
