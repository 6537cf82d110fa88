"""The embedded default dataset: generated pictures of coloured shapes, five captions each.

It needs no files and no network. Every picture is a pure function of (seed, split, index),
so the val and test pictures stay the same when ``num_train`` changes, and every caption is
true of its picture: relations and positions are computed from where the shapes are drawn.
``extra_scene_captions`` gives captions of further scenes that are not pictures of the
dataset: an in-domain corpus for language models, as MSCOCO captions are for a Flickr8k
captioner.

A scene is a list of objects, each a dict with ``shape``, ``colour``, ``size`` ("small" or
"large"), ``x`` and ``y`` (the centre, as fractions of the image side, y pointing down) and
``extent`` (the object's width and height, as a fraction of the image side).

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
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from caplm.data.text import tokenize
from caplm.data.types import SPLITS, CaptionDataset, CaptionImage
from caplm.io import atomic_write, stable_hash

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
SYNONYMS = {  # the first word is the usual one; repeats weight the choice
    "circle": ("circle", "circle", "disc"),
    "small": ("small", "small", "little"),
    "large": ("large", "large", "big"),
    "in the middle": ("in the middle", "in the centre"),
}
COUNT_WORDS = ("no", "one", "two", "three", "four")  # indexed by the count
MAX_OBJECTS = len(COUNT_WORDS) - 1
MIN_IMAGE_SIZE = 32  # below this a small shape is a few pixels wide
MIN_WORDS, MAX_WORDS = 4, 20  # caption length in tokens, as the study's generators produce

MARGIN = 0.03  # space kept between an object and the image border
GAP = 0.05  # space kept between two objects' boxes, so each stays identifiable
REPEAT_P = 0.2  # chance an object repeats the previous one's colour and shape ("two red circles")
PLACE_TRIES = 50
CAPTION_TRIES = 20
BACKGROUND = (222, 252)  # each channel drawn from this range: always light, a little tinted
SUPERSAMPLE = 4  # drawn this many times larger and shrunk, which smooths the edges
EXTRA_PARTS = ("train", "val")


@dataclass(frozen=True)
class ShapesConfig:
    """What determines the dataset; every field is part of its cache key."""

    seed: int = 0
    image_size: int = 64
    num_train: int = 1000
    num_val: int = 200
    num_test: int = 200
    min_objects: int = 1
    max_objects: int = 3
    captions_per_image: int = 5
    noise_std: float = 4.0  # Gaussian pixel noise, in 0-255 units

    def __post_init__(self):
        for name in ("seed", "image_size", "num_train", "num_val", "num_test", "min_objects",
                     "max_objects", "captions_per_image"):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"data.shapes.{name} = {value!r}: must be an integer")
        if not isinstance(self.noise_std, (int, float)) or isinstance(self.noise_std, bool):
            raise TypeError(f"data.shapes.noise_std = {self.noise_std!r}: must be a number")
        _check(self, "image_size", self.image_size >= MIN_IMAGE_SIZE,
               f"at least {MIN_IMAGE_SIZE} pixels, so that small shapes stay visible")  # fmt: skip
        for split in SPLITS:
            _check(self, f"num_{split}", getattr(self, f"num_{split}") >= 1, "at least 1")
        _check(self, "min_objects", self.min_objects >= 1, "at least 1")
        _check(self, "max_objects", self.max_objects <= MAX_OBJECTS,
               f"at most {MAX_OBJECTS}: more shapes do not fit side by side")  # fmt: skip
        _check(self, "min_objects", self.min_objects <= self.max_objects,
               f"at most max_objects ({self.max_objects}); lower it or raise max_objects")  # fmt: skip
        _check(self, "captions_per_image", self.captions_per_image >= 1, "at least 1")
        _check(self, "noise_std", self.noise_std >= 0, "0 (no noise) or more")


def _check(config: ShapesConfig, name: str, ok: bool, must: str) -> None:
    if not ok:
        raise ValueError(f"data.shapes.{name} = {getattr(config, name)!r}: must be {must}")


def dataset_key(config: ShapesConfig) -> str:
    """Same key, same pictures and captions: the config plus the generator's version."""
    return stable_hash({"generator_version": GENERATOR_VERSION, **asdict(config)})


# ---------------------------------------------------------------------------------------------
# Scenes


