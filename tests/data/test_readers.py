import json
import logging

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from PIL import Image

from caplm import CONF_DIR
from caplm.data import readers
from caplm.data.readers import load_caption_dataset, read_flickr8k_text, read_karpathy_json
from caplm.data.types import CaptionDataset
from caplm.runtime.config import ConfigError, check_config


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
    assert a.captions == [["a", "dog", "runs"], ["the", "dog", "is", "running"]]  # study rule
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
        (
            _set(1, "sentences", [{"raw": "", "tokens": ["x"]}, {"raw": "?!"}]),
            r"image 1 \(b.jpg\) has no caption left: none of its captions has a word",
        ),
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
    assert a.captions[0] == ["a", "child", "in", "a", "pink", "dress"]  # the study's rule
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
            "train",
            r"line 2 \(2000_b.jpg\): image has no caption left: none of its captions in .*"
            r"Flickr8k.token.txt \(line\(s\) 3\) has a word after tokenisation",
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
            "normaliser": "study",
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
            "normaliser": "study",
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
        lambda config, cache_dir, rule: calls.append((config, cache_dir, rule)) or "shapes!",
    )
    cfg = {"format": "shapes", "normaliser": "keep_punct", "shapes": {"seed": 3, "image_size": 64}}
    assert load_caption_dataset(OmegaConf.create(cfg), tmp_path) == "shapes!"
    assert calls == [({"seed": 3, "image_size": 64}, tmp_path, "keep_punct")]

    with pytest.raises(
        ValueError, match="'coco'; known formats: shapes, scenes, karpathy_json, flickr8k_text"
    ):
        load_caption_dataset({"format": "coco"}, tmp_path)
    with pytest.raises(ValueError, match="data.annotations is not set"):
        load_caption_dataset({"format": "karpathy_json"}, tmp_path)


# -- captions with no word, and files that are not UTF-8 ------------------------------------


def _with_empty_captions():
    """The Karpathy images with four captions that have no word after tokenisation."""
    images = _karpathy_images()
    images[0]["sentences"].insert(1, {"raw": "...!"})
    images[0]["sentences"].append({"raw": ""})
    images[1]["sentences"].append({"raw": "   ", "tokens": ["x"]})  # raw wins, as always
    images[3]["sentences"].insert(0, {"raw": " - "})
    return images


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_karpathy_skips_captions_with_no_word_with_one_warning(tmp_path, karpathy, caplog):
    clean = read_karpathy_json(karpathy[0])
    path = _write_karpathy(tmp_path, _with_empty_captions(), "with_empty.json")
    with caplog.at_level(logging.WARNING, logger="caplm.data.readers"):
        ds = read_karpathy_json(path)
    (warning,) = _warnings(caplog)
    assert warning.startswith(f"{path}: skipped 4 captions with no word after tokenisation")
    assert (
        "(e.g. image 0 (a.jpg) caption 1: '...!'; image 0 (a.jpg) caption 3: ''; "
        "image 1 (b.jpg) caption 1: ''; ...)" in warning
    )
    assert "image 3" not in warning  # three examples at most
    assert "data.empty_captions=error" in warning
    # what is left is exactly the clean file's dataset: same tokens, same order
    for split in ds.splits:
        assert [(i.image_id, i.captions, i.raw) for i in ds.splits[split]] == [
            (i.image_id, i.captions, i.raw) for i in clean.splits[split]
        ]
    assert ds.info["num_captions"] == clean.info["num_captions"]


def test_karpathy_refuses_captions_with_no_word_when_asked(tmp_path):
    path = _write_karpathy(tmp_path, _with_empty_captions())
    with pytest.raises(ValueError) as err:
        read_karpathy_json(path, empty_captions="error")
    assert str(err.value) == (
        f"{path}: 4 captions with no word after tokenisation (e.g. image 0 (a.jpg) caption 1: "
        "'...!'; image 0 (a.jpg) caption 3: ''; image 1 (b.jpg) caption 1: ''; ...); write "
        "them or remove them, or set data.empty_captions=skip to leave them out"
    )
    images = _karpathy_images()
    images[2]["sentences"].append({"raw": "?"})
    with pytest.raises(ValueError, match=r"1 caption with no word .*image 2 \(c.jpg\) caption 1"):
        read_karpathy_json(_write_karpathy(tmp_path, images), empty_captions="error")
    with pytest.raises(ValueError, match="data.empty_captions is 'drop'; use skip"):
        read_karpathy_json(path, empty_captions="drop")


def test_an_image_with_no_caption_left_names_image_and_file(tmp_path, caplog):
    images = _karpathy_images()
    images[2]["sentences"] = [{"raw": "..."}, {"raw": "  "}]
    images[3]["sentences"] = [{"raw": "!"}]
    path = _write_karpathy(tmp_path, images)
    with caplog.at_level(logging.WARNING, logger="caplm.data.readers"):
        with pytest.raises(ValueError) as err:
            read_karpathy_json(path)
    assert str(err.value) == (
        f"{path}: image 2 (c.jpg) has no caption left: none of its captions has a word after "
        "tokenisation (and 1 other image(s)); write a caption for it or remove it"
    )
    assert "skipped 3 captions" in _warnings(caplog)[0]
    # with error, the count of empty captions is the error
    with pytest.raises(ValueError, match=f"{path}: 3 captions with no word"):
        read_karpathy_json(path, empty_captions="error")


def test_good_data_gives_no_warning_and_the_same_dataset_in_both_modes(karpathy, caplog):
    path, _ = karpathy
    with caplog.at_level(logging.WARNING, logger="caplm.data.readers"):
        skip = read_karpathy_json(path)
        error = read_karpathy_json(path, empty_captions="error")
    assert not _warnings(caplog)
    assert skip.splits == error.splits and skip.key == error.key


