"""A frozen linear probe of the image features: can a linear classifier read off every
attribute the captions of a generated dataset mention?

:func:`attribute_labels` turns a generated dataset's scenes (``CaptionDataset.info["scenes"]``)
into one classification task per attribute (image id -> label; an image a task does not
apply to is left out of it); :func:`probe` trains one L2-regularised multinomial logistic
regression per task on the train split's frozen features, picks the L2 strength and the
feature scaling (``SCALINGS``) on val (never on test) by balanced accuracy, and reports test
balanced accuracy (mean recall over the classes) beside plain accuracy and the
majority-class baseline. An attribute passes when its *balanced* test accuracy reaches
``THRESHOLD``: most labels here are rare (a given colour-shape is in about 4% of the
pictures), so plain accuracy rewards a probe that always says "no" (measured: colour_shape
97.2% plain against a 95.8% majority baseline, 72.7% balanced). A task named
``family/member`` (``cell_category/r0c1``, ``shape/star``) is one member of a pooled
attribute; :func:`summarise` reports each family's mean and worst member.

Attributes (``shapes``; every one a thing its captions say):

- ``count``: how many objects (1-3): "two shapes including ...", "a single ...".
- ``shape/<s>``: whether a ``<s>`` (circle, square, ...) is in the picture (yes/no).
- ``colour/<c>``: whether an object of colour ``<c>`` is in the picture.
- ``colour_shape/<c>_<s>``: whether a ``<c> <s>`` is in the picture ("a red circle").
- ``largest_size``: the size class (small/large) of the largest object.
- ``sizes_present``: the sizes in the picture (small, large or small+large).
- ``position``: the third-by-third place of the only object of a one-object picture, where
  the captions can name it ("in the top left corner"); images near a boundary left out.
- ``pair_left_right/<s>``, ``pair_above_below/<s>``: in a two-object picture of two shapes,
  where the ``<s>`` is relative to the other, as the captions' relation word says it (the
  axis the centres are further apart on): left/right for a side-by-side pair (the first
  task), above/below for a stacked one (the second).

A relation task is one per kind because only so is it a linear question. "Where is the
first of the two by name" (this probe's tasks before 2026-12-07) is not: which object is
first is a comparison of the two kinds, so no linear map of any features can read it
(measured on shapes: 65-85% balanced with each of nine feature sets tried). "Where is the
circle" is: it is the sign of the circle's place minus the other's, both linear in features
that keep places.

Attributes (``scenes``; objects sit in the cells of a 3 x 3 grid, ``r<row>c<col>``):

- ``count``: how many objects (1-4).
- ``cell_occupied/<cell>``: whether an object is in that cell (places: "in the top left").
- ``cell_category/<cell>``: the category of the object in that cell, or "empty".
- ``cell_colour/<cell>``: its colour, or "empty".
- ``cell_size/<cell>``: its size class (small/medium/large), or "empty".
- ``category/<k>``: whether a ``<k>`` is in the picture ("... and no stars").
- ``colour/<c>``: whether an object of colour ``<c>`` is in the picture ("but no green ones").
- ``colour_count/<c>``: how many objects have colour ``<c>`` (0-4): "two red ones".
- ``pair_horizontal/<k>`` / ``pair_vertical/<k>``: in a two-object picture of two categories,
  the ``<k>``'s column / row relative to the other's: left/same/right, above/same/below (the
  cells decide "left of", "above", "beside" and the rest).

Per-kind tasks are rare (a given pair member is in a few percent of the pictures): measure
with more pictures than a job trains on (``make probe`` uses 4,000 train and 1,000 test
pictures; the val and test pictures do not depend on ``num_train``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from caplm import torch_threads
from caplm.data.features import load_features
from caplm.data.readers import load_caption_dataset
from caplm.data.scenes.lexicon import CATEGORIES as SCENE_CATEGORIES
from caplm.data.scenes.lexicon import COLOURS as SCENE_COLOURS
from caplm.data.scenes.lexicon import GRID
from caplm.data.shapes.scene import position, relation
from caplm.data.shapes.settings import COLOURS as SHAPE_COLOURS
from caplm.data.shapes.settings import SHAPES
from caplm.io import stable_hash, to_dict, write_json

#: The datasets whose scenes this module reads.
DATASETS = ("shapes", "scenes")
#: L2 strengths tried (on mean cross-entropy + l2/2 |W|^2, standardised features), strongest
#: first; ties on val accuracy go to the stronger one.
L2_GRID = (10.0, 1.0, 0.1, 0.01, 1e-3, 1e-4, 1e-5, 1e-6)
#: How features are scaled before the fit (train statistics; chosen per task on val):
#: ``standard``: each dimension to mean 0, deviation 1; ``global``: centred and divided by
#: one overall deviation, so the dimensions keep their relative sizes (with post-ReLU CNN
#: features, mostly zeros, standardising inflates rarely active units: measured worse on the
#: scenes' EfficientNet features). Both are affine maps: the probe stays linear.
SCALINGS = ("standard", "global")
#: LBFGS iterations per fit at most (each strength warm-starts from the one before).
MAX_ITER = 200
SPLITS = ("train", "val", "test")
#: The balanced test accuracy asked of every attribute (of every member of a pooled one).
THRESHOLD = 0.95
#: Resamples of the test images for each balanced accuracy's 95% percentile interval (a rare
#: label has a handful of test positives: one miss among 8 costs 6 points).
BOOTSTRAP = 1000
EMPTY = "empty"
#: The relation tasks' axes, one family each (``pair_left_right/circle``, ...): shapes' with
#: the relation words on each; scenes' with the cell coordinate each compares and its words.
SHAPE_AXES = {"left_right": ("left", "right"), "above_below": ("above", "below")}
SHAPE_AXIS_OF = {word: axis for axis, words in SHAPE_AXES.items() for word in words}
SCENE_AXES = {"horizontal": ("col", ("left", "right")), "vertical": ("row", ("above", "below"))}


# --------------------------------------------------------------------------- labels
def attribute_labels(
    dataset_name: str, scenes: Mapping[str, list[dict]]
) -> dict[str, dict[str, str]]:
    """attribute -> image id -> label (a string), for a generated dataset's scenes."""
    if dataset_name == "shapes":
        return _shapes_labels(scenes)
    if dataset_name == "scenes":
        return _scenes_labels(scenes)
    raise ValueError(
        f"dataset {dataset_name!r}: the probe needs a generated dataset that knows what is in "
        f"each image; use one of {', '.join(DATASETS)}"
    )


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _shapes_labels(scenes: Mapping[str, list[dict]]) -> dict[str, dict[str, str]]:
    labels: dict[str, dict[str, str]] = {"count": {}, "largest_size": {}, "sizes_present": {}}
    labels.update({f"shape/{s}": {} for s in SHAPES})
    labels.update({f"colour/{c}": {} for c in SHAPE_COLOURS})
    labels.update({f"colour_shape/{c}_{s}": {} for c in SHAPE_COLOURS for s in SHAPES})
    labels["position"] = {}
    labels.update({f"pair_{axis}/{s}": {} for axis in SHAPE_AXES for s in SHAPES})
    for image, objects in scenes.items():
        labels["count"][image] = str(len(objects))
        shapes = {o["shape"] for o in objects}
        colours = {o["colour"] for o in objects}
        kinds = {(o["colour"], o["shape"]) for o in objects}
        for s in SHAPES:
            labels[f"shape/{s}"][image] = _yes(s in shapes)
        for c in SHAPE_COLOURS:
            labels[f"colour/{c}"][image] = _yes(c in colours)
            for s in SHAPES:
                labels[f"colour_shape/{c}_{s}"][image] = _yes((c, s) in kinds)
        labels["largest_size"][image] = max(objects, key=lambda o: o["extent"])["size"]
        labels["sizes_present"][image] = "+".join(sorted({o["size"] for o in objects}))
        if len(objects) == 1:
            place = position(objects[0])
            if place is not None:
                labels["position"][image] = place
        if len(objects) == 2 and len(shapes) == 2:
            for a, b in (objects, objects[::-1]):
                word = relation(a, b)
                labels[f"pair_{SHAPE_AXIS_OF[word]}/{a['shape']}"][image] = word
    return labels