def sample_scene(rng: random.Random, min_objects: int, max_objects: int) -> list[dict]:
    """Objects whose boxes do not overlap; a scene where one does not fit is drawn again."""
    count = rng.randint(min_objects, max_objects)
    while True:
        objects: list[dict] = []
        for _ in range(count):
            if objects and rng.random() < REPEAT_P:
                colour, shape = objects[-1]["colour"], objects[-1]["shape"]
            else:
                colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
            size = rng.choice(list(SIZES))
            extent = round(rng.uniform(*SIZES[size]), 3)
            spot = _place(rng, extent, objects)
            if spot is None:
                break
            x, y = spot
            objects.append(dict(shape=shape, colour=colour, size=size, x=x, y=y, extent=extent))
        else:
            return objects


def _place(rng: random.Random, extent: float, objects: list[dict]) -> tuple[float, float] | None:
    low, high = MARGIN + extent / 2, 1 - MARGIN - extent / 2
    for _ in range(PLACE_TRIES):
        x, y = round(rng.uniform(low, high), 3), round(rng.uniform(low, high), 3)
        if all(_apart(x, y, extent, other) for other in objects):
            return x, y
    return None


def _apart(x: float, y: float, extent: float, other: dict) -> bool:
    reach = (extent + other["extent"]) / 2 + GAP
    return abs(x - other["x"]) >= reach or abs(y - other["y"]) >= reach


def relation(a: dict, b: dict) -> str:
    """Where ``a`` is relative to ``b``: "left", "right", "above" or "below".

    The axis is the one the centres are further apart on. Boxes never overlap, so along that
    axis ``a``'s box lies wholly beyond ``b``'s, with a gap: the relation is clearly true.
    """
    dx, dy = a["x"] - b["x"], a["y"] - b["y"]
    if abs(dx) >= abs(dy):
        return "left" if dx < 0 else "right"
    return "above" if dy < 0 else "below"


def side_by_side(a: dict, b: dict) -> bool:
    """True when the two are roughly in one row, so "next to" reads naturally."""
    return abs(a["y"] - b["y"]) < abs(a["x"] - b["x"]) / 2


def _third(v: float) -> int | None:
    """Which third of the image a centre coordinate is in; None near a boundary."""
    if v < 0.37:
        return 0
    if 0.43 < v < 0.57:
        return 1
    if v > 0.63:
        return 2
    return None


POSITIONS = {  # (column, row) third -> phrase
    (0, 0): "in the top left corner",
    (1, 0): "at the top",
    (2, 0): "in the top right corner",
    (0, 1): "on the left",
    (1, 1): "in the middle",
    (2, 1): "on the right",
    (0, 2): "in the bottom left corner",
    (1, 2): "at the bottom",
    (2, 2): "in the bottom right corner",
}


# ---------------------------------------------------------------------------------------------
# Captions


def describe_scene(objects: list[dict], rng: random.Random, count: int) -> list[str]:
    """``count`` captions of the scene, different from each other where the grammar allows."""
    captions: list[str] = []
    for _ in range(count):
        caption = None
        for _ in range(CAPTION_TRIES):
            text = _caption(objects, rng)
            if MIN_WORDS <= len(tokenize(text)) <= MAX_WORDS:
                caption = text
                if text not in captions:
                    break
        # "there is" + a plain list fits the bounds for up to MAX_OBJECTS objects
        captions.append(
            caption or _there(_join([_noun_phrase(g, rng, size=False) for g in _groups(objects)]))
        )
    return captions


