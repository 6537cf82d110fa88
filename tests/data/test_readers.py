import json

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from caplm.data import readers
from caplm.data.readers import load_caption_dataset, read_flickr8k_text, read_karpathy_json
from caplm.data.types import CaptionDataset


def _png(path, color, size=(12, 10), mode="RGB", format="PNG"):
    """A plain image; PNG whatever the name says (readers go by content), so pixels are exact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, format=format)


def _karpathy_images():
    def img(name, split, *raws, filepath=None):
        entry = {
            "filename": name,
            "split": split,
            "sentences": [{"raw": r, "tokens": []} for r in raws],
        }
        if filepath:
            entry["filepath"] = filepath
        return entry

    return [
        img("a.jpg", "train", "A dog runs.", "The DOG is running!"),
        img("b.jpg", "train", "Two cats, sleeping."),
        img("c.jpg", "val", "A red ball"),
        img("d.jpg", "test", "A man's hat."),
        img("e.jpg", "restval", "Grass."),
        # no raw text: the tokens are joined
        {"filename": "f.jpg", "split": "test", "sentences": [{"tokens": ["a", "blue", "sky"]}]},
    ]


def _write_karpathy(tmp_path, images, name="dataset_flickr8k.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"images": images, "dataset": "flickr8k"}))
    return path


@pytest.fixture
def karpathy(tmp_path):
    images_dir = tmp_path / "images"
    for i, name in enumerate("abcdef"):
        _png(images_dir / f"{name}.jpg", (40 * i, 10, 200))
    return _write_karpathy(tmp_path, _karpathy_images()), images_dir


def test_karpathy_json_splits_captions_and_images(karpathy):
    path, images_dir = karpathy
    ds = read_karpathy_json(path, images_dir)
    assert isinstance(ds, CaptionDataset) and ds.name == "flickr8k"
    assert {s: ds.image_ids(s) for s in ds.splits} == {
        "train": ["a.jpg", "b.jpg", "e.jpg"],  # restval joins train by default
        "val": ["c.jpg"],
        "test": ["d.jpg", "f.jpg"],
    }
    a = ds.splits["train"][0]
    assert a.captions == [["a", "dog", "runs", "."], ["the", "dog", "is", "running", "!"]]
    assert a.raw == ["A dog runs.", "The DOG is running!"]
    assert ds.splits["test"][1].captions == [["a", "blue", "sky"]]
    assert ds.splits["test"][1].raw == ["a blue sky"]
    img = ds.load_image("b.jpg")
    assert img.dtype == np.uint8 and img.shape == (10, 12, 3)
    assert img[0, 0].tolist() == [40, 10, 200]
    assert ds.info["num_images"] == {"train": 3, "val": 1, "test": 2}


def test_karpathy_restval_option_and_key(karpathy, tmp_path):
    path, images_dir = karpathy
    assert read_karpathy_json(path, restval=None).image_ids("train") == ["a.jpg", "b.jpg"]
    assert read_karpathy_json(path, restval="val").image_ids("val") == ["c.jpg", "e.jpg"]
    # the key follows the file's content and the options, not the file's place
    key = read_karpathy_json(path).key
    copy = tmp_path / "copy" / "other.json"
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    assert read_karpathy_json(copy).key == key
    assert read_karpathy_json(path, restval=None).key != key
    images = _karpathy_images()
    images[0]["sentences"][0]["raw"] = "A dog walks."
    assert read_karpathy_json(_write_karpathy(tmp_path, images, "changed.json")).key != key
    with pytest.raises(ValueError, match="restval is 'dev'"):
        read_karpathy_json(path, restval="dev")


def test_karpathy_coco_filepath_and_greyscale_image(tmp_path):
    images = _karpathy_images()
    for entry in images:
        entry["filepath"] = "val2014" if entry["split"] == "val" else "train2014"
    path = _write_karpathy(tmp_path, images, "dataset_coco.json")
    _png(tmp_path / "coco" / "val2014" / "c.jpg", 77, mode="L")
    ds = read_karpathy_json(path, tmp_path / "coco")
    img = ds.load_image("c.jpg")
    assert img.shape == (10, 12, 3) and img[3, 3].tolist() == [77, 77, 77]
    with pytest.raises(FileNotFoundError) as err:
        ds.load_image("a.jpg")
    assert str(tmp_path / "coco" / "train2014" / "a.jpg") in str(err.value)
    assert "data.images_dir" in str(err.value)
    assert read_karpathy_json(path).load_image is None  # no images_dir: features file only


def test_unreadable_image_names_the_file(karpathy):
    path, images_dir = karpathy
    (images_dir / "a.jpg").write_text("not an image")
    with pytest.raises(ValueError, match=r"a\.jpg: cannot read the image"):
        read_karpathy_json(path, images_dir).load_image("a.jpg")


def _drop(key):
    def edit(images):
        del images[1][key]

    return edit


def _set(i, key, value):
    def edit(images):
        images[i][key] = value

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (_drop("split"), "image 1 has no 'split'"),
        (_drop("filename"), "image 1 has no 'filename'"),
        (_drop("sentences"), "image 1 has no 'sentences'"),
        (_set(1, "sentences", []), r"image 1 \(b.jpg\) has no captions"),
        (_set(1, "sentences", [{"raw": "", "tokens": ["x"]}]), r"b.jpg\): caption 0 is empty"),
        (_set(1, "sentences", [{"raw": "ok"}, {"raw": "  "}]), r"b.jpg\): caption 1 is empty"),
        (_set(1, "sentences", [{"text": "x"}]), "caption 0 has neither 'raw' text nor a 'tokens'"),
        (_set(1, "split", "dev"), "unknown split 'dev'"),
        (
            _set(2, "filename", "a.jpg"),
            r"image 2 \(a.jpg\): image is listed in splits train and val",
        ),
        (_set(1, "filename", "a.jpg"), "listed twice in split train"),
        (_set(2, "split", "test"), "split 'val' has no images"),
    ],
)
def test_karpathy_bad_input_names_file_and_problem(tmp_path, edit, message):
    images = _karpathy_images()
    edit(images)
    path = _write_karpathy(tmp_path, images)
    with pytest.raises(ValueError, match=message) as err:
        read_karpathy_json(path)
    assert str(path) in str(err.value)


def test_karpathy_wrong_shape_and_missing_file(tmp_path):
    path = tmp_path / "dataset.json"
    for bad in ([1, 2], {"annotations": []}, {"images": {"a": 1}}):
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match="expected a JSON object with an 'images' list") as err:
            read_karpathy_json(path)
        assert str(path) in str(err.value)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_karpathy_json(path)
    with pytest.raises(
        FileNotFoundError, match=r"nope\.json: annotation file \(data.annotations\) not found"
    ):
        read_karpathy_json(tmp_path / "nope.json")


TOKENS = """\
1000_a.jpg#1\tThe second caption of A.
1000_a.jpg#0\tA child in a pink dress .
2000_b.jpg#0\tTwo dogs play
3000_c.jpg#0\tA man rides a bike.
4000_d.jpg#0\tA bird , flying .

