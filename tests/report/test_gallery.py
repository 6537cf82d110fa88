"""The report's gallery: test images with each transfer mode's caption side by side."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf
from PIL import Image

from caplm.data.readers import load_caption_dataset
from caplm.evaluation.grounding import CHECKERS, caption_truth
from caplm.evaluation.pictures import THUMBNAIL, save_pictures
from caplm.report import main
from caplm.results import ALL_TRUE_MEANS, grounding_key
from tests.data.test_readers import _karpathy_images, _png, _write_karpathy
from tests.report.test_report import fake_results, write_sweep

# (corpus, size exponent, transfer): the LM of captions e=0 is shown (it has both modes)
JOBS = [
    ("none", None, "none"),
    ("none", None, "random_frozen"),
    ("captions", 0.0, "init"),
    ("captions", 0.0, "frozen"),
    ("sotu", 0.0, "init"),
]
WRONG = "a purple hexagon | above a blue moon"  # true of no shapes picture


@pytest.fixture
def make_gallery_sweep(make_cfg, tmp_path):
    return lambda data="shapes": write_gallery_sweep(make_cfg([f"data={data}"]), tmp_path)


@pytest.fixture
def gallery_sweep(make_gallery_sweep):
    return make_gallery_sweep()


def write_gallery_sweep(cfg, tmp_path):
    """A sweep of five cells x seeds 1, 2 whose jobs have a real (tiny) generated dataset's
    config and test captions (the reference for init, a false caption for the others), marked
    and with pictures as a job marks and saves them."""
    dataset = load_caption_dataset(cfg.data, Path(cfg.paths.cache_dir))
    test = dataset.splits["test"]
    jobs = []
    for corpus, e, transfer in JOBS:
        for seed in (1, 2):
            results = fake_results(corpus, transfer, e, seed) | {"job/data": dataset.name}
            results[grounding_key(dataset.name, "all_true_frac")] = 0.5
            jobs.append(([f"transfer={transfer}", f"corpus={corpus}", f"seed={seed}"], results))
    root = tmp_path / "multirun" / "gallery"
    write_sweep(root, "gallery", {}, ["transfer=none"], jobs)
    for num, (_, results) in enumerate(jobs):
        job = root / str(num)
        OmegaConf.save(
            OmegaConf.create({"data": cfg.data, "paths": cfg.paths}), job / ".hydra" / "config.yaml"
        )
        right = results["job/transfer"] == "init"
        captions = [
            {
                "image_id": img.image_id,
                "caption": " ".join(img.captions[0]) if right else WRONG,
                "logprob": -3.0,
                "references": img.raw,
            }
            for img in test
        ]
        said = {c["image_id"]: c["caption"].split() for c in captions}
        truth = caption_truth(dataset.name, said, dataset.info["scenes"])
        for c in captions:
            c["all_true"] = truth[c["image_id"]]
        assert save_pictures(captions, dataset.load_image, job, 4) == 4
        (job / "test_captions.json").write_text(json.dumps(captions))
    return root, dataset


def sections(report: str) -> list[str]:
    """The gallery's sections, one per dataset (and data config)."""
    gallery = report.split("## Captions side by side")[1].split("\n## ")[0]
    return gallery.split("\n### ")[1:]


def table_rows(section: str) -> list[list[str]]:
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in row.strip("|").split(" | ")] for row in rows]


@pytest.mark.parametrize("data", ["shapes", "scenes"])
def test_gallery_shows_each_mode_of_one_seed_and_one_lm_with_pictures(make_gallery_sweep, data):
    root, dataset = make_gallery_sweep(data)
    assert main([str(root), "--gallery", "3"]) == 0
    report = (root / "report" / "report.md").read_text()
    (section,) = sections(report)
    header, *rows = table_rows(section)
    assert header[:2] == ["image", "references"]
    # one column per mode (study order) with the LM that ran most modes, then the other LM's
    # job (room for it); seed 1's CIDEr; LM jobs name their LM as two LMs are shown
    cider = {(c, t): fake_results(c, t, e, 1)["capgen/test_CIDEr"] for c, e, t in JOBS}
    shown = [("none", "none"), ("captions", "init"), ("captions", "frozen")]
    shown += [("none", "random_frozen"), ("sotu", "init")]
    assert header[2:] == [
        f"{t}{f' ({c}, e=0)' if c != 'none' else ''} · CIDEr {cider[c, t]:.3f}" for c, t in shown
    ]
    assert section.startswith(f"{data}, seed 1")
    assert f"✓: the caption {ALL_TRUE_MEANS[data]}; ✗: not so." in section
    assert (
        "transferred LM: corpus captions, size exponent 0, LM epochs 100, and other LMs' jobs "
        "while there is room (named in their columns) (the sweep has 2 LMs;" in section
    )
    test = dataset.splits["test"]
    assert len(rows) == 3
    for img, row in zip(test[:3], rows, strict=True):
        picture = f"gallery/{data}-"
        assert row[0].startswith(f"![{img.image_id}]({picture}") and row[0].endswith(img.image_id)
        assert row[1] == "<br>".join(img.raw)
        assert row[3] == "✓ " + " ".join(img.captions[0])  # init wrote the reference: true
        escaped = WRONG.replace("|", "\\|")
        assert row[2] == row[4] == row[5] == "✗ " + escaped
        assert row[6] == row[3]  # sotu's init wrote the reference too
        # the picture is the dataset's, enlarged by whole pixels to THUMBNAIL
        name = row[0].split("(")[1].split(")")[0]
        thumb = np.asarray(Image.open(root / "report" / name).convert("RGB"))
        original = dataset.load_image(img.image_id)
        assert thumb.shape == (THUMBNAIL, THUMBNAIL, 3)
        step, rest = divmod(THUMBNAIL, original.shape[0])
        if data == "shapes":  # 32 px: enlarged by whole pixels
            assert step > 1 and rest == 0
            np.testing.assert_array_equal(thumb[::step, ::step], original)