def _cells() -> list[tuple[int, int, str]]:
    return [(row, col, f"r{row}c{col}") for row in range(GRID) for col in range(GRID)]


def _scenes_labels(scenes: Mapping[str, list[dict]]) -> dict[str, dict[str, str]]:
    labels: dict[str, dict[str, str]] = {"count": {}}
    for what in ("occupied", "category", "colour", "size"):
        labels.update({f"cell_{what}/{name}": {} for _, _, name in _cells()})
    labels.update({f"category/{k}": {} for k in SCENE_CATEGORIES})
    labels.update({f"colour/{c}": {} for c in SCENE_COLOURS})
    labels.update({f"colour_count/{c}": {} for c in SCENE_COLOURS})
    labels.update({f"pair_{axis}/{k}": {} for axis in SCENE_AXES for k in SCENE_CATEGORIES})
    for image, objects in scenes.items():
        labels["count"][image] = str(len(objects))
        at = {(o["row"], o["col"]): o for o in objects}
        for row, col, name in _cells():
            o = at.get((row, col))
            labels[f"cell_occupied/{name}"][image] = _yes(o is not None)
            for what in ("category", "colour", "size"):
                labels[f"cell_{what}/{name}"][image] = EMPTY if o is None else o[what]
        categories = {o["category"] for o in objects}
        colours = Counter(o["colour"] for o in objects)
        for k in SCENE_CATEGORIES:
            labels[f"category/{k}"][image] = _yes(k in categories)
        for c in SCENE_COLOURS:
            labels[f"colour/{c}"][image] = _yes(c in colours)
            labels[f"colour_count/{c}"][image] = str(colours.get(c, 0))
        if len(objects) == 2 and len(categories) == 2:
            for a, b in (objects, objects[::-1]):
                for axis, (key, words) in SCENE_AXES.items():
                    labels[f"pair_{axis}/{a['category']}"][image] = _order(a[key], b[key], words)
    return labels


