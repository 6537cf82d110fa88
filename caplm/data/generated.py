"""What the generated datasets (``shapes``, ``scenes``) share: their pictures and records
cached in one ``.npz`` per config, and the CaptionDataset built from them.

A generator gives, per split, an array of pictures (N, S, S, 3) and one record per picture
(``{"objects": [...], "captions": [...]}``). :func:`cached_pictures` keeps them in
``<cache_dir>/<name>/<key>.npz`` (a bad or foreign file is moved aside and generated again; a
cache that cannot be written, e.g. read-only, only warns: generating is cheap), and
:func:`generated_dataset` turns them into a dataset whose captions are tokenised by the
normaliser ``data.normaliser`` names and whose ``info["scenes"]`` holds each picture's objects.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from caplm.data.text import normaliser
from caplm.data.types import SPLITS, CaptionDataset, CaptionImage
from caplm.io import atomic_write, move_aside, stable_hash, write_text


@dataclass(frozen=True)
class GeneratedConfig:
    """What determines a generated dataset (``data.shapes``, ``data.scenes``): every field is
    part of its cache key. Each dataset subclasses it with its own defaults and limits."""

    #: The config's name in messages (``data.<group>.<field>``).
    group: ClassVar[str] = ""
    min_image_size: ClassVar[int] = 1
    image_size_why: ClassVar[str] = ""
    #: The most objects a picture may hold, and why.
    most_objects: ClassVar[int] = 1
    most_objects_why: ClassVar[str] = ""

    seed: int = 0
    image_size: int = 64
    num_train: int = 1000
    num_val: int = 200
    num_test: int = 200
    min_objects: int = 1
    max_objects: int = 3
    captions_per_image: int = 5
    noise_std: float = 0.0  # Gaussian pixel noise, in 0-255 units (0: clean pictures)

    def __post_init__(self):
        for name in ("seed", "image_size", "num_train", "num_val", "num_test", "min_objects",
                     "max_objects", "captions_per_image"):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"data.{self.group}.{name} = {value!r}: must be an integer")
        if not isinstance(self.noise_std, (int, float)) or isinstance(self.noise_std, bool):
            raise TypeError(f"data.{self.group}.noise_std = {self.noise_std!r}: must be a number")
        self.check_seed()
        self.check("image_size", self.image_size >= self.min_image_size,
                   f"at least {self.min_image_size} pixels, {self.image_size_why}")  # fmt: skip
        for split in SPLITS:
            self.check(f"num_{split}", getattr(self, f"num_{split}") >= 1, "at least 1")
        self.check("min_objects", self.min_objects >= 1, "at least 1")
        self.check("max_objects", self.max_objects <= self.most_objects,
                   f"at most {self.most_objects}: {self.most_objects_why}")  # fmt: skip
        self.check("min_objects", self.min_objects <= self.max_objects,
                   f"at most max_objects ({self.max_objects}); lower it or raise max_objects")  # fmt: skip
        self.check("captions_per_image", self.captions_per_image >= 1, "at least 1")
        self.check("noise_std", self.noise_std >= 0, "0 (no noise) or more")

    def check_seed(self) -> None:
        """A dataset's own check of its seed (none by default)."""

    def check(self, name: str, ok: bool, must: str) -> None:
        if not ok:
            raise ValueError(f"data.{self.group}.{name} = {getattr(self, name)!r}: must be {must}")


Pictures = tuple[dict[str, np.ndarray], dict[str, list[dict]]]
#: A generator's extra scenes: per scene its objects and its captions.
Scenes = list[tuple[list[dict], list[str]]]
#: The parts of a generator's extra scenes: an LM's training text and its validation text.
EXTRA_PARTS = ("train", "val")


def cached_pictures(
    name: str, key: str, config, cache_dir: str | Path | None, generate: Callable[[], Pictures]
) -> Pictures:
    """The pictures and records of ``config`` (``num_<split>``, ``image_size``): from
    ``<cache_dir>/<name>/<key>.npz``, or generated now (and stored there)."""
    path = Path(cache_dir) / name / f"{key}.npz" if cache_dir is not None else None
    data = _load(path, name, key, config) if path is not None and path.exists() else None
    if data is not None:
        return data
    if path is not None and path.exists():
        move_aside(path, "see the warning above; generating the dataset again")
    data = generate()
    if path is not None:
        try:
            _save(path, key, *data)
        except OSError as err:  # e.g. a read-only shared cache: generating is cheap
            warnings.warn(
                f"cannot cache the {name} dataset at {path} ({err}); it is not kept", stacklevel=3
            )
    return data


