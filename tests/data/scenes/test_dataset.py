"""The scenes dataset: determinism, pictures, splits, cache and config."""

import json
import re
from dataclasses import asdict, fields, replace

import numpy as np
import pytest
from omegaconf import OmegaConf

from caplm import CONF_DIR
from caplm.data.scenes import (
    ScenesConfig,
    extra_scene_captions,
    extra_scenes,
    make_scenes_dataset,
    scene_records,
)
from caplm.data.scenes import dataset as dataset_module
from caplm.data.scenes.lexicon import CATEGORIES, COLOURS, GRID, SIZES
from caplm.data.scenes.render import INSIDE
from caplm.data.scenes.scene import GAP, holds, sample_scene
from caplm.data.types import SPLITS

TINY = ScenesConfig(image_size=64, num_train=12, num_val=6, num_test=6)
WORDS = re.compile(r"[a-z]+( [a-z]+)*")


@pytest.fixture(scope="module")
def tiny():
    return make_scenes_dataset(TINY)


def test_same_seed_same_data_different_seed_differs(tiny):
    again = make_scenes_dataset(TINY)
    other = make_scenes_dataset(replace(TINY, seed=1))
    assert again.key == tiny.key and other.key != tiny.key
    for split in SPLITS:
        assert [i.raw for i in again.splits[split]] == [i.raw for i in tiny.splits[split]]
        assert again.info["scenes"] == tiny.info["scenes"]
        for name in tiny.image_ids(split):
            assert np.array_equal(again.load_image(name), tiny.load_image(name))
    first = tiny.image_ids("train")[0]
    assert not np.array_equal(other.load_image(first), tiny.load_image(first))
    assert [i.raw for i in other.splits["train"]] != [i.raw for i in tiny.splits["train"]]


def test_images_ids_and_captions_are_well_formed(tiny):
    ids = [name for split in SPLITS for name in tiny.image_ids(split)]
    assert len(set(ids)) == len(ids) == 24 and tiny.name == "scenes"
    assert tiny.image_ids("val")[3] == "scenes-val-000003"
    pixels = set()
    for name in ids:
        image = tiny.load_image(name)
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        pixels.add(image.tobytes())
    assert len(pixels) == len(ids)
    with pytest.raises(KeyError, match="scenes-train-000000"):
        tiny.load_image("scenes-train-999999")
    for split in SPLITS:
        for image in tiny.splits[split]:
            assert len(image.raw) == 5 and len(set(image.raw)) >= 4
            for raw, tokens in zip(image.raw, image.captions, strict=True):
                # lower-case words and single spaces only: every tokenizer agrees
                assert WORDS.fullmatch(raw) and tokens == raw.split() and 8 <= len(tokens) <= 25


def test_objects_are_drawn_where_and_as_the_scene_says():
    config = ScenesConfig(num_train=40, num_val=1, num_test=1)
    data = make_scenes_dataset(config)
    side = config.image_size
    seen = set()
    for name in data.image_ids("train"):
        image = data.load_image(name).astype(int)
        objects = data.info["scenes"][name]
        drawn = np.zeros((side, side), bool)
        for o in objects:
            seen.add(o["category"])
            u, v = INSIDE[o["category"]]
            half = o["extent"] * side / 2
            x, y = int(o["x"] * side + u * half), int(o["y"] * side + v * half)
            assert np.abs(image[y, x] - COLOURS[o["colour"]]).max() < 10, (name, o)
            low, high = SIZES[o["size"]]
            assert low <= o["extent"] <= high
            x0, x1 = (o["x"] - o["extent"] / 2) * side, (o["x"] + o["extent"] / 2) * side
            y0, y1 = (o["y"] - o["extent"] / 2) * side, (o["y"] + o["extent"] / 2) * side
            # the box lies in its grid cell, with a gap to the cell's border
            cell = side / GRID
            assert o["col"] * cell < x0 and x1 < (o["col"] + 1) * cell
            assert o["row"] * cell < y0 and y1 < (o["row"] + 1) * cell
            drawn[int(y0) : int(y1) + 2, int(x0) : int(x1) + 2] = True
        # nothing but white outside the boxes
        assert (image[~drawn] == 255).all(), name
    assert len(seen) >= 12


def test_scenes_have_distinct_cells_and_the_configured_counts():
    import random

    counts = set()
    for i in range(300):
        objects = sample_scene(random.Random(f"t/{i}"), 1, 4)
        counts.add(len(objects))
        cells = {(o["col"], o["row"]) for o in objects}
        assert len(cells) == len(objects)
        assert {o["category"] for o in objects} <= set(CATEGORIES)
    assert counts == {1, 2, 3, 4}
    for objects, _ in extra_scenes(replace(TINY, min_objects=3, max_objects=3), 20):
        assert len(objects) == 3


def test_relations_are_unambiguous_in_the_geometry():
    """ "left"/"above" say the boxes lie wholly apart along that axis, with a gap."""
    import random

    for i in range(200):
        objects = sample_scene(random.Random(f"g/{i}"), 2, 4)
        for a in objects:
            for b in objects:
                gap = 2 * GAP - 0.002  # centres are rounded to 0.001
                if holds("left", a, b):
                    assert a["x"] + a["extent"] / 2 + gap <= b["x"] - b["extent"] / 2
                if holds("above", a, b):
                    assert a["y"] + a["extent"] / 2 + gap <= b["y"] - b["extent"] / 2
                assert holds("left", a, b) == holds("right", b, a)
                assert holds("above", a, b) == holds("below", b, a)
                assert not (holds("left", a, b) and holds("right", a, b))