def _order(a: int, b: int, words: tuple[str, str]) -> str:
    return words[0] if a < b else words[1] if a > b else "same"


# --------------------------------------------------------------------------- the probe
def probe(
    features_by_split: Mapping[str, torch.Tensor | np.ndarray],
    ids_by_split: Mapping[str, Sequence[str]],
    labels: Mapping[str, Mapping[str, str]],
    l2_grid: Sequence[float] = L2_GRID,
    max_iter: int = MAX_ITER,
    scalings: Sequence[str] = SCALINGS,
    threads: int | None = 1,
) -> dict[str, dict]:
    """A linear classifier per attribute on frozen features: trained on ``train``, its L2
    strength and feature scaling picked on ``val`` (best balanced accuracy; ties go to the
    stronger strength, then to the earlier scaling), scored on ``test``.

    ``features_by_split[s]`` is (N_s, D), row i for image ``ids_by_split[s][i]``; ``labels``
    is attribute -> image id -> label (images without a label are left out of that task).
    ``scalings`` (see ``SCALINGS``) use the train split's statistics only. Returns attribute
    -> ``test_accuracy``, ``majority_baseline`` (the train split's most frequent label, on
    test), ``n_classes`` (labels seen in any split), ``balanced_accuracy`` (mean per-class
    recall on test, the measure a task passes by), ``val_accuracy`` and ``val_balanced`` (of
    the choice), ``l2`` and ``scaling`` (those chosen), ``classes`` and
    the example counts ``n_train``, ``n_val``, ``n_test``; a task with no train or no test
    image has None for the accuracies.

    Each task's model is its own (the losses of tasks on the same images are summed and
    minimised together only to share the matrix products: the sum's minimum is each one's).
    The fits run on ``threads`` torch threads (restored after; None: as set): these small
    dense problems are several times faster on one thread, far more so on shared cores.
    """
    for split in SPLITS:
        if split not in features_by_split or split not in ids_by_split:
            raise ValueError(f"the probe needs a {split} split; got {sorted(features_by_split)}")
        if len(features_by_split[split]) != len(ids_by_split[split]):
            raise ValueError(
                f"{split}: {len(features_by_split[split])} feature rows but "
                f"{len(ids_by_split[split])} image ids"
            )
    unknown = [s for s in scalings if s not in SCALINGS]
    if unknown or not scalings:
        raise ValueError(f"scalings {list(scalings)}: use one or more of {', '.join(SCALINGS)}")
    with torch_threads(threads):
        return _probe(features_by_split, ids_by_split, labels, l2_grid, max_iter, scalings)


