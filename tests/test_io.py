"""caplm.io: atomic writes, JSON with named errors, stable hashes, configs as dicts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import caplm
from caplm.io import atomic_write, read_json, stable_hash, to_dict, write_json, write_text


def test_atomic_write_leaves_the_old_file_and_no_temporary_when_the_writer_fails(tmp_path):
    path = tmp_path / "results.json"
    write_json(path, {"a": 1})

    def broken(tmp: Path):
        tmp.write_text('{"a": ')  # half a file, then the process "dies"
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        atomic_write(path, broken)
    assert read_json(path) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_atomic_write_creates_missing_folders(tmp_path):
    path = write_text(tmp_path / "a" / "b" / "c.txt", "hello")
    assert path.read_text() == "hello"


def test_write_json_serialises_numpy_torch_and_paths(tmp_path):
    obj = {"f": np.float32(0.5), "i": torch.tensor(3), "v": np.arange(3), "p": Path("/x/y")}
    write_json(tmp_path / "o.json", obj)
    assert json.loads((tmp_path / "o.json").read_text()) == {
        "f": 0.5,
        "i": 3,
        "v": [0, 1, 2],
        "p": "/x/y",
    }


def test_write_json_refuses_what_it_cannot_serialise(tmp_path):
    with pytest.raises(TypeError, match="cannot serialise object"):
        write_json(tmp_path / "o.json", {"x": object()})
    assert not (tmp_path / "o.json").exists()


def test_read_json_names_the_file_of_invalid_json(tmp_path):
    path = tmp_path / "job.json"
    path.write_text('{"config_hash": "ab')
    with pytest.raises(ValueError, match=r"job\.json: not valid JSON"):
        read_json(path)


def test_stable_hash_ignores_key_order_and_sees_every_value():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1, "b": [1, 2]}) != stable_hash({"a": 1, "b": [2, 1]})
    assert len(stable_hash("x")) == 16 and len(stable_hash("x", length=8)) == 8
    # compact sorted JSON, sha256: fixed across processes and versions (cache keys use it)
    assert (
        stable_hash({"seed": 1, "a": "b"}) == hashlib.sha256(b'{"a":"b","seed":1}').hexdigest()[:16]
    )


def test_to_dict_resolves_interpolations_and_copies_plain_mappings():
    cfg = OmegaConf.create({"a": 2, "b": "${a}", "c": {"d": [1, "${a}"]}})
    assert to_dict(cfg) == {"a": 2, "b": 2, "c": {"d": [1, 2]}}
    assert to_dict(cfg.c.d) == [1, 2]
    plain = {"x": 1}
    copy = to_dict(plain)
    assert copy == plain and copy is not plain
    assert to_dict(3) == 3


def test_atomic_files_are_readable_like_any_file_the_process_writes(tmp_path):
    """mkstemp makes 0600 files; what caplm writes is as open() makes it (0666 & ~umask)."""
    from caplm.io import write_json, write_text

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    for path in (write_json(tmp_path / "a.json", {"a": 1}), write_text(tmp_path / "b", "b")):
        assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    assert plain.stat().st_mode & 0o044  # others can read (a umask of 022 or 002, as usual)


def test_make_corpora_writes_under_the_data_dir_the_configs_use(tmp_path, monkeypatch):
    from caplm.data import fetch_corpora

    calls = []
    monkeypatch.setattr(fetch_corpora, "fetch_sotu", calls.append)
    monkeypatch.setenv("CAPLM_DATA_DIR", str(tmp_path / "shared"))
    assert fetch_corpora.main([]) == 0
    assert calls == [tmp_path / "shared" / "corpora"]
    monkeypatch.delenv("CAPLM_DATA_DIR")
    fetch_corpora.main([])
    assert calls[1] == caplm.PROJECT_ROOT / "data" / "corpora"
