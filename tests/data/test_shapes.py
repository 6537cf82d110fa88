import json
from collections import Counter
from dataclasses import asdict, fields, replace

import numpy as np
import pytest
from omegaconf import OmegaConf

from caplm import CONF_DIR
from caplm.data.shapes import (
    COLOURS,
    MAX_WORDS,
    MIN_WORDS,
    SHAPES,
    ShapesConfig,
    extra_scene_captions,
    extra_scenes,
    grammar,
    make_shapes_dataset,
    scene,
)
from caplm.data.shapes import dataset as dataset_module
from caplm.data.text import tokenize
from caplm.data.types import SPLITS
from caplm.evaluation import grounding

TINY = ShapesConfig(image_size=32, num_train=12, num_val=8, num_test=8)
NOUNS = {"disc": "circle", "discs": "circle"}
for _shape in SHAPES:
    NOUNS[_shape] = NOUNS[grammar.plural(_shape)] = _shape
SIZE_WORDS = {"small": "small", "little": "small", "large": "large", "big": "large"}
COUNTS = {"two": 2, "three": 3, "four": 4}


@pytest.fixture(scope="module")
def tiny():
    return make_shapes_dataset(TINY)


def _mentions(tokens):
    """(position, colour, shape, size word or None, count word or None) of each "colour noun"."""
    out = []
    for i in range(len(tokens) - 1):
        if tokens[i] in COLOURS and tokens[i + 1] in NOUNS:
            size = tokens[i - 1] if i > 0 and tokens[i - 1] in SIZE_WORDS else None
            before = tokens[i - 2 if size else i - 1] if i > 0 else None
            out.append((i, tokens[i], NOUNS[tokens[i + 1]], size, before))
    return out


def _find(tokens, phrase):
    """Where the words of ``phrase`` start in ``tokens``."""
    words = phrase.split()
    return [i for i in range(len(tokens)) if tokens[i : i + len(words)] == words]


def _check_caption(objects, caption):
    """Assert the checkable facts of one caption against its scene."""
    tokens = tokenize(caption)
    text = " ".join(tokens)
    mentions = _mentions(tokens)
    assert mentions, caption  # every caption names at least one object
    for _, colour, shape, size, before in mentions:
        same = [o for o in objects if (o["colour"], o["shape"]) == (colour, shape)]
        assert same, f"{caption!r}: no {colour} {shape} in {objects}"
        if before in COUNTS:
            assert len(same) == COUNTS[before], caption
            if size:
                assert all(o["size"] == SIZE_WORDS[size] for o in same), caption
        elif size:
            assert any(o["size"] == SIZE_WORDS[size] for o in same), caption

    def referent(mention):
        same = [o for o in objects if (o["colour"], o["shape"]) == mention[1:3]]
        assert len(same) == 1, f"{caption!r}: a relation names an ambiguous object"
        return same[0]

    for phrase, axis, sign in [("to the left of", "x", -1), ("to the right of", "x", 1),
                               ("above", "y", -1), ("below", "y", 1), ("next to", "x", 0),
                               ("beside", "x", 0)]:  # fmt: skip
        for at in _find(tokens, phrase):
            a = referent([m for m in mentions if m[0] < at][-1])
            b = referent([m for m in mentions if m[0] > at][0])
            reach = (a["extent"] + b["extent"]) / 2  # the boxes are wholly apart along the axis
            d = a[axis] - b[axis]
            assert abs(d) > reach and (sign == 0 or np.sign(d) == sign), f"{caption!r}: {a} {b}"
            if sign == 0:  # "next to": roughly in one row
                assert abs(a["y"] - b["y"]) < abs(d) / 2, f"{caption!r}: {a} {b}"
    for at in _find(tokens, "there is"):  # agreement with the next noun phrase
        assert tokens[at + 2] in ("a", "an"), caption
    for at in _find(tokens, "there are"):
        assert tokens[at + 2] in COUNTS, caption
    for at in _find(tokens, "a") + _find(tokens, "an"):
        assert (tokens[at] == "an") == (tokens[at + 1][0] in "aeiou"), caption
    for word, n in [*COUNTS.items(), ("single", 1)]:
        if f"{word} shapes" in text or f"{word} objects" in text or f"a {word} " in text:
            assert len(objects) == n, caption
    for (column, row), phrase in scene.POSITIONS.items():
        for said in grammar.SYNONYMS.get(phrase, (phrase,)):
            for at in _find(tokens, said):
                obj = referent([m for m in mentions if m[0] < at][-1])
                assert (scene._third(obj["x"]), scene._third(obj["y"])) == (column, row), caption