def _probe(features_by_split, ids_by_split, labels, l2_grid, max_iter, scalings):
    raw = {s: _tensor(features_by_split[s]) for s in SPLITS}
    x = {scaling: _project(raw, scaling) for scaling in scalings}
    results, tasks = {}, {}
    for attribute, by_image in labels.items():
        results[attribute], task = _task(ids_by_split, by_image)
        if task is not None:
            tasks[attribute] = task
    groups: dict[tuple, list[str]] = {}  # tasks on the same images are fitted together
    for attribute, task in tasks.items():
        key = tuple(tuple(task["rows"][s]) for s in SPLITS)
        groups.setdefault(key, []).append(attribute)
    for key, attributes in groups.items():
        xs = {
            scaling: {s: v[s][list(rows)] for s, rows in zip(SPLITS, key, strict=True)}
            for scaling, v in x.items()
        }
        _fit_group(xs, [tasks[a] for a in attributes], l2_grid, max_iter)
    for attribute, task in tasks.items():
        results[attribute].update(task["result"])
    return results


def _tensor(features) -> torch.Tensor:
    return torch.as_tensor(np.asarray(features), dtype=torch.float64)


def _project(x: dict[str, torch.Tensor], scaling: str) -> dict[str, torch.Tensor]:
    """Features centred and scaled by the train split's statistics (``scaling``), expressed
    in an orthonormal basis of the train rows' span, as float32. An L2-penalised linear
    model's weights lie in that span (representer theorem), so the basis changes nothing but
    the size: D becomes at most N_train."""
    train = x["train"]
    mean = train.mean(0)
    if scaling == "standard":
        std = train.std(0) if len(train) > 1 else torch.ones_like(mean)
        std = torch.where(std > 1e-8, std, torch.ones_like(std))
    else:  # "global": one scale, so the dimensions keep their relative sizes
        spread = float((train - mean).pow(2).mean().sqrt()) if len(train) > 1 else 1.0
        std = torch.full_like(mean, spread if spread > 1e-12 else 1.0)
    z = {s: (v - mean) / std for s, v in x.items()}
    if train.shape[1] > train.shape[0]:
        _, s, vh = torch.linalg.svd(z["train"], full_matrices=False)
        basis = vh[s > s.max() * 1e-10].T  # (D, r)
        z = {k: v @ basis for k, v in z.items()}
    return {k: v.float() for k, v in z.items()}


def _task(ids_by_split, by_image) -> tuple[dict, dict | None]:
    """The result skeleton of one attribute, and its rows and encoded labels per split
    (None when it has no train or no test image)."""
    rows, ys = {}, {}
    for split in SPLITS:
        ids = ids_by_split[split]
        rows[split] = [i for i, image in enumerate(ids) if image in by_image]
        ys[split] = [str(by_image[ids[i]]) for i in rows[split]]
    result = {"test_accuracy": None, "majority_baseline": None,
              "n_classes": len({y for s in SPLITS for y in ys[s]}), "balanced_accuracy": None,
              "val_accuracy": None, "val_balanced": None, "l2": None, "scaling": None,
              "classes": sorted(set(ys["train"])),
              **{f"n_{s}": len(rows[s]) for s in SPLITS}}  # fmt: skip
    if not rows["train"] or not rows["test"]:
        return result, None
    counts = Counter(ys["train"])
    top = max(counts.values())
    majority = min(c for c, n in counts.items() if n == top)  # ties: the first by name
    result["majority_baseline"] = float(np.mean([y == majority for y in ys["test"]]))
    index = {c: k for k, c in enumerate(result["classes"])}
    encoded = {  # labels never seen in train get -1: always wrong
        s: torch.tensor([index.get(y, -1) for y in ys[s]], dtype=torch.long) for s in SPLITS
    }
    return result, {"rows": rows, "y": encoded, "k": len(index), "result": {}}


