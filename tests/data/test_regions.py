"""Region features (#40): (N, R, D) arrays from the encoder (data.encoder.regions) and from
features files (.npz/.npy/.h5, in memory or read from disk), and the batches they give."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from caplm.data import features as features_module
from caplm.data.datamodules import CaptionDataModule
from caplm.data.encoders import build_encoder
from caplm.data.features import DiskRows, encode_dataset, load_features, read_feature_file
from caplm.data.text import Vocabulary
from tests.data.test_features import SMALL, _dataset, _images, _write_features


def _region_file(tmp_path, name):
    ds = _dataset()
    ids = [x for s in ds.splits for x in ds.image_ids(s)] + ["extra.jpg"]
    order = np.random.default_rng(3).permutation(len(ids))
    rows = np.random.default_rng(3).normal(size=(len(ids), 4, 3))  # 4 regions of 3 values
    rows[0, 2:] = 0  # padding regions of image 0
    path = tmp_path / name
    _write_features(path, [ids[i] for i in order], rows[order])
    return ds, path, dict(zip(ids, rows.astype(np.float32), strict=True))


@pytest.mark.parametrize("name", ["f.npz", "f.npy", "f.h5"])
@pytest.mark.parametrize("disk", [False, True])
def test_region_files_load_in_dataset_order(tmp_path, name, disk, monkeypatch):
    ds, path, rows = _region_file(tmp_path, name)
    if disk:
        monkeypatch.setattr(features_module, "IN_MEMORY_MAX_BYTES", 0)
    feats = load_features(OmegaConf.create({"features_file": str(path)}), ds, tmp_path / "c")
    on_disk = disk and name != "f.npz"  # an .npz is always read in
    assert isinstance(feats["train"], DiskRows) == on_disk
    for split in ds.splits:
        assert feats[split].shape == (len(ds.splits[split]), 4, 3)
        want = np.stack([rows[x] for x in ds.image_ids(split)])
        np.testing.assert_array_equal(np.asarray(feats[split]), want)
    if on_disk:
        np.testing.assert_array_equal(feats["train"][[3, 0]], want_rows(ds, rows, [3, 0]))
        assert feats["train"][1].shape == (4, 3)
    data = CaptionDataModule(ds, feats, Vocabulary.build([["a"]]), batch_size=2)
    assert data.feature_shape == (4, 3) and data.feature_size == 3
    batch = next(iter(data.val_dataloader()))
    assert batch["features"].shape == (2, 4, 3) and batch["features"].dtype == torch.float32


def want_rows(ds, rows, index):
    ids = ds.image_ids("train")
    return np.stack([rows[ids[i]] for i in index])


@pytest.mark.parametrize("name", ["f.npz", "f.h5"])
def test_non_finite_regions_are_refused_with_their_image(tmp_path, name):
    ds, path, _ = _region_file(tmp_path, name)
    ids = [x for s in ds.splits for x in ds.image_ids(s)]
    bad = np.ones((len(ids), 4, 3))
    bad[2, 3, 1] = np.nan
    _write_features(path, ids, bad)
    with pytest.raises(ValueError, match=r"row 2 \(image 'train2.jpg'\), which holds NaN"):
        read_feature_file(path)


def test_encoder_regions_are_the_head_map_per_cell(tmp_path):
    enc = build_encoder({**SMALL, "regions": 2})
    plain = build_encoder(SMALL)  # pool_grid 2: the same cells, flattened channel-major
    assert enc.feature_shape == (4, 8) and plain.feature_shape == (32,)
    images = _images(3, size=16)
    f = enc.encode(images)
    assert f.shape == (3, 4, 8) and f.dtype == np.float32
    flat = plain.encode(images).reshape(3, 8, 4)  # (channel, cell)
    np.testing.assert_allclose(f, flat.transpose(0, 2, 1), rtol=1e-6)
    assert enc.identity()["regions"] == 2 and "regions" not in plain.identity()


def test_encoder_regions_with_taps_pool_each_layer_to_the_grid():
    cfg = {**SMALL, "taps": ["block0:max:1", "block0:max:3", "head:avg:2"], "regions": 3}
    enc = build_encoder(cfg)
    assert [f"{t.layer}:{t.pool}:{t.grid}" for t in enc.taps] == ["block0:max:3", "head:avg:3"]
    assert enc.feature_shape == (9, 4 + 8)
    images = _images(2, size=16)
    f = enc.encode(images)
    x = enc.prepare(images)
    maps = enc.backbone(x, {"block0", "head"})
    cell = F.adaptive_max_pool2d(maps["block0"], 3).flatten(2).transpose(1, 2)  # (B, 9, 4)
    # each tap centred and scaled over all its cells: a cell's vector is an affine map of it
    part = torch.as_tensor(f[:, :, :4])
    centred = cell - cell.flatten(1).mean(1)[:, None, None]
    ratio = part / centred
    assert torch.allclose(ratio, ratio.flatten(1)[:, :1, None].expand_as(ratio), rtol=1e-4)


@pytest.mark.parametrize("regions, message", [(0, "give the grid size G"), (True, "regions is True"),
                                              ("3", "regions is '3'")])  # fmt: skip
def test_bad_regions_are_refused(regions, message):
    with pytest.raises(ValueError, match=message):
        build_encoder({**SMALL, "regions": regions})


def test_encoded_regions_are_cached_under_their_own_key(tmp_path):
    ds = _dataset(size=16)
    first = encode_dataset(ds, build_encoder({**SMALL, "regions": 2}), tmp_path)
    assert first["train"].shape == (5, 4, 8)
    again = encode_dataset(ds, build_encoder({**SMALL, "regions": 2}), tmp_path)
    np.testing.assert_array_equal(again["test"], first["test"])
    flat = encode_dataset(ds, build_encoder(SMALL), tmp_path)
    assert flat["train"].shape == (5, 32)
    assert len(list((tmp_path / "features").glob("*.npz"))) == 2