5000_stray.jpg.1#0\tAn image no split lists.
"""


def _flickr8k(
    tmp_path, tokens=TOKENS, train="1000_a.jpg\n2000_b.jpg\n", dev="3000_c.jpg\n", test="4000_d.jpg"
):
    files = {"train": train, "val": dev, "test": test}
    split_files = {}
    for split, text in files.items():
        split_files[split] = tmp_path / f"Flickr_8k.{split}Images.txt"
        split_files[split].write_text(text)
    token_file = tmp_path / "Flickr8k.token.txt"
    token_file.write_text(tokens)
    return token_file, split_files


def test_flickr8k_text_splits_and_caption_order(tmp_path):
    token_file, split_files = _flickr8k(tmp_path)
    _png(tmp_path / "img" / "3000_c.jpg", (10, 200, 30), format="JPEG")
    ds = read_flickr8k_text(token_file, split_files, tmp_path / "img")
    assert ds.name == "flickr8k"
    assert {s: ds.image_ids(s) for s in ds.splits} == {
        "train": ["1000_a.jpg", "2000_b.jpg"],
        "val": ["3000_c.jpg"],
        "test": ["4000_d.jpg"],
    }
    a = ds.splits["train"][0]
    assert a.raw == ["A child in a pink dress .", "The second caption of A."]  # by #n
    assert a.captions[0] == ["a", "child", "in", "a", "pink", "dress", "."]
    img = ds.load_image("3000_c.jpg")
    assert img.shape == (10, 12, 3) and np.abs(img[5, 5] - [10, 200, 30]).max() <= 3  # JPEG
    with pytest.raises(
        FileNotFoundError, match="4000_d.jpg: image file not found; data.images_dir is"
    ):
        ds.load_image("4000_d.jpg")
    # the key follows the content of the split lists too
    assert read_flickr8k_text(token_file, split_files).key == ds.key
    split_files["val"].write_text("4000_d.jpg\n")
    split_files["test"].write_text("3000_c.jpg\n")
    assert read_flickr8k_text(token_file, split_files).key != ds.key


@pytest.mark.parametrize(
    "change, file, message",
    [
        (
            {"tokens": TOKENS + "6000_e.jpg 0\tno hash\n"},
            "token",
            "line 8 is not '<image>#<n><TAB><caption>'",
        ),
        ({"tokens": TOKENS + "6000_e.jpg#0 no tab\n"}, "token", "line 8 is not"),
        (
            {"tokens": TOKENS.replace("#0\tTwo dogs play", "#0\t  ")},
            "token",
            "line 3: the caption is empty",
        ),
        (
            {"train": "1000_a.jpg\n9999_x.jpg\n"},
            "train",
            r"line 2 \(9999_x.jpg\): image has no captions in",
        ),
        ({"dev": "3000_c.jpg\n1000_a.jpg\n"}, "val", "image is listed in splits train and val"),
        ({"test": "\n"}, "test", "split 'test' has no images"),
    ],
)
def test_flickr8k_bad_input_names_file_and_problem(tmp_path, change, file, message):
    token_file, split_files = _flickr8k(tmp_path, **change)
    with pytest.raises(ValueError, match=message) as err:
        read_flickr8k_text(token_file, split_files)
    named = token_file if file == "token" else split_files[file]
    assert str(named) in str(err.value)


def test_flickr8k_missing_files_and_bad_split_keys(tmp_path):
    token_file, split_files = _flickr8k(tmp_path)
    split_files["val"].unlink()
    with pytest.raises(FileNotFoundError, match=r"devImages|valImages"):
        read_flickr8k_text(token_file, split_files)
    with pytest.raises(
        FileNotFoundError, match=r"nope.txt: Flickr8k token file \(data.token_file\) not found"
    ):
        read_flickr8k_text(tmp_path / "nope.txt", split_files)
    with pytest.raises(ValueError, match="data.split_files has keys"):
        read_flickr8k_text(token_file, {**split_files, "dev": split_files["val"]})


def test_load_caption_dataset_dispatches_on_format(tmp_path, karpathy, monkeypatch):
    path, images_dir = karpathy
    cfg = OmegaConf.create(
        {
            "format": "karpathy_json",
            "annotations": str(path),
            "images_dir": str(images_dir),
            "restval": None,
        }
    )
    assert load_caption_dataset(cfg, tmp_path).image_ids("train") == ["a.jpg", "b.jpg"]

    token_file, split_files = _flickr8k(tmp_path)
    cfg = OmegaConf.create(
        {
            "format": "flickr8k_text",
            "token_file": str(token_file),
            "split_files": {k: str(v) for k, v in split_files.items()},
            "images_dir": None,
        }
    )
    assert load_caption_dataset(cfg, tmp_path).image_ids("val") == ["3000_c.jpg"]

    # shapes: the generator's fixed API, faked here so this test does not run it
    calls = []
    monkeypatch.setattr(readers, "ShapesConfig", lambda **kw: kw)
    monkeypatch.setattr(
        readers,
        "make_shapes_dataset",
        lambda config, cache_dir: calls.append((config, cache_dir)) or "shapes!",
    )
    cfg = OmegaConf.create({"format": "shapes", "shapes": {"seed": 3, "image_size": 64}})
    assert load_caption_dataset(cfg, tmp_path) == "shapes!"
    assert calls == [({"seed": 3, "image_size": 64}, tmp_path)]

    with pytest.raises(
        ValueError, match="'coco'; known formats: shapes, karpathy_json, flickr8k_text"
    ):
        load_caption_dataset({"format": "coco"}, tmp_path)
    with pytest.raises(ValueError, match="data.annotations is not set"):
        load_caption_dataset({"format": "karpathy_json"}, tmp_path)
