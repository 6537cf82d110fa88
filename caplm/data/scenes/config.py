"""What determines a scenes dataset (``ScenesConfig``, every field part of its cache key)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from caplm.data.scenes.lexicon import MAX_OBJECTS
from caplm.data.types import SPLITS
from caplm.io import stable_hash

GENERATOR_VERSION = 1  # bump whenever the pictures or captions of a given config change
MIN_IMAGE_SIZE = 64  # below this a small icon is a few pixels wide


@dataclass(frozen=True)
class ScenesConfig:
    """What determines the dataset; every field is part of its cache key."""

    seed: int = 0
    image_size: int = 128
    num_train: int = 1000
    num_val: int = 200
    num_test: int = 200
    min_objects: int = 1
    max_objects: int = 4
    captions_per_image: int = 5
    noise_std: float = 0.0  # Gaussian pixel noise, in 0-255 units (0: clean pictures)

    def __post_init__(self):
        for name in ("seed", "image_size", "num_train", "num_val", "num_test", "min_objects",
                     "max_objects", "captions_per_image"):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"data.scenes.{name} = {value!r}: must be an integer")
        if not isinstance(self.noise_std, (int, float)) or isinstance(self.noise_std, bool):
            raise TypeError(f"data.scenes.noise_std = {self.noise_std!r}: must be a number")
        _check(self, "seed", self.seed >= 0, "0 or more")
        _check(self, "image_size", self.image_size >= MIN_IMAGE_SIZE,
               f"at least {MIN_IMAGE_SIZE} pixels, so that small icons stay recognisable")  # fmt: skip
        for split in SPLITS:
            _check(self, f"num_{split}", getattr(self, f"num_{split}") >= 1, "at least 1")
        _check(self, "min_objects", self.min_objects >= 1, "at least 1")
        _check(self, "max_objects", self.max_objects <= MAX_OBJECTS,
               f"at most {MAX_OBJECTS}: the captions count up to {MAX_OBJECTS}")  # fmt: skip
        _check(self, "min_objects", self.min_objects <= self.max_objects,
               f"at most max_objects ({self.max_objects}); lower it or raise max_objects")  # fmt: skip
        _check(self, "captions_per_image", self.captions_per_image >= 1, "at least 1")
        _check(self, "noise_std", self.noise_std >= 0, "0 (no noise) or more")


def _check(config: ScenesConfig, name: str, ok: bool, must: str) -> None:
    if not ok:
        raise ValueError(f"data.scenes.{name} = {getattr(config, name)!r}: must be {must}")


def dataset_key(config: ScenesConfig) -> str:
    """Same key, same pictures and captions: the config plus the generator's version."""
    return stable_hash({"generator": "scenes", "generator_version": GENERATOR_VERSION,
                        **asdict(config)})  # fmt: skip
