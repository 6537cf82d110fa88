"""The embedded default dataset: generated pictures of coloured shapes, five captions each.

It needs no files and no network. Every caption is true of its picture: relations and
positions are computed from where the shapes are drawn. The parts:

- ``settings``: ``ShapesConfig`` (what determines a dataset) and the shapes, colours and sizes;
- ``scene``: sampling scenes and the spatial facts about them;
- ``grammar``: captions of a scene;
- ``render``: drawing a scene;
- ``dataset``: the cached dataset of pictures and captions, and extra scenes' captions (an
  in-domain LM corpus).

Checking generated captions against the scenes lives in ``caplm.evaluation.grounding``.
"""

from caplm.data.shapes.dataset import (
    extra_scene_captions,
    extra_scenes,
    image_id,
    make_shapes_dataset,
)
from caplm.data.shapes.grammar import MAX_WORDS, MIN_WORDS, describe_scene
from caplm.data.shapes.render import render_scene
from caplm.data.shapes.scene import relation, sample_scene
from caplm.data.shapes.settings import COLOURS, SHAPES, SIZES, ShapesConfig, dataset_key

__all__ = [
    "COLOURS",
    "MAX_WORDS",
    "MIN_WORDS",
    "SHAPES",
    "SIZES",
    "ShapesConfig",
    "dataset_key",
    "describe_scene",
    "extra_scene_captions",
    "extra_scenes",
    "image_id",
    "make_shapes_dataset",
    "relation",
    "render_scene",
    "sample_scene",
]
