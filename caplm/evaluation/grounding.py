"""Grounding: how far generated captions are true of a generated dataset's scenes.

A generated dataset knows what is in each image, so what a caption says can be checked against
it: for ``shapes`` its "colour shape" mentions (here), for ``scenes`` every claim it makes
(``caplm.data.scenes.truth``). :func:`dataset_grounding` picks the checker by dataset. Results
are named by ``caplm.results.grounding_key``.
"""

from __future__ import annotations

import caplm.data.scenes.truth as scenes_truth
from caplm.data.shapes.grammar import plural
from caplm.data.shapes.settings import COLOURS, SHAPES


def _noun(word: str) -> str | None:
    """The shape a (possibly plural or synonym) noun names, or None."""
    for shape in SHAPES:
        if word in (shape, plural(shape)):
            return shape
    return "circle" if word in ("disc", "discs") else None


def grounding(tokens: list[str], objects: list[dict]) -> dict:
    """How far a caption's "colour shape" mentions are true of a scene.

    Returns ``mentions`` (colour-shape phrases in the caption), ``true_mentions`` (those the
    scene has), ``kinds`` (distinct colour-shape kinds in the scene) and ``kinds_named``
    (those the caption names). Sizes and relations are not checked.
    """
    scene = {(o["colour"], o["shape"]) for o in objects}
    said = [
        (tokens[i], _noun(tokens[i + 1]))
        for i in range(len(tokens) - 1)
        if tokens[i] in COLOURS and _noun(tokens[i + 1])
    ]
    return {
        "mentions": len(said),
        "true_mentions": sum(m in scene for m in said),
        "kinds": len(scene),
        "kinds_named": len(scene & set(said)),
    }


def needs_binding(objects: list[dict]) -> bool:
    """Whether the scene's colours and shapes alone do not tell which colour goes with which
    shape: its colour-shape kinds are fewer than every pairing of its colours and shapes (a
    red circle beside a blue star, not a red circle beside a red star).

    The merge architecture cannot bind them: its next-word logits are an image-free term plus
    a prefix-free term, so after "a red" the odds of "circle" against "star" move with the
    picture by the same factor as after "a blue"."""
    kinds = {(o["colour"], o["shape"]) for o in objects}
    return len(kinds) < len({c for c, _ in kinds}) * len({s for _, s in kinds})


def grounding_scores(captions: dict[str, list[str]], scenes: dict[str, list[dict]]) -> dict:
    """Over a set of generated captions (image id -> tokens): ``object_precision`` (true
    mentions / mentions), ``object_recall`` (kinds named / kinds in the scenes) and
    ``all_true_frac`` (captions whose every mention is true and that name at least one);
    ``binding_scenes_frac``, the share of those pictures that :func:`needs_binding`, and
    ``all_true_frac_binding`` / ``all_true_frac_no_binding``, ``all_true_frac`` over those
    pictures and over the others (None where there are none)."""
    counts = [grounding(tokens, scenes[image]) for image, tokens in captions.items()]
    total = {
        k: sum(c[k] for c in counts) for k in ("mentions", "true_mentions", "kinds", "kinds_named")
    }
    all_true = [c["mentions"] > 0 and c["true_mentions"] == c["mentions"] for c in counts]
    binding = [needs_binding(scenes[image]) for image in captions]
    pairs = list(zip(all_true, binding, strict=True))
    return {
        "object_precision": total["true_mentions"] / max(total["mentions"], 1),
        "object_recall": total["kinds_named"] / max(total["kinds"], 1),
        "all_true_frac": sum(all_true) / max(len(counts), 1),
        "binding_scenes_frac": sum(binding) / max(len(counts), 1),
        "all_true_frac_binding": _share([t for t, b in pairs if b]),
        "all_true_frac_no_binding": _share([t for t, b in pairs if not b]),
    }


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


#: The grounding checker of each generated dataset (by ``CaptionDataset.name``).
CHECKERS = {"shapes": grounding_scores, "scenes": scenes_truth.grounding_scores}


def dataset_grounding(
    dataset: str, captions: dict[str, list[str]], scenes: dict[str, list[dict]]
) -> dict:
    """The grounding scores of generated captions on a generated dataset's scenes."""
    if dataset not in CHECKERS:
        raise ValueError(
            f"no grounding checker for dataset {dataset!r}; known: {', '.join(CHECKERS)}"
        )
    return CHECKERS[dataset](captions, scenes)


def caption_truth(
    dataset: str, captions: dict[str, list[str]], scenes: dict[str, list[dict]]
) -> dict[str, bool]:
    """Per caption, whether it counts as all true (what ``all_true_frac`` counts)."""
    return {
        image: dataset_grounding(dataset, {image: tokens}, scenes)["all_true_frac"] == 1
        for image, tokens in captions.items()
    }
