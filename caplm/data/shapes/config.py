"""What determines a shapes dataset (``ShapesConfig``, every field part of its cache key)
and the visual vocabulary every part shares: shapes, colours, sizes, count words."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from caplm.data.types import SPLITS
from caplm.io import stable_hash

GENERATOR_VERSION = 1  # bump whenever the pictures or captions of a given config change

SHAPES = ("circle", "square", "triangle", "diamond", "star", "cross")
COLOURS = {  # saturated and far apart, so a CNN tells them apart on a light background
    "red": (220, 30, 40),
    "orange": (245, 135, 20),
    "yellow": (230, 200, 0),
    "green": (30, 155, 55),
    "blue": (30, 80, 225),
    "purple": (130, 45, 180),
    "pink": (240, 105, 190),
}
SIZES = {"small": (0.19, 0.25), "large": (0.37, 0.45)}  # extent range, fraction of the side
COUNT_WORDS = ("no", "one", "two", "three", "four")  # indexed by the count
MAX_OBJECTS = len(COUNT_WORDS) - 1
MIN_IMAGE_SIZE = 32  # below this a small shape is a few pixels wide


@dataclass(frozen=True)
class ShapesConfig:
    """What determines the dataset; every field is part of its cache key."""

    seed: int = 0
    image_size: int = 64
    num_train: int = 1000
    num_val: int = 200
    num_test: int = 200
    min_objects: int = 1
    max_objects: int = 3
    captions_per_image: int = 5
    noise_std: float = 4.0  # Gaussian pixel noise, in 0-255 units

    def __post_init__(self):
        for name in ("seed", "image_size", "num_train", "num_val", "num_test", "min_objects",
                     "max_objects", "captions_per_image"):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"data.shapes.{name} = {value!r}: must be an integer")
        if not isinstance(self.noise_std, (int, float)) or isinstance(self.noise_std, bool):
            raise TypeError(f"data.shapes.noise_std = {self.noise_std!r}: must be a number")
        _check(self, "image_size", self.image_size >= MIN_IMAGE_SIZE,
               f"at least {MIN_IMAGE_SIZE} pixels, so that small shapes stay visible")  # fmt: skip
        for split in SPLITS:
            _check(self, f"num_{split}", getattr(self, f"num_{split}") >= 1, "at least 1")
        _check(self, "min_objects", self.min_objects >= 1, "at least 1")
        _check(self, "max_objects", self.max_objects <= MAX_OBJECTS,
               f"at most {MAX_OBJECTS}: more shapes do not fit side by side")  # fmt: skip
        _check(self, "min_objects", self.min_objects <= self.max_objects,
               f"at most max_objects ({self.max_objects}); lower it or raise max_objects")  # fmt: skip
        _check(self, "captions_per_image", self.captions_per_image >= 1, "at least 1")
        _check(self, "noise_std", self.noise_std >= 0, "0 (no noise) or more")


def _check(config: ShapesConfig, name: str, ok: bool, must: str) -> None:
    if not ok:
        raise ValueError(f"data.shapes.{name} = {getattr(config, name)!r}: must be {must}")


def dataset_key(config: ShapesConfig) -> str:
    """Same key, same pictures and captions: the config plus the generator's version."""
    return stable_hash({"generator_version": GENERATOR_VERSION, **asdict(config)})
