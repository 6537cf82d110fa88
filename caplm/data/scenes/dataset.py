"""The scenes dataset: pictures and captions per split, cached; and extra scenes' captions.

Every picture is a pure function of (seed, split, index), so the val and test pictures stay
the same when ``num_train`` changes. ``extra_scene_captions`` gives captions of further scenes
that are not pictures of the dataset (their own seed streams): the in-domain corpus for
language models, as MSCOCO captions are for a Flickr8k captioner. It can be cached as text.

Randomness comes from ``random.Random`` seeded with a string naming the stream (e.g.
"scenes/0/image/val/17/scene"): string seeds go through SHA-512, so they do not depend on the
process, and each stream is independent of every other draw.
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
from caplm.data.scenes.grammar import describe_scene
from caplm.data.scenes.render import render_scene
from caplm.data.scenes.scene import sample_scene
from caplm.data.scenes.settings import GENERATOR_VERSION, ScenesConfig, dataset_key
from caplm.data.types import SPLITS, CaptionDataset

NAME = "scenes"


def _rng(config: ScenesConfig, *stream: object) -> random.Random:
    """A generator that depends only on the seed and the stream's name, not on other draws."""
    return random.Random("/".join(map(str, (NAME, config.seed, *stream))))


def _scene(config: ScenesConfig, *stream: object) -> tuple[list[dict], list[str]]:
    objects = sample_scene(_rng(config, *stream, "scene"), config.min_objects, config.max_objects)
    captions = describe_scene(objects, _rng(config, *stream, "captions"), config.captions_per_image)
    return objects, captions


def image_id(split: str, index: int) -> str:
    return f"scenes-{split}-{index:06d}"


def scene_records(config: ScenesConfig, split: str) -> list[tuple[list[dict], list[str]]]:
    """(objects, captions) of each picture of a split, without drawing the pictures."""
    if split not in SPLITS:
        raise ValueError(f"split = {split!r}: must be one of {SPLITS}")
    return [_scene(config, "image", split, i) for i in range(getattr(config, f"num_{split}"))]


def _generate(config: ScenesConfig) -> tuple[dict[str, np.ndarray], dict[str, list[dict]]]:
    """Pictures per split, and per picture its objects and captions."""
    images, records = {}, {}
    for split in SPLITS:
        scenes = scene_records(config, split)
        images[split] = np.empty((len(scenes), config.image_size, config.image_size, 3), np.uint8)
        records[split] = []
        for i, (objects, captions) in enumerate(scenes):
            noise = None
            if config.noise_std > 0:
                noise = np.random.default_rng(
                    _rng(config, "image", split, i, "pixels").getrandbits(128)
                )
            images[split][i] = render_scene(objects, config.image_size, noise, config.noise_std)
            records[split].append({"objects": objects, "captions": captions})
    return images, records


def make_scenes_dataset(
    config: ScenesConfig, cache_dir: str | Path | None = None, normaliser_name: str = "study"
) -> CaptionDataset:
    """The scenes dataset, its captions tokenised by ``normaliser_name`` (they are lower-case
    a-z words, so every normaliser gives ``caption.split()``); with ``cache_dir``, generated
    once and kept in ``<cache_dir>/scenes/<key>.npz``.

    ``info["scenes"]`` maps each image id to its objects (dicts with ``category``,
    ``colour``, ``size``, ``col``, ``row``, ``x``, ``y``, ``extent``; see ``scene``), which
    ``truth.grounding_scores`` checks generated captions against.
    """
    key = dataset_key(config)
    data = cached_pictures(NAME, key, config, cache_dir, lambda: _generate(config))
    info = {"config": asdict(config), "generator_version": GENERATOR_VERSION}
    return generated_dataset(NAME, key, data, image_id, normaliser_name, info)


# --------------------------------------------------------------------------- extra scenes
def extra_scenes(
    config: ScenesConfig, num_scenes: int, part: str = "train"
) -> list[tuple[list[dict], list[str]]]:
    """Scenes that are not pictures of the dataset (their own seed stream), with captions.
    The i-th scene does not depend on ``num_scenes``."""
    check_extra(num_scenes, part)
    return [_scene(config, "extra", part, i) for i in range(num_scenes)]


def extra_scene_captions(
    config: ScenesConfig,
    num_scenes: int,
    part: str = "train",
    cache_dir: str | Path | None = None,
) -> list[str]:
    """Captions (``captions_per_image`` per scene, one string each, words separated by single
    spaces) of ``num_scenes`` extra scenes; with ``cache_dir``, generated once and kept in
    ``<cache_dir>/scenes/extra-<key>.txt`` (one caption a line)."""
    return cached_extra_captions(
        NAME, GENERATOR_VERSION, config, num_scenes, part, cache_dir,
        lambda: extra_scenes(config, num_scenes, part),
    )  # fmt: skip
