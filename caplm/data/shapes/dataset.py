"""The shapes dataset: pictures and captions per split, cached; and extra scenes' captions.

Every picture is a pure function of (seed, split, index), so the val and test pictures stay
the same when ``num_train`` changes. ``extra_scene_captions`` gives captions of further scenes
that are not pictures of the dataset: an in-domain corpus for language models, as MSCOCO
captions are for a Flickr8k captioner.

Randomness comes from ``random.Random`` seeded with a string naming the stream (e.g.
"shapes/0/image/val/17/scene"): string seeds go through SHA-512, so they do not depend on
the process (unlike ``hash()``), and scalar draws are several times faster than numpy's,
which keeps 20,000 captioned scenes at a few seconds.
"""

from __future__ import annotations

import json
import random
import warnings
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from caplm.data.shapes.config import GENERATOR_VERSION, ShapesConfig, dataset_key
from caplm.data.shapes.grammar import describe_scene
from caplm.data.shapes.render import render_scene
from caplm.data.shapes.scene import sample_scene
from caplm.data.text import normaliser
from caplm.data.types import SPLITS, CaptionDataset, CaptionImage
from caplm.io import atomic_write, move_aside

EXTRA_PARTS = ("train", "val")


def _rng(config: ShapesConfig, *stream: object) -> random.Random:
    """A generator that depends only on the seed and the stream's name, not on other draws."""
    return random.Random("/".join(map(str, ("shapes", config.seed, *stream))))


def _scene(config: ShapesConfig, *stream: object) -> tuple[list[dict], list[str]]:
    objects = sample_scene(_rng(config, *stream, "scene"), config.min_objects, config.max_objects)
    captions = describe_scene(objects, _rng(config, *stream, "captions"), config.captions_per_image)
    return objects, captions


def image_id(split: str, index: int) -> str:
    return f"shapes-{split}-{index:06d}"


def _generate(config: ShapesConfig) -> tuple[dict[str, np.ndarray], dict[str, list[dict]]]:
    """Pictures per split, and per picture its objects and captions."""
    images, records = {}, {}
    for split in SPLITS:
        count = getattr(config, f"num_{split}")
        images[split] = np.empty((count, config.image_size, config.image_size, 3), np.uint8)
        records[split] = []
        for i in range(count):
            objects, captions = _scene(config, "image", split, i)
            pixels_rng = np.random.default_rng(
                _rng(config, "image", split, i, "pixels").getrandbits(128)
            )
            images[split][i] = render_scene(
                objects, config.image_size, pixels_rng, config.noise_std
            )
            records[split].append({"objects": objects, "captions": captions})
    return images, records


def make_shapes_dataset(
    config: ShapesConfig, cache_dir: str | Path | None = None, normaliser_name: str = "keep_punct"
) -> CaptionDataset:
    """The shapes dataset, its captions tokenised by ``normaliser_name``; with ``cache_dir``,
    generated once and kept in ``<cache_dir>/shapes/<key>.npz``."""
    normalise = normaliser(normaliser_name)
    key = dataset_key(config)
    path = Path(cache_dir) / "shapes" / f"{key}.npz" if cache_dir is not None else None
    data = _load(path, key, config) if path is not None and path.exists() else None
    if data is None:
        if path is not None and path.exists():
            move_aside(path, "see the warning above; generating the dataset again")
        data = _generate(config)
        if path is not None:
            try:
                _save(path, key, *data)
            except OSError as err:  # e.g. a read-only shared cache: generating is cheap
                warnings.warn(
                    f"cannot cache the shapes dataset at {path} ({err}); it is not kept",
                    stacklevel=2,
                )
    images, records = data

    splits, scenes, where = {}, {}, {}
    for split in SPLITS:
        splits[split] = []
        for i, record in enumerate(records[split]):
            name = image_id(split, i)
            raw = record["captions"]
            splits[split].append(CaptionImage(name, [normalise(c) for c in raw], raw))
            scenes[name] = record["objects"]
            where[name] = (split, i)

    def load_image(name: str) -> np.ndarray:
        if name not in where:
            raise KeyError(
                f"{name!r} is not an image of this shapes dataset (ids look like {image_id('train', 0)!r})"
            )
        split, i = where[name]
        return images[split][i].copy()

    info = {"scenes": scenes, "config": asdict(config), "generator_version": GENERATOR_VERSION}
    return CaptionDataset(
        name="shapes",
        splits=splits,
        key=key,
        load_image=load_image,
        info=info,
        normaliser=normaliser_name,
    )


def _save(
    path: Path, key: str, images: dict[str, np.ndarray], records: dict[str, list[dict]]
) -> None:
    meta = json.dumps({"key": key, "records": records})
    arrays = {f"{split}_images": images[split] for split in SPLITS}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: given a name, numpy would append ".npz"
            np.savez(f, meta=np.array(meta), **arrays)

    atomic_write(path, write)


def _load(path: Path, key: str, config: ShapesConfig):
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
            f"{path}: unusable shapes cache ({err}); generating the dataset again", stacklevel=3
        )
        return None
    return images, records


def extra_scenes(
    config: ShapesConfig, num_scenes: int, part: str = "train"
) -> list[tuple[list[dict], list[str]]]:
    """Scenes that are not pictures of the dataset (their own seed stream), with captions."""
    if part not in EXTRA_PARTS:
        raise ValueError(
            f"part = {part!r}: must be one of {EXTRA_PARTS} ('train' for a language model's training text, 'val' for its validation text)"
        )
    if not isinstance(num_scenes, int) or num_scenes < 0:
        raise ValueError(f"num_scenes = {num_scenes!r}: must be an integer, 0 or more")
    return [_scene(config, "extra", part, i) for i in range(num_scenes)]


def extra_scene_captions(config: ShapesConfig, num_scenes: int, part: str = "train") -> list[str]:
    """Raw captions (``captions_per_image`` per scene) of ``num_scenes`` extra scenes."""
    return [c for _, captions in extra_scenes(config, num_scenes, part) for c in captions]
