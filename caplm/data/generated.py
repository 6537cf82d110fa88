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
from pathlib import Path

import numpy as np

from caplm.data.text import normaliser
from caplm.data.types import SPLITS, CaptionDataset, CaptionImage
from caplm.io import atomic_write, move_aside, stable_hash, write_text

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
