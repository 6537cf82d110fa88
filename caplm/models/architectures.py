"""Where words and picture meet: the caption generator architectures (``model.architecture``,
the ``model`` config group).

- ``merge`` (the study's, the default; :mod:`caplm.models.caption_generator`): an image-free
  prefix, the image vector merged with its output before the output layer.
- ``merge_attention`` (:mod:`caplm.models.attention`): merge, with each prefix state attending
  over the picture's regions.
- ``par_inject``, ``init_inject`` (:mod:`caplm.models.inject`): the image is part of the RNN's
  input at every step, or sets its initial state.

A model config without ``architecture`` is merge's (as every config before there were others).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch

from caplm.models.attention import MergeAttentionGenerator
from caplm.models.caption_generator import ARCHITECTURE, CaptionGenerator
from caplm.models.inject import InjectGenerator

ARCHITECTURES: dict[str, type[CaptionGenerator]] = {
    ARCHITECTURE: CaptionGenerator,
    "merge_attention": MergeAttentionGenerator,
    "par_inject": InjectGenerator,
    "init_inject": InjectGenerator,
}
#: The architectures whose prefix never sees the image: an LM's transferability scores apply.
IMAGE_FREE_PREFIX = (ARCHITECTURE, "merge_attention")


def architecture_of(model_cfg) -> str:
    """A ``model`` config's architecture (merge when it names none), checked."""
    name = model_cfg.get("architecture") or ARCHITECTURE
    if name not in ARCHITECTURES:
        raise ValueError(
            f"model.architecture={name!r} is unknown; choose one of {', '.join(ARCHITECTURES)}"
        )
    return name


def generator_class(model_cfg) -> type[CaptionGenerator]:
    return ARCHITECTURES[architecture_of(model_cfg)]


def build_generator(
    model_cfg, vocab_size: int, feature_shape: tuple[int, ...], generation
) -> CaptionGenerator:
    """The generator a ``model`` config describes, for features of ``feature_shape`` per
    image ((F,), or (R, D) region vectors) and the ``generation`` rules."""
    cls = generator_class(model_cfg)
    shape = tuple(feature_shape)
    if len(shape) not in (1, 2):
        raise ValueError(f"image features must be (F,) or (R, D) per image, got {shape}")
    args = {k: model_cfg[k] for k in constructor_names(cls) if k in model_cfg}
    args["architecture"] = architecture_of(model_cfg)
    return cls(
        vocab_size=vocab_size,
        feature_size=shape[-1],
        regions=shape[0] if len(shape) == 2 else None,
        **args,
        **dict(generation),
    )


def constructor_names(cls) -> list[str]:
    """Every constructor argument of generator class ``cls``, its bases' included."""
    names = []
    for klass in reversed(cls.__mro__):
        if isinstance(klass, type) and issubclass(klass, CaptionGenerator):
            for n, p in inspect.signature(klass.__init__).parameters.items():
                if n != "self" and p.kind is not p.VAR_KEYWORD and n not in names:
                    names.append(n)
    return names


def load_generator(checkpoint: str | Path, map_location=None) -> CaptionGenerator:
    """A trained generator from a Lightning checkpoint, of the architecture it was saved as."""
    hparams = torch.load(checkpoint, map_location="cpu", weights_only=False).get(
        "hyper_parameters", {}
    )
    cls = ARCHITECTURES.get(hparams.get("architecture") or ARCHITECTURE, CaptionGenerator)
    return cls.load_from_checkpoint(checkpoint, map_location=map_location)