def _groups(objects: list[dict]) -> list[list[dict]]:
    """Objects of the same colour and shape together, in scene order ("two red circles")."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for o in objects:
        groups.setdefault((o["colour"], o["shape"]), []).append(o)
    return list(groups.values())


def _caption(objects: list[dict], rng: random.Random) -> str:
    groups = _groups(objects)
    rng.shuffle(groups)  # word order varies: "a red circle and a blue square" or the reverse
    singles = [g[0] for g in groups if len(g) == 1]  # only these can be named in a relation
    pairs = [(a, b) for a in singles for b in singles if a is not b]
    form = rng.choice(["list"] * 3 + ["count"] + (["relation"] * 3 + ["clause"] if pairs else []))

    if form == "clause":  # a sentence about two objects: "the red circle is above the blue star"
        a, b = rng.choice(pairs)
        subject, where = _noun_phrase([a], rng, article=False), _relation_words(a, b, rng)
        return f"the {subject} is {where} the {_noun_phrase([b], rng, article=False)}"
    background = True
    if form == "relation":
        a, b = rng.choice(pairs)
        phrase = f"{_noun_phrase([a], rng)} {_relation_words(a, b, rng)} {_noun_phrase([b], rng)}"
        rest = [_noun_phrase(g, rng) for g in groups if g[0] is not a and g[0] is not b]
        body = _join([phrase, *rest] if rng.random() < 0.5 else [*rest, phrase])
    elif form == "count" and len(objects) == 1:
        body = "a single " + _noun_phrase(groups[0], rng, article=False)
    elif form == "count" and len(groups) > 1:  # one group is already counted: "two red circles"
        things = rng.choice(("shapes", "shapes", "objects"))
        body = f"{COUNT_WORDS[len(objects)]} {things} including {_noun_phrase(rng.choice(groups), rng)}"
    else:  # a list of every object, some with their place in the picture
        parts = []
        place_p = 0.5 if len(objects) == 1 else 0.2
        for group in groups:
            if len(group) > 1 and len({o["size"] for o in group}) > 1 and rng.random() < 0.5:
                # "a large red circle and a small red circle" instead of "two red circles"
                parts += [_noun_phrase([o], rng, size=True) for o in group]
                continue
            part = _noun_phrase(group, rng)
            where = _position(group[0]) if len(group) == 1 else None
            if where and rng.random() < place_p:
                part += " " + _synonym(where, rng)
                background = False  # "... on the left on a white background" reads badly
            parts.append(part)
        body = _join(parts)
    return _frame(body, rng, background)


def _noun_phrase(
    group: list[dict], rng: random.Random, article: bool = True, size: bool | None = None
) -> str:
    """E.g. "a large red circle", "an orange star", "two blue squares", "red circle".

    ``size``: True names the size, False leaves it out, None decides at random (only when
    the group's objects share a size, so it is true of all of them).
    """
    first = group[0]
    sizes = {o["size"] for o in group}
    if size is None:
        size = len(sizes) == 1 and rng.random() < 0.5
    words = [_synonym(first["size"], rng)] if size else []
    noun = _synonym(first["shape"], rng)
    words += [first["colour"], noun if len(group) == 1 else _plural(noun)]
    if len(group) > 1:
        words.insert(0, COUNT_WORDS[len(group)])
    elif article:
        words.insert(0, "an" if words[0][0] in "aeiou" else "a")
    return " ".join(words)


def _relation_words(a: dict, b: dict, rng: random.Random) -> str:
    where = relation(a, b)
    if where in ("left", "right") and side_by_side(a, b) and rng.random() < 0.3:
        return rng.choice(("next to", "beside"))
    return {"left": "to the left of", "right": "to the right of"}.get(where, where)


def _position(obj: dict) -> str | None:
    column, row = _third(obj["x"]), _third(obj["y"])
    if column is None or row is None:
        return None
    return POSITIONS[column, row]


def _frame(body: str, rng: random.Random, background: bool) -> str:
    """An opening ("there is", "a picture of", ...) and maybe the background, around ``body``."""
    r = rng.random()
    if r < 0.35:
        text = body
    elif r < 0.6:
        text = _there(body)
    else:
        opening = rng.choice(("an image", "a picture", "a drawing"))
        text = f"{opening} {rng.choice(('of', 'showing', 'with'))} {body}"
    if background and rng.random() < 0.25:
        text += f" on a {rng.choice(('white', 'light', 'plain'))} background"
    return text


def _there(body: str) -> str:
    """ "there is a ..." / "there are two ...": the verb agrees with the first noun phrase."""
    return ("there are " if body.split()[0] in COUNT_WORDS else "there is ") + body


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _synonym(word: str, rng: random.Random) -> str:
    return rng.choice(SYNONYMS.get(word, (word,)))


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith("s") else "s")


# ---------------------------------------------------------------------------------------------
# Pictures


def render_scene(
    objects: list[dict], image_size: int, rng: np.random.Generator, noise_std: float
) -> np.ndarray:
    """The scene as an RGB uint8 array (image_size, image_size, 3) on a light background."""
    side = image_size * SUPERSAMPLE
    background = tuple(int(c) for c in rng.integers(*BACKGROUND, size=3, endpoint=True))
    image = Image.new("RGB", (side, side), background)
    draw = ImageDraw.Draw(image)
    for o in objects:
        x, y, r = o["x"] * side, o["y"] * side, o["extent"] * side / 2
        fill = COLOURS[o["colour"]]
        if o["shape"] == "circle":
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        elif o["shape"] == "square":
            draw.rectangle((x - r, y - r, x + r, y + r), fill=fill)
        else:
            draw.polygon([(x + r * u, y + r * v) for u, v in OUTLINES[o["shape"]]], fill=fill)
    pixels = np.asarray(image.reduce(SUPERSAMPLE), dtype=np.float32)
    if noise_std > 0:
        pixels = pixels + rng.normal(0.0, noise_std, pixels.shape).astype(np.float32)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def _star(points: int = 5, inner: float = 0.45) -> list[tuple[float, float]]:
    angles = np.pi * np.arange(2 * points) / points
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return [(float(r * np.sin(a)), float(-r * np.cos(a))) for r, a in zip(radii, angles)]


_ARM = 0.36  # half the width of a cross's arms, as a fraction of its half extent
OUTLINES = {  # polygon corners in units of the half extent, around the centre, y down
    "triangle": [(0, -1), (1, 1), (-1, 1)],
    "diamond": [(0, -1), (1, 0), (0, 1), (-1, 0)],
    "star": _star(),
    "cross": [
        (-_ARM, -1),
        (_ARM, -1),
        (_ARM, -_ARM),
        (1, -_ARM),
        (1, _ARM),
        (_ARM, _ARM),
        (_ARM, 1),
        (-_ARM, 1),
        (-_ARM, _ARM),
        (-1, _ARM),
        (-1, -_ARM),
        (-_ARM, -_ARM),
    ],  # fmt: skip
}


# ---------------------------------------------------------------------------------------------
# The dataset and the extra scenes


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
    config: ShapesConfig, cache_dir: str | Path | None = None
) -> CaptionDataset:
    """The shapes dataset; with ``cache_dir``, generated once and kept in
    ``<cache_dir>/shapes/<key>.npz``."""
    key = dataset_key(config)
    path = Path(cache_dir) / "shapes" / f"{key}.npz" if cache_dir is not None else None
    data = _load(path, key, config) if path is not None and path.exists() else None
    if data is None:
        data = _generate(config)
        if path is not None:
            _save(path, key, *data)
    images, records = data

    splits, scenes, where = {}, {}, {}
    for split in SPLITS:
        splits[split] = []
        for i, record in enumerate(records[split]):
            name = image_id(split, i)
            raw = record["captions"]
            splits[split].append(CaptionImage(name, [tokenize(c) for c in raw], raw))
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
    return CaptionDataset(name="shapes", splits=splits, key=key, load_image=load_image, info=info)


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


# ---------------------------------------------------------------------------------------------
# Checking generated captions against the scenes


def _noun(word: str) -> str | None:
    """The shape a (possibly plural or synonym) noun names, or None."""
    for shape in SHAPES:
        if word in (shape, _plural(shape)):
            return shape
    return "circle" if word in ("disc", "discs") else None


def grounding(tokens: list[str], objects: list[dict]) -> dict:
    """How far a caption's "colour shape" mentions are true of a scene.

    Returns ``mentions`` (colour-shape phrases in the caption), ``true_mentions`` (those the
    scene has), ``kinds`` (distinct colour-shape kinds in the scene) and ``kinds_named``
    (those the caption names). Sizes and relations are not checked.
    """
    scene = {(o["colour"], o["shape"]) for o in objects}
    said = [(tokens[i], _noun(tokens[i + 1])) for i in range(len(tokens) - 1)
            if tokens[i] in COLOURS and _noun(tokens[i + 1])]
    return {
        "mentions": len(said),
        "true_mentions": sum(m in scene for m in said),
        "kinds": len(scene),
        "kinds_named": len(scene & set(said)),
    }


def grounding_scores(captions: dict[str, list[str]], scenes: dict[str, list[dict]]) -> dict:
    """Over a set of generated captions (image id -> tokens): ``object_precision`` (true
    mentions / mentions), ``object_recall`` (kinds named / kinds in the scenes) and
    ``all_true_frac`` (captions whose every mention is true and that name at least one)."""
    counts = [grounding(tokens, scenes[image]) for image, tokens in captions.items()]
    total = {k: sum(c[k] for c in counts) for k in ("mentions", "true_mentions", "kinds", "kinds_named")}
    all_true = sum(c["mentions"] > 0 and c["true_mentions"] == c["mentions"] for c in counts)
    return {
        "object_precision": total["true_mentions"] / max(total["mentions"], 1),
        "object_recall": total["kinds_named"] / max(total["kinds"], 1),
        "all_true_frac": all_true / max(len(counts), 1),
    }