def test_same_seed_same_data_different_seed_differs(tiny):
    again = make_shapes_dataset(TINY)
    other = make_shapes_dataset(replace(TINY, seed=1))
    assert again.key == tiny.key and other.key != tiny.key
    for split in SPLITS:
        assert [i.raw for i in again.splits[split]] == [i.raw for i in tiny.splits[split]]
        for name in tiny.image_ids(split):
            assert np.array_equal(again.load_image(name), tiny.load_image(name))
    first = tiny.image_ids("train")[0]
    assert not np.array_equal(other.load_image(first), tiny.load_image(first))
    assert [i.raw for i in other.splits["train"]] != [i.raw for i in tiny.splits["train"]]


def test_images_and_ids_are_well_formed_and_splits_disjoint(tiny):
    ids = [name for split in SPLITS for name in tiny.image_ids(split)]
    assert len(set(ids)) == len(ids) == 28
    assert tiny.image_ids("val")[3] == "shapes-val-000003"
    pixels = set()
    for name in ids:
        image = tiny.load_image(name)
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8
        pixels.add(image.tobytes())
    assert len(pixels) == len(ids)  # no picture twice, within or across splits
    with pytest.raises(KeyError, match="shapes-train-000000"):
        tiny.load_image("shapes-train-999999")


def test_objects_are_drawn_where_and_as_the_scene_says():
    config = replace(TINY, image_size=64)
    data = make_shapes_dataset(config)
    for name in data.image_ids("train"):
        image = data.load_image(name).astype(int)
        assert (image[0, 0] > 200).all()  # the corner is always background, and light
        for o in data.info["scenes"][name]:
            x, y = int(o["x"] * 64), int(o["y"] * 64)  # every shape covers its centre
            assert np.abs(image[y, x] - COLOURS[o["colour"]]).max() < 30, (name, o)
            side = o["extent"] * 64
            assert (12 <= side <= 16) if o["size"] == "small" else (23 <= side <= 29)


def test_val_and_test_do_not_change_with_num_train(tiny):
    bigger = make_shapes_dataset(replace(TINY, num_train=20))
    assert bigger.key != tiny.key
    for split in ("val", "test"):
        assert [i.raw for i in bigger.splits[split]] == [i.raw for i in tiny.splits[split]]
        for name in tiny.image_ids(split):
            assert np.array_equal(bigger.load_image(name), tiny.load_image(name))
    assert [i.raw for i in bigger.splits["train"][:12]] == [i.raw for i in tiny.splits["train"]]


def test_captions_are_tokenised_varied_and_of_bounded_length(tiny):
    for split in SPLITS:
        for image in tiny.splits[split]:
            assert len(image.raw) == 5
            assert image.captions == [tokenize(c) for c in image.raw]
    distinct = [len(set(i.raw)) for i in tiny.splits["train"]]
    assert np.mean(distinct) > 4
    scenes = extra_scenes(ShapesConfig(), 400)
    assert all(len(set(c)) == 5 for _, c in scenes)  # the grammar has room for five
    captions = [c for _, five in scenes for c in five]
    lengths = [len(tokenize(c)) for c in captions]
    assert MIN_WORDS <= min(lengths) and max(lengths) <= MAX_WORDS
    words = Counter(w for c in captions for w in tokenize(c))
    assert 40 <= len(words) <= 90  # a modest vocabulary, learnable in minutes
    for word in ["left", "right", "above", "below", "next", "two", "three", "shapes", "are",
                 "there", "picture", "background", "big", "little", "an"]:  # fmt: skip
        assert words[word] > 0, word
    # both orders of the same two objects occur
    orders = {tuple(m[2] for m in _mentions(tokenize(c))) for c in captions}
    assert any(o[::-1] in orders and o != o[::-1] for o in orders if len(o) == 2)