def _fit_group(xs: dict[str, dict], tasks: list[dict], l2_grid, max_iter) -> None:
    """Fit every task of a group (same images) for each scaling (``xs``: scaling -> split ->
    features) at each L2 strength, keep each task's best on val (balanced accuracy), and
    score it on test (in ``task["result"]``)."""
    fitted = [t for t in tasks if t["k"] > 1]
    best = {}  # task -> val balanced accuracy, l2, scaling, val and test predictions
    for t in tasks:
        best[id(t)] = (-1.0, None, None, None, None)
        if t["k"] == 1:  # one class in train: always it
            always = torch.zeros_like(t["y"]["val"])
            best[id(t)] = (_balanced(always, t["y"]["val"]), None, None, always,
                           torch.zeros_like(t["y"]["test"]))  # fmt: skip
    for scaling, x in xs.items():
        start = None
        for l2 in sorted(l2_grid, reverse=True) if fitted else ():  # strongest first: warm starts
            start = _fit(x["train"], [t["y"]["train"] for t in fitted], l2, max_iter, start)
            for t, (w, b) in zip(fitted, _split(start, fitted), strict=True):
                on_val = (x["val"] @ w + b).argmax(1)
                val = _balanced(on_val, t["y"]["val"])
                if val > best[id(t)][0]:  # ties keep the stronger strength, earlier scaling
                    best[id(t)] = (val, l2, scaling, on_val, (x["test"] @ w + b).argmax(1))
    for t in tasks:
        val, l2, scaling, on_val, predicted = best[id(t)]
        truth, has_val = t["y"]["test"], len(t["y"]["val"]) > 0
        lo, hi = balanced_interval(predicted, truth)
        t["result"] = {
            "test_accuracy": _accuracy(predicted, truth),
            "balanced_accuracy": _balanced(predicted, truth),
            "balanced_lo": lo,
            "balanced_hi": hi,
            "val_accuracy": _accuracy(on_val, t["y"]["val"]) if has_val else None,
            "val_balanced": val if has_val else None,
            "l2": l2,
            "scaling": scaling,
        }


def _split(params: tuple[torch.Tensor, torch.Tensor], tasks: list[dict]):
    """Each task's (weights, bias) out of the group's stacked ones."""
    sizes = [t["k"] for t in tasks]
    w, b = params
    return list(zip(w.split(sizes, dim=1), b.split(sizes), strict=True))


def _fit(x: torch.Tensor, ys: list[torch.Tensor], l2: float, max_iter: int, start=None):
    """Multinomial logistic regressions of each ``ys[t]`` on ``x``: the sum over tasks of
    mean cross-entropy + l2/2 |W_t|^2 (biases free), minimised by LBFGS; tasks with the same
    number of classes are stacked so one product serves them all. Returns (W, b), the tasks'
    columns side by side."""
    sizes = [int(y.max()) + 1 for y in ys]  # every train label is seen: classes 0..k-1
    if start is None:
        w = torch.zeros(x.shape[1], sum(sizes), dtype=x.dtype)
        b = torch.zeros(sum(sizes), dtype=x.dtype)
    else:
        w, b = (t.detach().clone() for t in start)
    w.requires_grad_(True)
    b.requires_grad_(True)
    offsets = np.cumsum([0, *sizes])
    by_k: dict[int, list[int]] = {}
    for t, k in enumerate(sizes):
        by_k.setdefault(k, []).append(t)
    stacks = []  # (k, column indices (T_k * k,), targets (N, T_k))
    for k, members in by_k.items():
        columns = torch.tensor([c for t in members for c in range(offsets[t], offsets[t] + k)])
        stacks.append((k, columns, torch.stack([ys[t] for t in members], dim=1)))
    optimiser = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, history_size=20,
                                  tolerance_grad=1e-6, tolerance_change=1e-9,
                                  line_search_fn="strong_wolfe")  # fmt: skip

    def closure():
        optimiser.zero_grad()
        logits = x @ w + b
        loss = 0.5 * l2 * (w * w).sum()
        for k, columns, targets in stacks:
            chunk = logits[:, columns].reshape(len(x), targets.shape[1], k)
            ce = torch.nn.functional.cross_entropy(chunk.transpose(1, 2), targets, reduction="none")
            loss = loss + ce.mean(0).sum()  # each task's mean over images
        loss.backward()
        return loss

    optimiser.step(closure)
    return w.detach(), b.detach()


def _accuracy(predicted: torch.Tensor, truth: torch.Tensor) -> float:
    if len(truth) == 0:
        return 0.0
    return float((predicted == truth).double().mean())


