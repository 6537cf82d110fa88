"""The cache both generated datasets share (caplm/data/generated.py): a bad or foreign file is
never trusted, it is moved aside and the dataset generated again."""

from dataclasses import replace

import pytest

from caplm.data.scenes import ScenesConfig, make_scenes_dataset
from caplm.data.shapes import ShapesConfig, make_shapes_dataset

GENERATORS = {
    "shapes": (make_shapes_dataset, ShapesConfig(image_size=32, num_train=6, num_val=3, num_test=3)),
    "scenes": (make_scenes_dataset, ScenesConfig(image_size=64, num_train=6, num_val=3, num_test=3)),
}  # fmt: skip


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize("damage", [b"not a zip file", b""])
def test_corrupt_cache_warns_and_regenerates(tmp_path, name, damage):
    make, config = GENERATORS[name]
    fresh = make(config)
    path = tmp_path / name / f"{fresh.key}.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(damage)
    with pytest.warns(UserWarning, match=f"unusable {name} cache"):
        data = make(config, cache_dir=tmp_path)
    assert [i.raw for i in data.splits["test"]] == [i.raw for i in fresh.splits["test"]]
    make(config, cache_dir=tmp_path)  # rewritten: no warning now
    assert path.stat().st_size > 1000


@pytest.mark.parametrize("name", GENERATORS)
def test_cache_of_another_config_under_this_key_is_not_trusted(tmp_path, name):
    make, config = GENERATORS[name]
    fresh = make(config)
    other = make(replace(config, seed=5), cache_dir=tmp_path)
    (tmp_path / name / f"{other.key}.npz").rename(tmp_path / name / f"{fresh.key}.npz")
    with pytest.warns(UserWarning, match="holds dataset"):
        data = make(config, cache_dir=tmp_path)
    assert [i.raw for i in data.splits["val"]] == [i.raw for i in fresh.splits["val"]]
    assert [i.raw for i in data.splits["val"]] != [i.raw for i in other.splits["val"]]
