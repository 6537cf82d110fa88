"""``python -m caplm.caption``: a finished tiny job captions image files as it captioned its
own test images; n-best lists; and every error is one message with exit status 2.

The n-best beam search it uses (``beam_search_n_best``, ``CaptionGenerator.generate_n_best``)
is checked here too, against ``beam_search`` and against brute force."""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf, open_dict
from PIL import Image

from caplm.caption import main
from caplm.data.features import load_features
from caplm.data.readers import load_caption_dataset
from caplm.data.text import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from caplm.models.beam_search import SearchRules, beam_search, beam_search_n_best
from caplm.models.caption_generator import CaptionGenerator
from caplm.runtime.captioner import CONFIG_FILE, Captioner, find_images, load_job
from caplm.train import run
from tests.conftest import compose_config
from tests.models.test_beam_search import RNNModel, assert_obeys, model_logprob, random_model

# -- the n-best search ------------------------------------------------------------------------

RULE_SETS = (
    dict(min_len=0, max_len=8),
    dict(min_len=2, max_len=6, forbid=(UNK_ID,), no_repeat=True),
    dict(min_len=1, max_len=7, no_repeat_ngram=2),
)


@pytest.mark.parametrize("seed", range(12))
def test_n_best_lists_start_with_beam_searchs_caption_and_are_distinct_and_sorted(seed):
    images = [0, 1, 2]
    model = random_model(seed, len(images))
    for rules in RULE_SETS:
        for k, n in ((1, 1), (3, 1), (3, 3), (5, 4)):
            state = model.init_state(images)
            best, best_lp = beam_search(model.step, state, len(images), SearchRules(k, **rules))
            lists = beam_search_n_best(model.step, state, len(images), SearchRules(k, **rules), n)
            assert len(lists) == len(images)
            for i, found in enumerate(lists):
                assert found[0] == (best[i], best_lp[i].item())  # exactly beam_search's
                assert len(found) == n  # these models always finish enough captions
                captions = [tuple(c) for c, _ in found]
                assert len(set(captions)) == len(captions)
                logprobs = [lp for _, lp in found]
                assert logprobs == sorted(logprobs, reverse=True)
                for caption, lp in found:
                    assert lp == pytest.approx(model_logprob(model, i, caption), abs=1e-9)
                    strict = {"forbid": (), "no_repeat": False, **rules}
                    strict.pop("no_repeat_ngram", None)
                    assert_obeys(caption, **strict)


def _brute_force(model, image: int, n: int, min_len: int, max_len: int, V: int, no_repeat: bool):
    """The n most probable captions of every allowed word sequence (forbid: <unk>)."""
    words = [w for w in range(V) if w not in (PAD_ID, BOS_ID, EOS_ID, UNK_ID)]
    scored = []
    for length in range(min_len, max_len + 1):
        for caption in itertools.product(words, repeat=length):
            if no_repeat and any(a == b for a, b in itertools.pairwise(caption)):
                continue
            scored.append((model_logprob(model, image, list(caption)), list(caption)))
    scored.sort(key=lambda x: -x[0])
    return [(c, lp) for lp, c in scored[:n]]


@pytest.mark.parametrize("no_repeat", [False, True])
def test_a_beam_wide_enough_to_keep_every_prefix_gives_the_true_n_best(no_repeat):
    g = torch.Generator().manual_seed(3)
    V, images, n = 8, [0, 1], 5
    model = RNNModel(g, len(images), V)
    rules = dict(min_len=1, max_len=3, forbid=(UNK_ID,), no_repeat=no_repeat)
    lists = beam_search_n_best(
        model.step, model.init_state(images), len(images), SearchRules(300, **rules), n
    )
    for i in images:
        truth = _brute_force(model, i, n, 1, 3, V, no_repeat)
        assert [c for c, _ in lists[i]] == [c for c, _ in truth]
        assert [lp for _, lp in lists[i]] == pytest.approx([lp for _, lp in truth], abs=1e-9)