def _balanced(predicted: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean recall over the classes present in ``truth`` (0.0 when there is none)."""
    if len(truth) == 0:
        return 0.0
    classes = np.unique(truth.numpy())
    return float(_balanced_rows(predicted.numpy()[None], truth.numpy()[None], classes)[0])


def _balanced_rows(p: np.ndarray, t: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The balanced accuracy of each row of (rows, n) predictions ``p`` against truths ``t``:
    the mean recall over those of ``classes`` the row's truth holds."""
    recalls = []
    for c in classes:
        held = (t == c).sum(1)
        hits = ((p == c) & (t == c)).sum(1)
        recalls.append(np.where(held > 0, hits / np.maximum(held, 1), np.nan))
    return np.nanmean(np.stack(recalls), axis=0)


def balanced_interval(
    predicted: torch.Tensor, truth: torch.Tensor, resamples: int = BOOTSTRAP, seed: int = 0
) -> tuple[float | None, float | None]:
    """A 95% percentile bootstrap interval of the balanced accuracy, resampling the test
    images (seeded; in a resample, the mean recall over the classes it holds)."""
    if len(truth) == 0:
        return None, None
    rows = np.random.default_rng(seed).integers(0, len(truth), (resamples, len(truth)))
    classes = np.unique(truth.numpy())
    balanced = _balanced_rows(predicted.numpy()[rows], truth.numpy()[rows], classes)
    lo, hi = np.percentile(balanced, [2.5, 97.5])
    return float(lo), float(hi)


# --------------------------------------------------------------------------- summaries
def family(attribute: str) -> str:
    """The pooled attribute a task belongs to: ``cell_category/r0c1`` -> ``cell_category``."""
    return attribute.split("/", 1)[0]


def summarise(results: Mapping[str, dict], threshold: float = THRESHOLD) -> dict[str, dict]:
    """family -> its members' mean and minimum balanced test accuracy (the worst member
    named), mean plain test accuracy and majority baseline, the most classes, and
    ``passed``: whether every member's balanced accuracy is at least ``threshold`` (None when
    no member could be scored)."""
    out: dict[str, dict] = {}
    for attribute, r in results.items():
        out.setdefault(family(attribute), {"members": []})["members"].append((attribute, r))
    for entry in out.values():
        scored = [(a, r) for a, r in entry.pop("members") if r["test_accuracy"] is not None]
        entry["tasks"] = len(scored)
        entry["n_classes"] = max((r["n_classes"] for _, r in scored), default=0)
        if not scored:
            entry.update(test_accuracy_mean=None, majority_mean=None, balanced_mean=None,
                         balanced_min=None, worst=None, n_test=0, passed=None,
                         failing=[], surely_failing=[])  # fmt: skip
            continue
        worst, worst_r = min(scored, key=lambda ar: ar[1]["balanced_accuracy"])
        entry.update(
            test_accuracy_mean=float(np.mean([r["test_accuracy"] for _, r in scored])),
            majority_mean=float(np.mean([r["majority_baseline"] for _, r in scored])),
            balanced_mean=float(np.mean([r["balanced_accuracy"] for _, r in scored])),
            balanced_min=worst_r["balanced_accuracy"],
            worst=worst,
            n_test=int(np.mean([r["n_test"] for _, r in scored])),
            passed=worst_r["balanced_accuracy"] >= threshold,
            failing=[a for a, r in scored if r["balanced_accuracy"] < threshold],
            surely_failing=[a for a, r in scored if (r.get("balanced_hi") or 1.0) < threshold],
        )
    return out


def format_table(results: Mapping[str, dict], threshold: float = THRESHOLD) -> str:
    """One line per attribute family: tasks, classes, test images, majority baseline, mean
    plain test accuracy, mean and worst balanced accuracy, PASS/FAIL (the worst member's
    balanced accuracy against ``threshold``); then the failing members of pooled families."""

    head = (f"{'attribute':<16} {'tasks':>5} {'classes':>7} {'n_test':>6} {'majority':>8} "
            f"{'test acc':>8} {'bal.acc':>7} {'min bal':>7} {'its 95% int.':>15}  "
            f"{'>=' + format(threshold, '.0%'):<6}  worst member")  # fmt: skip
    lines = [head, "-" * len(head)]
    summary = summarise(results, threshold)
    for name, s in summary.items():
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[s["passed"]]
        worst = s["worst"] if s["tasks"] > 1 else ""
        lines.append(
            f"{name:<16} {s['tasks']:>5} {s['n_classes']:>7} {s['n_test']:>6} "
            f"{_pct(s['majority_mean']):>8} {_pct(s['test_accuracy_mean']):>8} "
            f"{_pct(s['balanced_mean']):>7} {_pct(s['balanced_min']):>7} "
            f"{_interval(results[s['worst']]) if s['worst'] else '':>15}  {verdict:<6}  {worst}"
        )
    failing = [(a, results[a]) for s in summary.values() if s["tasks"] > 1 for a in s["failing"]]
    if failing:
        lines.append("")
        lines.append(
            f"members below {threshold:.0%} balanced (balanced [95% interval] / plain / majority):"
        )
        for a, r in failing:
            lines.append(
                f"  {a:<28} {_pct(r['balanced_accuracy'])} {_interval(r)} / "
                f"{_pct(r['test_accuracy'])} / {_pct(r['majority_baseline'])}  (n_test {r['n_test']})"
            )
    passed = [s["passed"] for s in summary.values() if s["passed"] is not None]
    surely = [name for name, s in summary.items() if s["surely_failing"]]
    lines.append("")
    lines.append(
        f"{sum(passed)} of {len(passed)} attributes at or above {threshold:.0%} balanced "
        f"accuracy on every member; {len(surely)} with a member whose 95% interval lies wholly "
        f"below it{': ' + ', '.join(surely) if surely else ''} (the others' failures may be the "
        "test split's noise)"
    )
    return "\n".join(lines)


def _pct(v: float | None) -> str:
    return "   n/a" if v is None else f"{100 * v:5.1f}%"


def _interval(r: dict) -> str:
    if r.get("balanced_lo") is None:
        return ""
    return f"[{_pct(r['balanced_lo']).strip()}, {_pct(r['balanced_hi']).strip()}]"


def probe_job(cfg, overrides: Sequence[str] = ()) -> tuple[dict, Path]:
    """Probe the features ``cfg``'s ``data`` config gives (``python -m caplm.probe``): trained
    on train, regularisation picked on val, scored on test; the report is written to
    ``<paths.cache_dir>/probe/<dataset>-<hash of the data config>.json``. Returns the report
    and its path."""
    start = time.perf_counter()
    cache_dir = Path(cfg.paths.cache_dir)
    data_cfg = to_dict(cfg.data)
    dataset = load_caption_dataset(cfg.data, cache_dir)
    if "scenes" not in dataset.info:
        raise ValueError(
            f"data={dataset.name}: the probe needs a generated dataset (shapes, scenes), which "
            "knows what is in each image"
        )
    features = load_features(cfg.data, dataset, cache_dir)
    loaded = time.perf_counter()
    ids = {split: dataset.image_ids(split) for split in dataset.splits}
    labels = attribute_labels(dataset.name, dataset.info["scenes"])
    results = probe(features, ids, labels)
    seconds = time.perf_counter() - start
    report = {
        "dataset": dataset.name,
        "data": data_cfg,
        "overrides": list(overrides),
        "threshold": THRESHOLD,
        "images": {split: len(v) for split, v in ids.items()},
        "feature_size": int(np.shape(features["train"])[1]),
        "seconds": {
            "data_and_features": loaded - start,
            "probe": seconds - (loaded - start),
            "total": seconds,
        },  # fmt: skip
        "families": summarise(results),
        "attributes": results,
    }
    path = cache_dir / "probe" / f"{dataset.name}-{stable_hash(data_cfg)}.json"
    write_json(path, report)
    return report, path


def describe(report: dict, path: Path) -> str:
    """The probe's report as printed: what was probed, the table, the scalings chosen."""
    encoder = report["data"].get("encoder") or {}
    chosen = Counter(r["scaling"] for r in report["attributes"].values() if r["scaling"])
    return "\n".join([
        f"\nlinear probe of {report['dataset']} features ({report['feature_size']} values per "
        f"image; encoder {encoder.get('name')} at {encoder.get('image_size')} px, pool_grid "
        f"{encoder.get('pool_grid')}, taps {encoder.get('taps')}); images {report['images']}; "
        f"{report['seconds']['total']:.0f} s",
        format_table(report["attributes"], report["threshold"]),
        "scaling chosen on val: " + ", ".join(f"{k} {n}" for k, n in sorted(chosen.items())),
        f"probe: {path}",
    ])  # fmt: skip
