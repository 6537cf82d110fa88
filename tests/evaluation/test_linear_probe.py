"""The linear probe of image features: labels read off hand-built scenes, the probe on
synthetic features (encoded attribute -> near 1.0, noise -> near the majority baseline),
regularisation picked on val only, and ``python -m caplm.probe`` on a tiny config."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from caplm.data.scenes.lexicon import CATEGORIES as SCENE_CATEGORIES
from caplm.data.scenes.lexicon import COLOURS as SCENE_COLOURS
from caplm.data.shapes.settings import COLOURS, SHAPES
from caplm.evaluation.linear_probe import (
    EMPTY,
    attribute_labels,
    balanced_interval,
    family,
    format_table,
    probe,
    summarise,
)
from caplm.probe import main
from caplm.runtime.config import ConfigError
from tests.conftest import TINY


def shape(kind, colour, size, x, y, extent=None):
    extent = extent if extent is not None else (0.2 if size == "small" else 0.4)
    return dict(shape=kind, colour=colour, size=size, x=x, y=y, extent=extent)


def icon(category, colour, size, row, col):
    return dict(category=category, colour=colour, size=size, row=row, col=col,
                x=(col + 0.5) / 3, y=(row + 0.5) / 3, extent=0.12)  # fmt: skip


# --------------------------------------------------------------------------- labels
def test_shapes_labels_by_hand():
    scenes = {
        "one": [shape("circle", "red", "small", 0.2, 0.2)],  # in the top left corner
        "two": [shape("star", "blue", "large", 0.7, 0.5), shape("circle", "green", "small", 0.2, 0.55)],
        "twins": [shape("circle", "red", "small", 0.2, 0.5), shape("circle", "red", "large", 0.7, 0.5)],
        "edge": [shape("cross", "pink", "large", 0.4, 0.5)],  # x near a third's boundary
    }  # fmt: skip
    labels = attribute_labels("shapes", scenes)
    pairs = 2 * len(SHAPES)  # left-right and above-below, per shape
    assert len(labels) == 3 + len(SHAPES) + len(COLOURS) + len(COLOURS) * len(SHAPES) + 1 + pairs
    assert labels["count"] == {"one": "1", "two": "2", "twins": "2", "edge": "1"}
    assert labels["shape/circle"] == {"one": "yes", "two": "yes", "twins": "yes", "edge": "no"}
    assert labels["shape/star"] == {"one": "no", "two": "yes", "twins": "no", "edge": "no"}
    assert labels["colour/green"] == {"one": "no", "two": "yes", "twins": "no", "edge": "no"}
    assert labels["colour_shape/red_circle"] == {"one": "yes", "two": "no", "twins": "yes",
                                                 "edge": "no"}  # fmt: skip
    assert labels["colour_shape/blue_circle"]["two"] == "no"  # the circle is green
    assert labels["largest_size"] == {"one": "small", "two": "large", "twins": "large",
                                      "edge": "large"}  # fmt: skip
    assert labels["sizes_present"] == {"one": "small", "two": "large+small",
                                       "twins": "large+small", "edge": "large"}  # fmt: skip
    # only one-object pictures with a nameable place; only two objects of two kinds
    assert labels["position"] == {"one": "in the top left corner"}
    # a task per shape: the green circle is left of the blue star, the star right of it;
    # "twins" (two circles) has no shape-to-shape relation
    assert labels["pair_left_right/circle"] == {"two": "left"}
    assert labels["pair_left_right/star"] == {"two": "right"}
    assert labels["pair_above_below/circle"] == labels["pair_above_below/star"] == {}
    assert labels["pair_left_right/square"] == {}


def test_shapes_pair_relation_is_on_the_axis_the_captions_use():
    scenes = {"v": [shape("square", "red", "small", 0.5, 0.8), shape("circle", "blue", "small", 0.45, 0.2)]}  # fmt: skip
    labels = attribute_labels("shapes", scenes)
    # the circle is (just) left of the square but well above it: the captions say "above"
    assert labels["pair_above_below/circle"] == {"v": "above"}
    assert labels["pair_above_below/square"] == {"v": "below"}
    assert labels["pair_left_right/circle"] == labels["pair_left_right/square"] == {}


def test_scenes_labels_by_hand():
    scenes = {
        "pair": [icon("star", "red", "large", 0, 2), icon("ring", "blue", "small", 1, 0)],
        "three": [icon("fish", "red", "medium", 0, 0), icon("fish", "red", "medium", 0, 1),
                  icon("tree", "black", "small", 2, 2)],
        "same": [icon("moon", "green", "small", 1, 1), icon("moon", "green", "large", 2, 1)],
    }  # fmt: skip
    labels = attribute_labels("scenes", scenes)
    assert len(labels) == 1 + 4 * 9 + 3 * len(SCENE_CATEGORIES) + 2 * len(SCENE_COLOURS)
    assert labels["count"] == {"pair": "2", "three": "3", "same": "2"}
    pair = {a: v["pair"] for a, v in labels.items() if "pair" in v}
    assert pair["cell_category/r0c2"] == "star"
    assert pair["cell_colour/r0c2"] == "red"
    assert pair["cell_size/r0c2"] == "large"
    assert pair["cell_occupied/r0c2"] == "yes"
    assert (pair["cell_category/r1c0"], pair["cell_colour/r1c0"], pair["cell_size/r1c0"]) == (
        "ring", "blue", "small")  # fmt: skip
    empty = [f"r{r}c{c}" for r in range(3) for c in range(3) if (r, c) not in ((0, 2), (1, 0))]
    for cell in empty:
        assert pair[f"cell_occupied/{cell}"] == "no"
        for what in ("category", "colour", "size"):
            assert pair[f"cell_{what}/{cell}"] == EMPTY
    assert [k for k in SCENE_CATEGORIES if pair[f"category/{k}"] == "yes"] == ["ring", "star"]
    assert [c for c in SCENE_COLOURS if pair[f"colour/{c}"] == "yes"] == ["red", "blue"]
    assert labels["colour_count/red"] == {"pair": "1", "three": "2", "same": "0"}
    assert labels["colour_count/black"] == {"pair": "0", "three": "1", "same": "0"}
    # a task per category: the blue ring (row 1, col 0) is left of and below the red star
    # (row 0, col 2); "three" has three objects and "same" two moons: no pair label
    assert labels["pair_horizontal/ring"] == {"pair": "left"}
    assert labels["pair_vertical/ring"] == {"pair": "below"}
    assert labels["pair_horizontal/star"] == {"pair": "right"}
    assert labels["pair_vertical/star"] == {"pair": "above"}
    assert labels["pair_horizontal/moon"] == labels["pair_horizontal/fish"] == {}


def test_scenes_pair_in_one_column_is_same():
    scenes = {"col": [icon("arrow", "red", "small", 0, 1), icon("bolt", "red", "small", 2, 1)]}
    labels = attribute_labels("scenes", scenes)
    assert labels["pair_horizontal/arrow"] == labels["pair_horizontal/bolt"] == {"col": "same"}
    assert labels["pair_vertical/arrow"] == {"col": "above"}
    assert labels["pair_vertical/bolt"] == {"col": "below"}


def test_other_datasets_are_refused():
    with pytest.raises(ValueError, match="generated dataset"):
        attribute_labels("flickr8k", {})


# --------------------------------------------------------------------------- the probe
SIZES = {"train": 300, "val": 100, "test": 100}


def synthetic(dim: int = 30, seed: int = 0, sizes=SIZES):
    """Features per split and their ids; ``encoded``: a 3-class attribute whose classes have
    their own mean (linearly separable, with a margin); ``noise``: an imbalanced label
    independent of the features. Dimensions have unequal scales (the probe standardises)."""
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    means = torch.randn(3, dim, generator=gen)
    scales = torch.linspace(0.5, 3.0, dim)
    features, ids, encoded, noise = {}, {}, {}, {}
    for split, n in sizes.items():
        classes = torch.randint(0, 3, (n,), generator=gen)
        features[split] = (torch.randn(n, dim, generator=gen) + 1.5 * means[classes]) * scales
        ids[split] = [f"{split}-{i}" for i in range(n)]
        for image, c in zip(ids[split], classes, strict=True):
            encoded[image] = "abc"[int(c)]
            noise[image] = "rare" if rng.random() < 0.25 else "common"
    return features, ids, {"encoded": encoded, "noise": noise}


def test_a_linearly_encoded_attribute_is_read_and_noise_is_not():
    features, ids, labels = synthetic()
    results = probe(features, ids, labels)
    enc, noise = results["encoded"], results["noise"]
    assert enc["test_accuracy"] >= 0.95
    assert enc["n_classes"] == 3 and enc["classes"] == ["a", "b", "c"]
    assert 0.2 < enc["majority_baseline"] < 0.5
    assert noise["n_classes"] == 2
    assert abs(noise["test_accuracy"] - noise["majority_baseline"]) <= 0.1
    assert noise["balanced_accuracy"] < 0.65
    assert (enc["n_train"], enc["n_val"], enc["n_test"]) == (300, 100, 100)
    assert enc["l2"] is not None and enc["val_accuracy"] >= 0.9


def test_more_dimensions_than_train_images():
    """Above N_train dimensions the features are projected onto the train rows' span first
    (exact for an L2-penalised linear model); a signal spread over many noisy dimensions is
    still read."""
    sizes = {"train": 120, "val": 60, "test": 60}
    gen = torch.Generator().manual_seed(3)
    direction = torch.randn(500, generator=gen)
    features, ids, labels = {}, {}, {"sign": {}}
    for split, n in sizes.items():
        y = torch.randint(0, 2, (n,), generator=gen)
        features[split] = (
            torch.randn(n, 500, generator=gen) + 0.4 * (2 * y - 1)[:, None] * direction
        )
        ids[split] = [f"{split}-{i}" for i in range(n)]
        labels["sign"].update({image: str(int(v)) for image, v in zip(ids[split], y, strict=True)})
    assert probe(features, ids, labels)["sign"]["test_accuracy"] >= 0.9


def test_regularisation_is_never_chosen_on_test():
    features, ids, labels = synthetic(dim=60, sizes={"train": 80, "val": 60, "test": 60})
    labels = {**labels, "weak": {i: "abc"[int(x[:3].argmax() + (x[3] > 1.5)) % 3]
                                 for s in ids for i, x in zip(ids[s], features[s], strict=True)}}  # fmt: skip
    before = probe(features, ids, labels)
    rng = np.random.default_rng(1)
    shuffled = {}
    for attribute, by_image in labels.items():
        test = ids["test"]
        values = [by_image[i] for i in test]
        rng.shuffle(values)
        shuffled[attribute] = {**by_image, **dict(zip(test, values, strict=True))}
    after = probe(features, ids, shuffled)
    for attribute in labels:
        assert after[attribute]["l2"] == before[attribute]["l2"]
        assert after[attribute]["scaling"] == before[attribute]["scaling"]
        assert after[attribute]["val_accuracy"] == before[attribute]["val_accuracy"]
    assert after["encoded"]["test_accuracy"] < before["encoded"]["test_accuracy"] - 0.3
    # and the choice does follow val: a grid of one strength is that strength
    one = probe(features, ids, labels, l2_grid=(0.5,), scalings=("global",))["encoded"]
    assert (one["l2"], one["scaling"]) == (0.5, "global")
    with pytest.raises(ValueError, match="scalings"):
        probe(features, ids, labels, scalings=("whiten",))


def test_baseline_from_train_unseen_labels_and_missing_splits():
    features, ids, _ = synthetic(sizes={"train": 20, "val": 10, "test": 10})
    skewed = {i: "a" for i in ids["train"]} | {i: "b" for s in ("val", "test") for i in ids[s]}
    train_only = {i: "a" for i in ids["train"]}
    one_class = {i: "x" for s in ids for i in ids[s]}
    r = probe(features, ids, {"skewed": skewed, "train_only": train_only, "one": one_class})
    # one class in train: always predicted; "b" never seen in train is always wrong
    assert r["skewed"]["majority_baseline"] == 0.0 and r["skewed"]["test_accuracy"] == 0.0
    assert r["skewed"]["n_classes"] == 2 and r["skewed"]["classes"] == ["a"]
    assert r["one"]["test_accuracy"] == 1.0 and r["one"]["l2"] is None
    assert r["train_only"]["test_accuracy"] is None and r["train_only"]["n_test"] == 0


def test_mismatched_rows_and_ids_are_refused():
    features, ids, labels = synthetic(sizes={"train": 20, "val": 10, "test": 10})
    ids["val"] = ids["val"][:-1]
    with pytest.raises(ValueError, match="val: 10 feature rows but 9 image ids"):
        probe(features, ids, labels)


def test_probe_restores_torch_threads():
    features, ids, labels = synthetic(sizes={"train": 20, "val": 10, "test": 10})
    before = torch.get_num_threads()
    probe(features, ids, labels, threads=1)
    assert torch.get_num_threads() == before


def test_summary_and_table_pool_members_and_pass_by_balanced_accuracy():
    def r(acc, majority=0.5, balanced=None):
        return {"test_accuracy": acc, "majority_baseline": majority, "n_classes": 2,
                "balanced_accuracy": acc if balanced is None else balanced, "n_test": 10}  # fmt: skip

    results = {"count": r(0.97), "cell/r0c0": r(1.0),
               "cell/r0c1": {**r(0.9), "balanced_lo": 0.8, "balanced_hi": 0.97},
               "rare/a": {**r(0.97, majority=0.96, balanced=0.6), "balanced_lo": 0.5,
                          "balanced_hi": 0.7}, "rare/b": r(0.99),
               "none/x": {**r(None), "majority_baseline": None, "balanced_accuracy": None}}  # fmt: skip
    assert family("cell/r0c1") == "cell" and family("count") == "count"
    s = summarise(results)
    assert s["count"]["passed"] is True
    assert s["cell"]["balanced_mean"] == pytest.approx(0.95)
    assert (s["cell"]["balanced_min"], s["cell"]["worst"]) == (0.9, "cell/r0c1")
    assert s["cell"]["passed"] is False and s["cell"]["failing"] == ["cell/r0c1"]
    # 97% plain accuracy against a 96% majority is a probe that says "no": it fails
    assert s["rare"]["test_accuracy_mean"] == pytest.approx(0.98)
    assert s["rare"]["passed"] is False and s["rare"]["failing"] == ["rare/a"]
    assert s["none"]["passed"] is None
    table = format_table(results)
    lines = {line.split()[0]: line for line in table.splitlines() if line.strip()}
    assert "PASS" in lines["count"] and "FAIL" in lines["cell"] and "n/a" in lines["none"]
    assert "FAIL" in lines["rare"] and "60.0% [50.0%, 70.0%] /  97.0% /  96.0%" in lines["rare/a"]
    assert "90.0% [80.0%, 97.0%] /  90.0%" in lines["cell/r0c1"]
    # cell's failure is within its interval; rare's is not
    assert s["cell"]["surely_failing"] == [] and s["rare"]["surely_failing"] == ["rare/a"]
    assert "1 of 3 attributes at or above 95% balanced accuracy on every member; 1 with a " in table
    assert "wholly below it: rare (the others' failures may be" in table


def test_balanced_interval_holds_the_estimate_and_narrows_with_more_test_images():
    rng, widths = np.random.default_rng(0), []
    for n, positives in ((200, 8), (2000, 80)):
        truth = torch.zeros(n, dtype=torch.long)
        truth[:positives] = 1
        predicted = truth.clone()
        predicted[: positives // 8] = 0  # one positive in 8 missed
        false = rng.choice(np.arange(positives, n), n // 100, replace=False)
        predicted[torch.as_tensor(false)] = 1  # and 1% of the images called positive
        balanced = (7 / 8 + 1 - len(false) / (n - positives)) / 2
        lo, hi = balanced_interval(predicted, truth)
        assert lo < balanced < hi
        widths.append(hi - lo)
    assert widths[0] > 2 * widths[1]  # 8 positives: the interval spans many points
    assert widths[0] > 0.1
    same = torch.ones(50, dtype=torch.long)
    assert balanced_interval(same, same) == (1.0, 1.0)


def test_strength_is_chosen_by_balanced_accuracy_on_val():
    """A rare label (8% "yes") that a noisy signal predicts: on val, the strongest penalties
    always say "no" (92% plain accuracy, 50% balanced); the weaker ones find some of the rare
    class but lose plain accuracy doing so. The choice is by balanced accuracy: a strength
    that finds the rare class, which the plain-accuracy choice would not have kept."""
    features, ids, _ = synthetic(dim=10, seed=2, sizes={"train": 400, "val": 200, "test": 200})
    gen = torch.Generator().manual_seed(5)
    rare = {}
    for split in ids:
        signal = features[split][:, 0] / 0.5 + torch.randn(len(ids[split]), generator=gen)
        cut = torch.quantile(signal, 0.92)
        rare.update(
            {i: "yes" if v > cut else "no" for i, v in zip(ids[split], signal, strict=True)}
        )
    always_no = probe(features, ids, {"rare": rare}, l2_grid=(10.0,), scalings=("standard",))
    assert always_no["rare"]["val_balanced"] == 0.5 and always_no["rare"]["val_accuracy"] == 0.92
    r = probe(features, ids, {"rare": rare}, scalings=("standard",))["rare"]
    assert r["l2"] < 1.0 and r["val_balanced"] > 0.51
    assert r["val_accuracy"] <= always_no["rare"]["val_accuracy"]


# --------------------------------------------------------------------------- the command
TINY_PROBE = ["data=shapes", *(o for o in TINY if o.startswith(("data.", "data/")))]


def test_the_command_writes_probe_json(tmp_path, capsys):
    assert main([*TINY_PROBE, f"paths.data_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    written = list((tmp_path / "cache" / "probe").glob("shapes-*.json"))
    assert len(written) == 1 and f"probe: {written[0]}" in out
    report = json.loads(written[0].read_text())
    assert report["dataset"] == "shapes" and report["threshold"] == 0.95
    assert report["images"] == {"train": 24, "val": 8, "test": 8}
    assert report["data"]["encoder"]["name"] == "small_cnn"
    assert {"count", "shape/circle", "colour_shape/red_circle", "pair_left_right/star"} <= set(
        report["attributes"]
    )
    count = report["attributes"]["count"]
    assert {"test_accuracy", "majority_baseline", "n_classes"} <= set(count)
    assert 0.0 <= count["test_accuracy"] <= 1.0
    assert report["families"]["shape"]["tasks"] == len(SHAPES)
    assert "count" in out and ("PASS" in out or "FAIL" in out)
    # the features came through the shared cache; a second run reuses it and the same file
    assert list((tmp_path / "cache" / "features").glob("*.npz"))
    assert main([*TINY_PROBE, f"paths.data_dir={tmp_path}"]) == 0
    assert list((tmp_path / "cache" / "probe").glob("*.json")) == written


def test_the_command_refuses_a_misspelled_key(tmp_path):
    with pytest.raises(ConfigError, match="pool_gird"):
        main([*TINY_PROBE, "+data.encoder.pool_gird=2", f"paths.data_dir={tmp_path}"])