def test_flickr8k_skips_or_refuses_captions_with_no_word(tmp_path, caplog):
    clean = read_flickr8k_text(*_flickr8k(tmp_path))
    tokens = TOKENS + "1000_a.jpg#2\t...\n3000_c.jpg#1\t\n"
    token_file, split_files = _flickr8k(tmp_path, tokens=tokens)
    with caplog.at_level(logging.WARNING, logger="caplm.data.readers"):
        ds = read_flickr8k_text(token_file, split_files)
    assert _warnings(caplog) == [
        f"{token_file}: skipped 2 captions with no word after tokenisation (e.g. line 8 "
        "(1000_a.jpg#2): '...'; line 9 (3000_c.jpg#1): ''); set data.empty_captions=error "
        "to refuse them"
    ]
    assert ds.splits == clean.splits
    with pytest.raises(ValueError) as err:
        read_flickr8k_text(token_file, split_files, empty_captions="error")
    assert str(err.value).startswith(
        f"{token_file}: 2 captions with no word after tokenisation (e.g. line 8 (1000_a.jpg#2)"
    )
    assert "data.empty_captions=skip" in str(err.value)


def test_flickr8k_image_with_no_caption_left_names_image_and_files(tmp_path):
    tokens = TOKENS.replace("3000_c.jpg#0\tA man rides a bike.", "3000_c.jpg#0\t.") + (
        "3000_c.jpg#1\t?\n"
    )
    token_file, split_files = _flickr8k(tmp_path, tokens=tokens)
    with pytest.raises(ValueError) as err:
        read_flickr8k_text(token_file, split_files)
    assert str(err.value) == (
        f"{split_files['val']}: line 1 (3000_c.jpg): image has no caption left: none of its "
        f"captions in {token_file} (line(s) 4, 8) has a word after tokenisation; write a "
        "caption for it or remove the image from the split list"
    )


def test_load_caption_dataset_passes_empty_captions(tmp_path):
    path = _write_karpathy(tmp_path, _with_empty_captions())
    cfg = {"format": "karpathy_json", "normaliser": "study", "annotations": str(path),
           "empty_captions": "error"}  # fmt: skip
    with pytest.raises(ValueError, match="4 captions with no word"):
        load_caption_dataset(OmegaConf.create(cfg), tmp_path)
    assert load_caption_dataset({**cfg, "empty_captions": "skip"}, tmp_path).splits
    token_file, split_files = _flickr8k(tmp_path, tokens=TOKENS + "2000_b.jpg#1\t!\n")
    cfg = {
        "format": "flickr8k_text",
        "normaliser": "study",
        "token_file": str(token_file),
        "split_files": {k: str(v) for k, v in split_files.items()},
        "empty_captions": "error",
    }
    with pytest.raises(ValueError, match=r"1 caption with no word .*line 8 \(2000_b.jpg#1\)"):
        load_caption_dataset(cfg, tmp_path)
    with pytest.raises(ValueError, match="data.empty_captions is 'warn'"):
        load_caption_dataset({**cfg, "empty_captions": "warn"}, tmp_path)


def test_the_config_checker_accepts_empty_captions_for_file_datasets():
    def check(*overrides):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("train", overrides=list(overrides))
        check_config(cfg)
        return cfg

    for data in ("flickr8k", "flickr30k", "mscoco", "flickr8k_text"):
        assert check(f"data={data}").data.empty_captions == "skip"
    assert check("data=flickr8k", "data.empty_captions=error").data.empty_captions == "error"
    with pytest.raises(ConfigError, match="data.empty_captions: unknown setting"):
        check("+data.empty_captions=skip")  # the generated shapes have no empty captions


def _latin1(path, text):
    path.write_bytes(text.encode("latin-1"))
    return path.read_bytes().index("é".encode("latin-1"))


def test_karpathy_json_that_is_not_utf8_names_file_and_byte(tmp_path):
    images = _karpathy_images()
    images[3]["sentences"][0]["raw"] = "A man's café."
    path = tmp_path / "dataset_flickr8k.json"
    offset = _latin1(path, json.dumps({"images": images}, ensure_ascii=False))
    with pytest.raises(ValueError) as err:
        read_karpathy_json(path)
    message = str(err.value)
    assert message.startswith(f"{path}: not UTF-8 text: the byte at offset {offset} (line 1)")
    assert "is 0xe9" in message and "the file must be UTF-8" in message
    # the same file in UTF-8 reads, with the accent kept
    path.write_text(json.dumps({"images": images}, ensure_ascii=False), encoding="utf-8")
    assert read_karpathy_json(path).splits["test"][0].raw == ["A man's café."]


@pytest.mark.parametrize("which", ["token", "train", "test"])
def test_flickr8k_files_that_are_not_utf8_name_file_and_byte(tmp_path, which):
    token_file, split_files = _flickr8k(tmp_path)
    path = token_file if which == "token" else split_files[which]
    extra = "6000_e.jpg#0\tA café.\n" if which == "token" else "\n6000_é.jpg\n"
    offset = _latin1(path, path.read_text(encoding="utf-8") + extra)
    line = {"token": 8, "train": 4, "test": 2}[which]
    with pytest.raises(ValueError) as err:
        read_flickr8k_text(token_file, split_files)
    assert str(err.value).startswith(
        f"{path}: not UTF-8 text: the byte at offset {offset} (line {line}) is 0xe9"
    )
    assert "the file must be UTF-8" in str(err.value)
