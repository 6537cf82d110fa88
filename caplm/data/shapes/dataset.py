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

import random
from dataclasses import asdict
from pathlib import Path

import numpy as np

from caplm.data.generated import (
    cached_extra_captions,
    cached_pictures,
    check_extra,
    generated_dataset,
)
from caplm.data.shapes.grammar import describe_scene
from caplm.data.shapes.render import render_scene
from caplm.data.shapes.scene import sample_scene
from caplm.data.shapes.settings import GENERATOR_VERSION, ShapesConfig, dataset_key
from caplm.data.types import SPLITS, CaptionDataset


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
    key = dataset_key(config)
    data = cached_pictures("shapes", key, config, cache_dir, lambda: _generate(config))
    info = {"config": asdict(config), "generator_version": GENERATOR_VERSION}
    return generated_dataset("shapes", key, data, image_id, normaliser_name, info)


def extra_scenes(
    config: ShapesConfig, num_scenes: int, part: str = "train"
) -> list[tuple[list[dict], list[str]]]:
    """Scenes that are not pictures of the dataset (their own seed stream), with captions."""
    check_extra(num_scenes, part)
    return [_scene(config, "extra", part, i) for i in range(num_scenes)]


def extra_scene_captions(
    config: ShapesConfig,
    num_scenes: int,
    part: str = "train",
    cache_dir: str | Path | None = None,
) -> list[str]:
    """Raw captions (``captions_per_image`` per scene) of ``num_scenes`` extra scenes; with
    ``cache_dir``, generated once and kept in ``<cache_dir>/shapes/extra-<key>.txt``."""
    return cached_extra_captions(
        "shapes", GENERATOR_VERSION, config, num_scenes, part, cache_dir,
        lambda: extra_scenes(config, num_scenes, part),
    )  # fmt: skip