def test_n_best_needs_a_beam_at_least_as_wide():
    model = random_model(0, 2)
    state = model.init_state([0, 1])
    for bad in (0, 4, True):
        with pytest.raises(ValueError, match="n_best must be an integer from 1 to beam_width"):
            beam_search_n_best(model.step, state, 2, SearchRules(3, max_len=5), bad)


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_generator_n_best_starts_with_its_generate_caption(rnn_type):
    torch.manual_seed(0)
    gen = CaptionGenerator(
        25, 12, embed_size=8, rnn_size=8, post_image_size=8, rnn_type=rnn_type, min_len=2
    )
    features = torch.randn(6, 12)
    for width, n in ((1, 1), (4, 3)):
        ids, logprobs = gen.generate(features, beam_width=width, no_repeat_ngram=2)
        lists = gen.generate_n_best(features, n, beam_width=width, no_repeat_ngram=2)
        assert [found[0] for found in lists] == list(zip(ids, logprobs.tolist(), strict=True))
        assert all(len(found) == n for found in lists)
    assert gen.generate_n_best(features[:0], 2) == []
    with pytest.raises(TypeError, match="unknown generation rule"):
        gen.generate_n_best(features, 2, beam_size=4)


# -- a finished tiny job --------------------------------------------------------------------


def _finished_job(tmp: Path, overrides: list[str]) -> tuple[Path, Path]:
    """A tiny job run to completion, with the .hydra/ files ``python -m caplm.train``
    writes (run(cfg) does not), and its test images saved as PNG files."""
    cfg = compose_config(tmp, overrides)
    run(cfg)
    job = Path(cfg.paths.output_dir)
    saved = cfg.copy()
    with open_dict(saved):
        del saved["hydra"]  # Hydra's own node is not part of a job's config.yaml
    (job / ".hydra").mkdir()
    OmegaConf.save(saved, job / CONFIG_FILE)
    OmegaConf.save(OmegaConf.create(overrides), job / ".hydra" / "overrides.yaml")
    dataset = load_caption_dataset(cfg.data, cfg.paths.cache_dir)
    images = tmp / "images"
    images.mkdir()
    for image_id in dataset.image_ids("test"):
        Image.fromarray(dataset.load_image(image_id)).save(images / f"{image_id}.png")
    return job, images


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    return _finished_job(tmp_path_factory.mktemp("caption"), ["transfer=none"])


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _job_captions(job_dir: Path) -> dict[str, dict]:
    return {c["image_id"]: c for c in json.loads((job_dir / "test_captions.json").read_text())}


def _assert_same_as_the_job(results: list[dict], job_dir: Path, images: Path) -> None:
    expected = _job_captions(job_dir)
    assert [r["image"] for r in results] == [str(p) for p in sorted(images.glob("*.png"))]
    assert len(results) == len(expected) == 8
    for r in results:
        (found,) = r["captions"]
        job_caption = expected[Path(r["image"]).stem]
        assert found["caption"] == job_caption["caption"]
        assert found["logprob"] == pytest.approx(job_caption["logprob"], abs=1e-4)


def test_the_jobs_test_images_get_the_jobs_test_captions(job, capsys):
    job_dir, images = job
    code, out, err = _run(capsys, job_dir, images, "--json", "--device", "cpu")
    assert code == 0, err
    _assert_same_as_the_job(json.loads(out), job_dir, images)
    # the same encoder path: the features of the PNG files are the job's own test features
    captioner = load_job(job_dir, "cpu")
    assert isinstance(captioner, Captioner)
    cfg = captioner.cfg
    dataset = load_caption_dataset(cfg.data, cfg.paths.cache_dir)
    job_features = load_features(cfg.data, dataset, cfg.paths.cache_dir)["test"]  # its cache
    paths = [images / f"{i}.png" for i in dataset.image_ids("test")]
    np.testing.assert_allclose(captioner.encode(paths), job_features, rtol=1e-5, atol=1e-6)


def test_text_output_is_one_line_per_image(job, capsys):
    job_dir, images = job
    files = sorted(images.glob("*.png"))[:3]
    code, out, _ = _run(capsys, job_dir, *files, "--device", "cpu")
    assert code == 0
    expected = _job_captions(job_dir)
    lines = out.splitlines()
    assert [line.split("\t") for line in lines] == [
        [str(f), expected[f.stem]["caption"]] for f in files
    ]