def test_gallery_names_what_it_left_out_and_finds_pictures_elsewhere(gallery_sweep):
    root, dataset = gallery_sweep
    (root / "2" / "test_captions.json").unlink()  # random_frozen, seed 1
    (root / "0" / ".hydra" / "config.yaml").unlink()  # none, seed 1: its data are unknown
    shutil.rmtree(root / "4" / "test_pictures")  # init, seed 1: frozen's pictures stand in
    assert main([str(root)]) == 0
    report = (root / "report" / "report.md").read_text()
    assert "`2` left out: no test_captions.json" in report
    # job 0's data config is unknown, so it is a section of its own (its own pictures)
    found = sections(report)
    assert len(found) == 2
    (alone,) = [s for s in found if "| none" in s]
    (main_section,) = [s for s in found if s is not alone]
    header, *rows = table_rows(main_section)
    labels = [h.split(" ·")[0] for h in header[2:]]
    assert labels == ["init (captions, e=0)", "frozen (captions, e=0)", "init (sotu, e=0)"]
    assert len(rows) == 4  # the default: 4 images
    for img, row in zip(dataset.splits["test"], rows, strict=False):
        name = row[0].split("(")[1].split(")")[0]
        assert (root / "report" / name).read_bytes() == (
            root / "6" / "test_pictures" / f"{img.image_id}.png"
        ).read_bytes()
    assert "![" in alone and "no pictures" not in report


def test_gallery_zero_makes_none(gallery_sweep):
    root, _ = gallery_sweep
    assert main([str(root), "--gallery", "0"]) == 0
    report = (root / "report" / "report.md").read_text()
    assert "- not made (`--gallery 0`)" in report
    assert not (root / "report" / "gallery").exists()


@pytest.mark.parametrize("with_images", [True, False])
def test_gallery_of_real_data_reads_its_images_folder(tmp_path, with_images):
    images_dir = tmp_path / "images"
    for i, name in enumerate("abcdef"):
        _png(images_dir / f"{name}.jpg", (40 * i, 10, 200))  # 12 x 10 px
    annotations = _write_karpathy(tmp_path, _karpathy_images())
    data = {"name": "flickr8k", "format": "karpathy_json", "annotations": str(annotations)}
    data["normaliser"] = "study"
    data["images_dir"] = str(images_dir) if with_images else None
    jobs = [
        ([f"transfer={t}"], fake_results(c, t, e, 1) | {"job/data": "flickr8k"})
        for c, e, t in (("none", None, "none"), ("captions", 0.0, "frozen"))
    ]
    root = tmp_path / "real"
    write_sweep(root, "real", {}, ["transfer=none,frozen"], jobs)
    for num in range(2):
        config = {"data": data, "paths": {"cache_dir": str(tmp_path / "cache")}}
        (root / str(num) / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
        captions = [  # the test split: d.jpg and f.jpg
            {"image_id": i, "caption": f"job {num} | {i}", "logprob": -1.0, "references": [r]}
            for i, r in (("d.jpg", "A man's hat."), ("f.jpg", "a blue sky"))
        ]
        dataset = load_caption_dataset(config["data"], tmp_path / "cache")
        saved = save_pictures(captions, dataset.load_image, root / str(num), 4)
        assert saved == (2 if with_images else 0)
        (root / str(num) / "test_captions.json").write_text(json.dumps(captions))
    assert main([str(root)]) == 0
    (section,) = sections((root / "report" / "report.md").read_text())
    header, *rows = table_rows(section)
    assert [r[1:] for r in rows] == [
        ["A man's hat.", "job 0 \\| d.jpg", "job 1 \\| d.jpg"],  # no truth marks: real data
        ["a blue sky", "job 0 \\| f.jpg", "job 1 \\| f.jpg"],
    ]
    if with_images:
        assert rows[0][0] == "![d.jpg](gallery/flickr8k-" + rows[0][0].split("flickr8k-")[1]
        name = rows[1][0].split("(")[1].split(")")[0]
        picture = Image.open(root / "report" / name)
        assert picture.size == (THUMBNAIL, round(THUMBNAIL * 10 / 12))  # 12 x 10, enlarged
        assert picture.convert("RGB").getpixel((5, 5)) == (200, 10, 200)  # f.jpg's colour
    else:
        assert [r[0] for r in rows] == ["d.jpg", "f.jpg"]
        assert "no pictures: the jobs saved none" in section and "`data.images_dir`" in section


def test_every_grounding_checker_has_its_legend():
    assert set(ALL_TRUE_MEANS) == set(CHECKERS)
