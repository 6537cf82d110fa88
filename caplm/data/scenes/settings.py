"""What determines a scenes dataset (``ScenesConfig``, every field part of its cache key)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

from caplm.data.generated import GeneratedConfig
from caplm.data.scenes.lexicon import MAX_OBJECTS
from caplm.io import stable_hash

GENERATOR_VERSION = 1  # bump whenever the pictures or captions of a given config change
MIN_IMAGE_SIZE = 64  # below this a small icon is a few pixels wide


@dataclass(frozen=True)
class ScenesConfig(GeneratedConfig):
    """What determines the dataset; every field is part of its cache key."""

    group: ClassVar[str] = "scenes"
    min_image_size: ClassVar[int] = MIN_IMAGE_SIZE
    image_size_why: ClassVar[str] = "so that small icons stay recognisable"
    most_objects: ClassVar[int] = MAX_OBJECTS
    most_objects_why: ClassVar[str] = f"the captions count up to {MAX_OBJECTS}"

    image_size: int = 128
    max_objects: int = 4

    def check_seed(self) -> None:
        self.check("seed", self.seed >= 0, "0 or more")


def dataset_key(config: ScenesConfig) -> str:
    """Same key, same pictures and captions: the config plus the generator's version."""
    return stable_hash({"generator": "scenes", "generator_version": GENERATOR_VERSION,
                        **asdict(config)})  # fmt: skip
