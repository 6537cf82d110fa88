"""The two shapes of data every part agrees on: a captioned image dataset and a text corpus."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")


@dataclass
class CaptionImage:
    """One image and its reference captions."""

    image_id: str  # unique in the dataset: the image file name for real data
    captions: list[list[str]]  # tokenised references (at least one, none empty)
    raw: list[str]  # the same references as written (for the evaluation toolkits)


@dataclass
class CaptionDataset:
    """A caption dataset split into train/val/test with disjoint images.

    ``load_image(image_id)`` returns an RGB ``uint8`` array of shape (H, W, 3); it is what the
    image encoder reads (``None`` when the dataset comes with precomputed features only).
    ``key`` identifies the captions as written and the splits for caches; ``image_files`` (image id -> file)
    names the image files of data read from disk, so caches of what is computed from the
    images are keyed by those files' content too (generated data holds its images in memory,
    a pure function of ``key``, and leaves it empty). ``normaliser`` names the rule that made
    the tokens (:mod:`caplm.data.text`): its LM corpora are normalised by the same one.
    """

    name: str
    splits: dict[str, list[CaptionImage]]
    key: str
    load_image: Callable[[str], np.ndarray] | None = None
    info: dict = field(default_factory=dict)
    image_files: dict[str, Path] = field(default_factory=dict)
    normaliser: str = "keep_punct"

    def sentences(self, split: str) -> list[list[str]]:
        """Every tokenised reference caption of a split, image by image."""
        return [c for img in self.splits[split] for c in img.captions]

    def image_ids(self, split: str) -> list[str]:
        return [img.image_id for img in self.splits[split]]


@dataclass
class Corpus:
    """Tokenised sentences a language model trains on (``train``) and is validated on."""

    name: str
    train: list[list[str]]
    val: list[list[str]]
    info: dict = field(default_factory=dict)