def test_captions_are_true_of_their_scenes(tiny):
    for split in SPLITS:
        for image in tiny.splits[split]:
            for caption in image.raw:
                _check_caption(tiny.info["scenes"][image.image_id], caption)
    for objects, captions in extra_scenes(replace(TINY, max_objects=4), 300):
        assert 1 <= len(objects) <= 4
        for caption in captions:
            _check_caption(objects, caption)


def test_check_caption_catches_false_captions():
    # The checker above must be able to fail, or the truth test proves nothing.
    red, blue = [dict(shape=s, colour=c, size="small", x=x, y=0.5, extent=0.2)
                 for s, c, x in [("circle", "red", 0.2), ("square", "blue", 0.8)]]  # fmt: skip
    _check_caption([red, blue], "a red circle to the left of a blue square")
    for false in ["a blue square to the left of a red circle", "a green circle and a blue square",
                  "two red circles", "a big red circle", "three shapes including a red circle",
                  "the red circle is above the blue square", "a red circle on the right", "there are a red circle",
                  "an red circle", "there is two blue squares"]:  # fmt: skip
        with pytest.raises(AssertionError):
            _check_caption([red, blue], false)


def test_object_counts_follow_the_config():
    for objects, _ in extra_scenes(replace(TINY, min_objects=2, max_objects=2), 50):
        assert len(objects) == 2
        a, b = objects  # boxes never overlap, with a gap
        reach = (a["extent"] + b["extent"]) / 2 + scene.GAP
        assert abs(a["x"] - b["x"]) >= reach or abs(a["y"] - b["y"]) >= reach
    counts = Counter(len(o) for o, _ in extra_scenes(ShapesConfig(), 300))
    assert set(counts) == {1, 2, 3}


def test_extra_scenes_are_not_dataset_scenes_and_parts_are_disjoint(tiny):
    def specs(scenes):
        return {json.dumps(objects, sort_keys=True) for objects in scenes}

    dataset = specs(tiny.info["scenes"].values())
    train = specs(o for o, _ in extra_scenes(TINY, 100, "train"))
    val = specs(o for o, _ in extra_scenes(TINY, 100, "val"))
    assert len(train) == len(val) == 100
    assert not (train & val) and not (train & dataset) and not (val & dataset)
    captions = extra_scene_captions(TINY, 7, "val")
    assert len(captions) == 35 and captions == extra_scene_captions(TINY, 7, "val")
    assert captions[:5] == extra_scenes(TINY, 1, "val")[0][1]
    with pytest.raises(ValueError, match="part = 'test'"):
        extra_scene_captions(TINY, 5, "test")


def test_extra_captions_are_cached_as_text_keyed_by_what_they_depend_on(tmp_path):
    captions = extra_scene_captions(TINY, 7, "val")
    assert extra_scene_captions(TINY, 7, "val", cache_dir=tmp_path) == captions
    (path,) = (tmp_path / "shapes").glob("extra-*.txt")
    assert path.read_text().splitlines() == captions  # commas and all, one caption a line
    path.write_text("".join(f"x{i}\n" for i in range(35)))
    assert extra_scene_captions(TINY, 7, "val", cache_dir=tmp_path)[0] == "x0"  # reused
    other_images = replace(TINY, image_size=48, num_train=9, noise_std=0.0)
    assert extra_scene_captions(other_images, 7, "val", cache_dir=tmp_path)[0] == "x0"
    assert extra_scene_captions(replace(TINY, seed=4), 7, "val", cache_dir=tmp_path)[0] != "x0"
    assert extra_scene_captions(TINY, 7, "train", cache_dir=tmp_path)[0] != "x0"
    path.write_text("x0\n")  # a truncated file is set aside and made again
    assert extra_scene_captions(TINY, 7, "val", cache_dir=tmp_path) == captions
    with pytest.raises(ValueError, match="num_scenes = -1"):
        extra_scene_captions(TINY, -1, "val", cache_dir=tmp_path)