def test_n_best_gives_distinct_sorted_captions_led_by_the_plain_best(job, capsys):
    job_dir, images = job
    code, out, _ = _run(capsys, job_dir, images, "--json", "--beam-width", "4", "--device", "cpu")
    assert code == 0
    plain = json.loads(out)
    code, out, err = _run(capsys, job_dir, images, "--json", "--beam-width", "4", "--n-best", "3")
    assert code == 0 and err == ""
    n_best = json.loads(out)
    assert [r["image"] for r in n_best] == [r["image"] for r in plain]
    for best, listed in zip(plain, n_best, strict=True):
        captions = [c["caption"] for c in listed["captions"]]
        logprobs = [c["logprob"] for c in listed["captions"]]
        assert len(captions) == 3 == len(set(captions))
        assert logprobs == sorted(logprobs, reverse=True)
        assert listed["captions"][0] == best["captions"][0]
    # as text: K lines per image, path, log-probability, caption
    code, out, _ = _run(capsys, job_dir, images, "--beam-width", "4", "--n-best", "3")
    rows = [line.split("\t") for line in out.splitlines()]
    assert len(rows) == 3 * len(plain)
    for i, (path, logprob, caption) in enumerate(rows):
        listed = n_best[i // 3]
        assert path == listed["image"]
        assert caption == listed["captions"][i % 3]["caption"]
        assert float(logprob) == pytest.approx(listed["captions"][i % 3]["logprob"], abs=1e-4)


def test_an_n_best_longer_than_the_beam_widens_it(job, capsys):
    job_dir, images = job
    first = sorted(images.glob("*.png"))[0]
    code, out, err = _run(capsys, job_dir, first, "--json", "--n-best", "6")  # the job's beam: 4
    assert code == 0
    assert "--n-best 6: the beam is widened from 4 to 6" in err
    (result,) = json.loads(out)
    assert len({c["caption"] for c in result["captions"]}) == 6


def test_folders_give_their_images_in_name_order(tmp_path):
    (tmp_path / "b.PNG").write_bytes(b"")
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    single = tmp_path / "sub" / "c.webp"
    single.write_bytes(b"")
    assert find_images([tmp_path, single]) == [tmp_path / "a.jpg", tmp_path / "b.PNG", single]


# -- errors: one message naming the file and what to do, exit status 2 -----------------------


def _copy_job(job_dir: Path, to: Path, *, checkpoints: bool = True) -> Path:
    shutil.copytree(job_dir / ".hydra", to / ".hydra")
    shutil.copy(job_dir / "vocab.json", to / "vocab.json")
    if checkpoints:
        shutil.copytree(job_dir / "checkpoints", to / "checkpoints")
    return to


def _edit_config(job_dir: Path, **changes) -> None:
    cfg = OmegaConf.load(job_dir / CONFIG_FILE)
    for key, value in changes.items():
        OmegaConf.update(cfg, key, value)
    OmegaConf.save(cfg, job_dir / CONFIG_FILE)


def _image(job) -> Path:
    return sorted(job[1].glob("*.png"))[0]


def test_a_missing_job_folder(job, capsys, tmp_path):
    code, out, err = _run(capsys, tmp_path / "nope", _image(job))
    assert code == 2 and out == ""
    assert f"{tmp_path / 'nope'}: no such folder" in err
    assert "output folder of a `python -m caplm.train` job" in err


def test_a_folder_that_is_not_a_job(job, capsys, tmp_path):
    code, _, err = _run(capsys, tmp_path, _image(job))
    assert code == 2
    assert f"{tmp_path}: not a job folder: {tmp_path / '.hydra' / 'config.yaml'} is missing" in err
    _copy_job(job[0], tmp_path / "one_job")  # a sweep's folder: name its jobs
    code, _, err = _run(capsys, tmp_path, _image(job))
    assert code == 2 and f"such a job (this folder holds some: {tmp_path / 'one_job'})" in err


def test_a_job_that_did_not_finish_training(job, capsys, tmp_path):
    unfinished = _copy_job(job[0], tmp_path / "a job", checkpoints=False)  # to be quoted
    code, _, err = _run(capsys, unfinished, _image(job))
    assert code == 2
    assert "no trained checkpoint" in err and "the job did not finish training" in err
    rerun = f"`python -m caplm.train transfer=none 'hydra.run.dir={unfinished}'`"
    assert f"rerun it with {rerun} (the same overrides, into the same folder)" in err
    (unfinished / "checkpoints").mkdir()
    (unfinished / "checkpoints" / "last.ckpt").write_bytes(b"interrupted")  # no fit_done.json
    code, _, err = _run(capsys, unfinished, _image(job))
    assert code == 2 and "the job did not finish training" in err


def test_an_unreadable_image(job, capsys, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png at all")
    code, out, err = _run(capsys, job[0], _image(job), bad)
    assert code == 2 and out == ""
    assert f"{bad}: cannot read this image" in err
    code, _, err = _run(capsys, job[0], tmp_path / "missing.jpg")
    assert code == 2 and f"{tmp_path / 'missing.jpg'}: no such image file or folder" in err


def test_an_encoder_that_does_not_match_the_checkpoint(job, capsys, tmp_path):
    changed = _copy_job(job[0], tmp_path / "job")
    _edit_config(changed, **{"data.encoder.pool_grid": 1})  # 64 values per image, not 64 * 2 * 2
    code, _, err = _run(capsys, changed, _image(job))
    assert code == 2
    assert "the job's encoder gives features of shape (64,) per image" in err
    assert "takes (256,) (feature_size, and regions)" in err
    assert f"data.encoder in {changed / CONFIG_FILE}" in err and '"pool_grid": 1' in err


def test_a_job_trained_on_precomputed_features(job, capsys, tmp_path):
    changed = _copy_job(job[0], tmp_path / "job")
    _edit_config(changed, **{"data.features_file": "/data/feats.npz"})
    code, _, err = _run(capsys, changed, _image(job))
    assert code == 2
    assert "precomputed image features (data.features_file=/data/feats.npz" in err
    assert "captioning new images needs the encoder that made those features" in err


def test_the_command_exits_2_with_a_message_and_no_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "caplm.caption", str(tmp_path / "nope"), "x.png"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (
        f"caplm.caption: error: {tmp_path / 'nope'}: no such folder; give the output folder "
        "of a `python -m caplm.train` job (its paths.output_dir, with .hydra/config.yaml, "
        "vocab.json and checkpoints/)"
    )


@pytest.mark.slow
def test_a_trained_encoder_is_trained_again_as_the_job_trained_it(tmp_path, capsys, caplog):
    job_dir, images = _finished_job(tmp_path, ["transfer=none", "data.encoder.train_epochs=2"])
    caplog.set_level(logging.INFO, logger="caplm.caption")
    code, out, err = _run(capsys, job_dir, images, "--json", "--device", "cpu")
    assert code == 0, err
    assert "training the job's encoder small_cnn again on its 24 training images" in caplog.text
    _assert_same_as_the_job(json.loads(out), job_dir, images)


def test_a_job_with_tapped_features_captions_new_images_as_its_own(tmp_path, capsys):
    taps = "data.encoder.taps=[block0:max:2,head:avg:1]"  # 16 * 2 * 2 + 64 values
    job_dir, images = _finished_job(tmp_path, ["transfer=none", taps])
    captioner = load_job(job_dir, "cpu")
    assert captioner.encoder.feature_size == 128
    code, out, err = _run(capsys, job_dir, images, "--json", "--device", "cpu")
    assert code == 0, err
    _assert_same_as_the_job(json.loads(out), job_dir, images)
    cfg = captioner.cfg
    dataset = load_caption_dataset(cfg.data, cfg.paths.cache_dir)
    job_features = load_features(cfg.data, dataset, cfg.paths.cache_dir)["test"]
    paths = [images / f"{i}.png" for i in dataset.image_ids("test")]
    np.testing.assert_allclose(captioner.encode(paths), job_features, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "architecture",
    ["merge_attention", pytest.param("par_inject", marks=pytest.mark.slow),
     pytest.param("init_inject", marks=pytest.mark.slow)],
)  # fmt: skip
def test_each_architecture_captions_new_images_as_its_own_job(tmp_path, capsys, architecture):
    job_dir, images = _finished_job(tmp_path, ["transfer=none", f"model={architecture}"])
    captioner = load_job(job_dir, "cpu")
    assert captioner.model.hparams.architecture == architecture
    if architecture == "merge_attention":  # region features: 3 x 3 cells of the head map
        assert captioner.encoder.feature_shape == (9, 64)
    code, out, err = _run(capsys, job_dir, images, "--json", "--device", "cpu")
    assert code == 0, err
    _assert_same_as_the_job(json.loads(out), job_dir, images)
