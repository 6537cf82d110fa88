"""Features files too large for memory: the train split stays on disk (DiskRows) and the data
loader reads its rows batch by batch; every number is the same as with the file read in."""

import pickle

import numpy as np
import pytest
import torch

from caplm.data import features as features_module
from caplm.data.datamodules import CaptionDataModule
from caplm.data.features import DiskRows, load_features, read_feature_file
from caplm.data.text import Vocabulary
from tests.data.test_features import FINITE_FIX, _dataset, _write_features


def _file(tmp_path, name, seed=0):
    """A features file of the toy dataset's images in a scrambled order, plus one extra row."""
    ds = _dataset()
    ids = [x for s in ds.splits for x in ds.image_ids(s)] + ["extra.jpg"]
    order = np.random.default_rng(seed).permutation(len(ids))
    rows = np.random.default_rng(seed).normal(size=(len(ids), 6))  # float64 in the file
    path = tmp_path / name
    _write_features(path, [ids[i] for i in order], rows[order])
    return ds, path


@pytest.fixture
def on_disk(monkeypatch):
    """Every .h5/.npy file counts as too large for memory."""
    monkeypatch.setattr(features_module, "IN_MEMORY_MAX_BYTES", 0)


@pytest.mark.parametrize("name", ["feats.h5", "feats.npy"])
def test_a_large_file_keeps_the_train_split_on_disk_with_the_same_values(
    tmp_path, name, monkeypatch, caplog
):
    ds, path = _file(tmp_path, name)
    cfg = {"features_file": str(path)}
    in_memory = load_features(cfg, ds, tmp_path / "cache")
    monkeypatch.setattr(features_module, "IN_MEMORY_MAX_BYTES", 0)
    with caplog.at_level("INFO"):
        lazy = load_features(cfg, ds, tmp_path / "cache")
    assert isinstance(lazy["train"], DiskRows)
    assert "train split's rows are read from it batch by batch" in caplog.text
    assert all(isinstance(lazy[s], np.ndarray) for s in ("val", "test"))  # read in: used whole
    assert lazy["train"].shape == in_memory["train"].shape == (5, 6)
    for split in ds.splits:
        np.testing.assert_array_equal(np.asarray(lazy[split]), in_memory[split])
        assert np.asarray(lazy[split]).dtype == np.float32
    rows = lazy["train"][[4, 0, 4, 2]]  # any order, repeats too
    np.testing.assert_array_equal(rows, in_memory["train"][[4, 0, 4, 2]])
    np.testing.assert_array_equal(lazy["train"][1:3], in_memory["train"][1:3])
    np.testing.assert_array_equal(lazy["train"][3], in_memory["train"][3])


def test_small_files_are_still_read_into_memory(tmp_path):
    ds, path = _file(tmp_path, "feats.h5")
    feats = load_features({"features_file": str(path)}, ds, tmp_path)
    assert all(isinstance(f, np.ndarray) for f in feats.values())


def test_npz_files_are_always_read_in(tmp_path, on_disk):
    ds, path = _file(tmp_path, "feats.npz")  # a zip cannot be read row by row
    assert isinstance(
        load_features({"features_file": str(path)}, ds, tmp_path)["train"], np.ndarray
    )


def _batches(feats, ds, num_workers=0):
    vocab = Vocabulary.build([["a"]], min_freq=1)
    data = CaptionDataModule(ds, feats, vocab, batch_size=2, num_workers=num_workers, seed=3)
    return [b["features"] for b in data.train_dataloader()], data


@pytest.mark.parametrize("num_workers", [0, 1])
def test_the_loader_gives_the_same_batches_from_disk(tmp_path, monkeypatch, num_workers):
    ds, path = _file(tmp_path, "feats.h5")
    cfg = {"features_file": str(path)}
    expected, _ = _batches(load_features(cfg, ds, tmp_path), ds)
    monkeypatch.setattr(features_module, "IN_MEMORY_MAX_BYTES", 0)
    got, data = _batches(load_features(cfg, ds, tmp_path), ds, num_workers)
    assert data.feature_size == 6
    assert len(got) == len(expected) == 3
    for a, b in zip(got, expected, strict=True):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_disk_rows_pickle_without_their_open_file(tmp_path, on_disk):
    ds, path = _file(tmp_path, "feats.h5")
    rows = load_features({"features_file": str(path)}, ds, tmp_path)["train"]
    first = rows[[0]]  # opens the file
    copy = pickle.loads(pickle.dumps(rows))
    assert copy._open is None
    np.testing.assert_array_equal(copy[[0]], first)


@pytest.mark.parametrize("name", ["feats.h5", "feats.npy"])
def test_non_finite_rows_of_a_large_file_are_refused_with_their_row_and_image(
    tmp_path, name, on_disk, monkeypatch
):
    monkeypatch.setattr(features_module, "SCAN_ROWS", 4)  # the bad row is in the second block
    ds = _dataset()
    ids = [x for s in ds.splits for x in ds.image_ids(s)]
    rows = np.arange(2 * len(ids), dtype=np.float32).reshape(-1, 2)
    rows[5] = [np.nan, 0.0]
    rows[6] = [np.inf, 0.0]
    path = tmp_path / name
    _write_features(path, ids, rows)
    with pytest.raises(ValueError) as err:
        read_feature_file(path, on_disk=True)
    assert str(err.value) == (
        f"{path}: 2 of 4 feature rows (rows 4-7) are not finite; the first is row 5 "
        f"(image 'val0.jpg'), which holds NaN; {FINITE_FIX}"
    )
