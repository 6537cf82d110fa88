"""What determines a shapes dataset (``ShapesConfig``, every field part of its cache key)
and the visual vocabulary every part shares: shapes, colours, sizes, count words."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

from caplm.data.generated import GeneratedConfig
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
class ShapesConfig(GeneratedConfig):
    """What determines the dataset; every field is part of its cache key."""

    group: ClassVar[str] = "shapes"
    min_image_size: ClassVar[int] = MIN_IMAGE_SIZE
    image_size_why: ClassVar[str] = "so that small shapes stay visible"
    most_objects: ClassVar[int] = MAX_OBJECTS
    most_objects_why: ClassVar[str] = "more shapes do not fit side by side"

    image_size: int = 64
    max_objects: int = 3
    noise_std: float = 4.0  # Gaussian pixel noise, in 0-255 units


def dataset_key(config: ShapesConfig) -> str:
    """Same key, same pictures and captions: the config plus the generator's version."""
    return stable_hash({"generator_version": GENERATOR_VERSION, **asdict(config)})