def cached_lines(
    path: Path | None, count: int, make: Callable[[], list[str]], what: str
) -> list[str]:
    """``count`` generated text lines (an LM corpus): from the text file ``path`` when it holds
    that many, else made now and written there (``path`` None: not cached)."""
    if path is not None and path.is_file():
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            lines = []
            warnings.warn(f"{path}: unreadable ({err}); generating again", stacklevel=3)
        if len(lines) == count:
            return lines
        move_aside(path, f"it has {len(lines)} lines, not {count}")
    lines = make()
    if path is not None:
        try:
            write_text(path, "".join(line + "\n" for line in lines))
        except OSError as err:
            warnings.warn(f"cannot cache {what} at {path} ({err})", stacklevel=3)
    return lines


def check_extra(num_scenes: object, part: str) -> None:
    """``num_scenes`` (an integer, 0 or more) extra scenes of ``part`` can be asked for."""
    if part not in EXTRA_PARTS:
        raise ValueError(
            f"part = {part!r}: must be one of {EXTRA_PARTS} ('train' for a language model's training text, 'val' for its validation text)"
        )
    if not isinstance(num_scenes, int) or isinstance(num_scenes, bool) or num_scenes < 0:
        raise ValueError(f"num_scenes = {num_scenes!r}: must be an integer, 0 or more")


def extra_key(generator_version: int, config, num_scenes: int, part: str) -> str:
    """What a generator's extra captions depend on (not the image size or the split sizes)."""
    return stable_hash({"generator_version": generator_version, "seed": config.seed,
                        "min_objects": config.min_objects, "max_objects": config.max_objects,
                        "captions_per_image": config.captions_per_image, "part": part,
                        "num_scenes": num_scenes})  # fmt: skip


def cached_extra_captions(
    name: str,
    generator_version: int,
    config,
    num_scenes: int,
    part: str,
    cache_dir: str | Path | None,
    scenes: Callable[[], Scenes],
) -> list[str]:
    """The captions of the extra ``scenes()`` (``captions_per_image`` per scene, one line
    each); with ``cache_dir``, made once and kept in ``<cache_dir>/<name>/extra-<key>.txt``."""
    check_extra(num_scenes, part)
    path = None
    if cache_dir is not None:
        key = extra_key(generator_version, config, num_scenes, part)
        path = Path(cache_dir) / name / f"extra-{key}.txt"

    def make() -> list[str]:
        return [c for _, captions in scenes() for c in captions]

    return cached_lines(path, num_scenes * config.captions_per_image, make, "extra captions")


def generated_dataset(
    name: str,
    key: str,
    data: Pictures,
    image_id: Callable[[str, int], str],
    normaliser_name: str,
    info: dict,
) -> CaptionDataset:
    """The CaptionDataset of cached pictures and records; ``info`` gains ``scenes``."""
    normalise = normaliser(normaliser_name)
    images, records = data
    splits, scenes, where = {}, {}, {}
    for split in SPLITS:
        splits[split] = []
        for i, record in enumerate(records[split]):
            image = image_id(split, i)
            raw = record["captions"]
            splits[split].append(CaptionImage(image, [normalise(c) for c in raw], raw))
            scenes[image] = record["objects"]
            where[image] = (split, i)

    def load_image(image: str) -> np.ndarray:
        if image not in where:
            raise KeyError(
                f"{image!r} is not an image of this {name} dataset (ids look like "
                f"{image_id('train', 0)!r})"
            )
        split, i = where[image]
        return images[split][i].copy()

    return CaptionDataset(
        name=name,
        splits=splits,
        key=key,
        load_image=load_image,
        info={"scenes": scenes, **info},
        normaliser=normaliser_name,
    )


def _save(path: Path, key: str, images: dict[str, np.ndarray], records: dict) -> None:
    meta = json.dumps({"key": key, "records": records})
    arrays = {f"{split}_images": images[split] for split in SPLITS}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: given a name, numpy would append ".npz"
            np.savez_compressed(f, meta=np.array(meta), **arrays)

    atomic_write(path, write)


def _load(path: Path, name: str, key: str, config) -> Pictures | None:
    """The cached pictures and records, or None (with a warning) when the file is unusable."""
    try:
        with np.load(path) as npz:
            meta = json.loads(str(npz["meta"]))
            images = {split: npz[f"{split}_images"] for split in SPLITS}
        records = meta["records"]
        if meta["key"] != key:
            raise ValueError(f"it holds dataset {meta['key']}")
        for split in SPLITS:
            shape = (getattr(config, f"num_{split}"), config.image_size, config.image_size, 3)
            if (
                images[split].shape != shape
                or images[split].dtype != np.uint8
                or len(records[split]) != shape[0]
            ):
                raise ValueError(f"its {split} split does not match the config")
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as err:
        warnings.warn(
            f"{path}: unusable {name} cache ({err}); generating the dataset again", stacklevel=4
        )
        return None
    return images, records