def test_cache_is_written_once_and_reused(tmp_path, monkeypatch, tiny):
    first = make_shapes_dataset(TINY, cache_dir=tmp_path)
    path = tmp_path / "shapes" / f"{first.key}.npz"
    assert path.is_file() and first.key == tiny.key

    def must_not_run(config):
        raise AssertionError("generated again instead of reading the cache")

    monkeypatch.setattr(dataset_module, "_generate", must_not_run)
    second = make_shapes_dataset(TINY, cache_dir=tmp_path)
    assert second.info == tiny.info
    for split in SPLITS:
        assert [i.raw for i in second.splits[split]] == [i.raw for i in tiny.splits[split]]
        assert [i.captions for i in second.splits[split]] == [
            i.captions for i in tiny.splits[split]
        ]
        for name in tiny.image_ids(split):
            assert np.array_equal(second.load_image(name), tiny.load_image(name))


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(min_objects=3, max_objects=2), "min_objects"),
        (dict(min_objects=0), "min_objects"),
        (dict(max_objects=9), "max_objects"),
        (dict(image_size=16), "image_size"),
        (dict(num_val=0), "num_val"),
        (dict(captions_per_image=0), "captions_per_image"),
        (dict(noise_std=-1.0), "noise_std"),
        (dict(seed="0"), "seed"),
        (dict(image_size=64.0), "image_size"),
    ],
)
def test_bad_config_names_the_field(change, field):
    with pytest.raises((ValueError, TypeError), match=f"data.shapes.{field} = "):
        ShapesConfig(**change)


def test_conf_node_matches_the_config_fields_and_defaults():
    node = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "data" / "shapes.yaml").shapes)
    assert list(node) == [f.name for f in fields(ShapesConfig)]
    assert ShapesConfig(**node) == ShapesConfig()
    assert asdict(ShapesConfig(**node)) == node


def test_grounding_counts_true_and_false_mentions():
    scene = [{"colour": "red", "shape": "circle"}, {"colour": "blue", "shape": "star"}]
    g = grounding.grounding(
        tokenize("a red disc to the left of a green star and two blue stars"), scene
    )
    assert g == {"mentions": 3, "true_mentions": 2, "kinds": 2, "kinds_named": 2}
    scores = grounding.grounding_scores(
        {"a": tokenize("a red circle"), "b": tokenize("a pink square"), "c": tokenize("shapes")},
        {"a": scene, "b": scene, "c": scene},
    )
    assert scores["object_precision"] == pytest.approx(1 / 2)
    assert scores["object_recall"] == pytest.approx(1 / 6)
    assert scores["all_true_frac"] == pytest.approx(1 / 3)


def test_binding_scenes_and_the_all_true_split():
    red_circle, blue_star = dict(colour="red", shape="circle"), dict(colour="blue", shape="star")
    red_star, blue_circle = dict(colour="red", shape="star"), dict(colour="blue", shape="circle")
    assert grounding.needs_binding([red_circle, blue_star])  # "a red star" would fit the bag
    assert grounding.needs_binding([red_circle, blue_star, red_star])
    assert not grounding.needs_binding([red_circle, red_star])  # one colour: nothing to bind
    assert not grounding.needs_binding([red_circle, blue_circle, red_circle])  # one shape
    assert not grounding.needs_binding([red_circle, blue_star, red_star, blue_circle])  # all 4
    scenes = {"a": [red_circle, blue_star], "b": [red_circle, blue_star], "c": [red_circle]}
    captions = {k: tokenize(t) for k, t in
                (("a", "a red star"), ("b", "a blue star"), ("c", "a red circle"))}  # fmt: skip
    scores = grounding.grounding_scores(captions, scenes)
    assert scores["binding_scenes_frac"] == pytest.approx(2 / 3)
    assert scores["all_true_frac_binding"] == pytest.approx(1 / 2)
    assert scores["all_true_frac_no_binding"] == 1.0
    assert scores["all_true_frac"] == pytest.approx(2 / 3)
    alone = grounding.grounding_scores({"c": captions["c"]}, scenes)
    assert alone["binding_scenes_frac"] == 0.0 and alone["all_true_frac_binding"] is None


def test_reference_captions_are_fully_grounded(tiny):
    scenes = tiny.info["scenes"]
    refs = {img.image_id: img.captions[0] for img in tiny.splits["test"]}
    scores = grounding.grounding_scores(refs, scenes)
    assert scores["object_precision"] == 1.0 and scores["all_true_frac"] == 1.0