def test_val_and_test_do_not_change_with_num_train(tiny):
    bigger = make_scenes_dataset(replace(TINY, num_train=20))
    assert bigger.key != tiny.key
    for split in ("val", "test"):
        assert [i.raw for i in bigger.splits[split]] == [i.raw for i in tiny.splits[split]]
        for name in tiny.image_ids(split):
            assert np.array_equal(bigger.load_image(name), tiny.load_image(name))
    assert [i.raw for i in bigger.splits["train"][:12]] == [i.raw for i in tiny.splits["train"]]
    records = scene_records(TINY, "val")
    assert [c for _, c in records] == [i.raw for i in tiny.splits["val"]]


def test_noise_is_seeded_and_optional():
    clean = make_scenes_dataset(TINY)
    noisy = make_scenes_dataset(replace(TINY, noise_std=5.0))
    name = clean.image_ids("test")[0]
    assert (clean.load_image(name) == 255).mean() > 0.5
    assert not np.array_equal(clean.load_image(name), noisy.load_image(name))
    again = make_scenes_dataset(replace(TINY, noise_std=5.0))
    assert np.array_equal(again.load_image(name), noisy.load_image(name))


def test_extra_scenes_are_not_dataset_scenes_and_parts_are_disjoint(tiny, tmp_path):
    def specs(scenes):
        return {json.dumps(objects, sort_keys=True) for objects in scenes}

    dataset = specs(tiny.info["scenes"].values())
    train = specs(o for o, _ in extra_scenes(TINY, 100, "train"))
    val = specs(o for o, _ in extra_scenes(TINY, 100, "val"))
    assert len(train) == len(val) == 100
    assert not (train & val) and not (train & dataset) and not (val & dataset)
    captions = extra_scene_captions(TINY, 7, "val")
    assert len(captions) == 35 and captions[:5] == extra_scenes(TINY, 1, "val")[0][1]
    assert captions[:10] == extra_scene_captions(TINY, 2, "val")  # a prefix of more
    # cached as text, read back, and keyed by what the captions depend on
    cached = extra_scene_captions(TINY, 7, "val", cache_dir=tmp_path)
    assert cached == captions
    (path,) = (tmp_path / "scenes").glob("extra-*.txt")
    path.write_text("".join(f"x{i}\n" for i in range(35)))
    assert extra_scene_captions(TINY, 7, "val", cache_dir=tmp_path)[0] == "x0"  # reused
    bigger_images = replace(TINY, image_size=128, num_train=99)
    assert extra_scene_captions(bigger_images, 7, "val", cache_dir=tmp_path)[0] == "x0"
    assert extra_scene_captions(replace(TINY, seed=4), 7, "val", cache_dir=tmp_path)[0] != "x0"
    with pytest.raises(ValueError, match="part = 'test'"):
        extra_scene_captions(TINY, 5, "test")
    with pytest.raises(ValueError, match="num_scenes"):
        extra_scenes(TINY, -1)


def test_cache_is_written_once_and_reused(tmp_path, monkeypatch, tiny):
    first = make_scenes_dataset(TINY, cache_dir=tmp_path)
    path = tmp_path / "scenes" / f"{first.key}.npz"
    assert path.is_file() and first.key == tiny.key

    def must_not_run(config):
        raise AssertionError("generated again instead of reading the cache")

    monkeypatch.setattr(dataset_module, "_generate", must_not_run)
    second = make_scenes_dataset(TINY, cache_dir=tmp_path)
    assert second.info == tiny.info
    for split in SPLITS:
        assert [i.raw for i in second.splits[split]] == [i.raw for i in tiny.splits[split]]
        assert [i.captions for i in second.splits[split]] == [
            i.captions for i in tiny.splits[split]
        ]
        for name in tiny.image_ids(split):
            assert np.array_equal(second.load_image(name), tiny.load_image(name))
    with pytest.raises(AssertionError, match="generated again"):  # another config: another key
        make_scenes_dataset(replace(TINY, seed=2), cache_dir=tmp_path)


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(min_objects=3, max_objects=2), "min_objects"),
        (dict(min_objects=0), "min_objects"),
        (dict(max_objects=5), "max_objects"),
        (dict(image_size=32), "image_size"),
        (dict(num_val=0), "num_val"),
        (dict(captions_per_image=0), "captions_per_image"),
        (dict(noise_std=-1.0), "noise_std"),
        (dict(seed="0"), "seed"),
        (dict(seed=-1), "seed"),
        (dict(image_size=64.0), "image_size"),
    ],
)
def test_bad_config_names_the_field(change, field):
    with pytest.raises((ValueError, TypeError), match=f"data.scenes.{field} = "):
        ScenesConfig(**change)


def test_conf_files_match_the_config_and_the_corpus_is_large_enough():
    data = OmegaConf.load(CONF_DIR / "data" / "scenes.yaml")
    node = OmegaConf.to_container(data.scenes)
    assert data.format == "scenes" and data.max_caption_len >= 25
    assert list(node) == [f.name for f in fields(ScenesConfig)]
    assert ScenesConfig(**node) == ScenesConfig()
    assert asdict(ScenesConfig(**node)) == node
    extra = OmegaConf.load(CONF_DIR / "corpus" / "scenes_extra.yaml")
    raw = OmegaConf.to_container(extra)  # interpolations unresolved
    assert extra.source == "scenes_extra" and raw["scenes"] == "${oc.select:data.scenes,null}"
    config = ScenesConfig(**node)
    train_captions = config.num_train * config.captions_per_image
    assert raw["num_scenes"] == "${oc.select:data.extra_scenes,null}"  # the data says
    assert data.extra_scenes * config.captions_per_image >= 100 * train_captions
    news = OmegaConf.load(CONF_DIR / "corpus" / "scenes_news.yaml")
    assert news.source == "scenes_news" and news.num_sentences >= 100 * train_captions
    assert news.val_sentences > 0
