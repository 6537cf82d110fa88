"""Captioning images with a finished job's caption generator (what ``python -m caplm.caption
JOB_DIR IMAGE...`` runs: :func:`load_job`, then :meth:`Captioner.caption`).

``JOB_DIR`` is a job's output folder (``paths.output_dir`` of ``python -m caplm.train``): its
``.hydra/config.yaml`` gives the image encoder (``data.encoder``), ``vocab.json`` the
generator's vocabulary and ``checkpoints/`` the trained caption generator (the checkpoint the
job kept, named in ``checkpoints/fit_done.json``; its hyperparameters rebuild the model as the
job built it). Each ``IMAGE`` is an image file or a folder, whose .png/.jpg/.jpeg/.bmp/.gif/
.webp files are captioned in name order. Images are read as the datasets read theirs (RGB
``uint8``) and encoded by the job's encoder with its own preprocessing, so an image of the
job's dataset gets the caption the job wrote for it in ``test_captions.json``. A
``small_cnn`` encoder trained as an autoencoder (``train_epochs`` > 0) is trained again on
the job's training images first (seeded: the same encoder).

Options: ``--beam-width N`` (default: the job's ``generation.beam_width``), ``--n-best K``
(the K best distinct captions per image, each with its log-probability; the beam is widened
to K when narrower), ``--json`` (a list of ``{"image", "captions": [{"caption", "logprob"}]}``
instead of text lines), ``--device cpu|cuda|auto``.

Text output: ``path<TAB>caption`` per image; with ``--n-best K``, K lines per image,
``path<TAB>logprob<TAB>caption``, best first. A problem (no such job, a job that did not
finish training, an unreadable image, an encoder that does not match the checkpoint, a job
trained on precomputed features) is one message on stderr and exit status 2.
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from caplm.data.encoders import ImageEncoder, build_encoder
from caplm.data.readers import load_caption_dataset, read_image
from caplm.data.subword import load_vocabulary
from caplm.data.text import Vocabulary
from caplm.evaluation.evaluate import generate
from caplm.io import UNREADABLE, Mismatch, check_files, read_json, to_dict
from caplm.models.architectures import load_generator
from caplm.models.caption_generator import CaptionGenerator
from caplm.results import CONFIG_FILE as JOB_CONFIG
from caplm.runtime.config import register_resolvers
from caplm.runtime.training import CHECKPOINTS, DONE

log = logging.getLogger("caplm.caption")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
CONFIG_FILE = Path(JOB_CONFIG)
VOCAB_FILE = "vocab.json"
#: Images captioned per call of the generator (as the job's own evaluation).
CAPTION_BATCH = 256


class CaptionError(Exception):
    """A problem with the job folder or the images; its message says what to do."""


@dataclass
class Captioner:
    """A finished job's encoder, vocabulary and caption generator, ready for new images."""

    job_dir: Path
    cfg: DictConfig
    encoder: ImageEncoder
    vocab: Vocabulary
    model: CaptionGenerator
    checkpoint: Path

    def encode(self, paths: Sequence[Path], progress: bool | None = None) -> np.ndarray:
        """Features (N, *encoder.feature_shape) of the image files, ``encoder.batch_size`` at
        a time."""
        size = self.encoder.batch_size
        rows = [np.zeros((0, *self.encoder.feature_shape), dtype=np.float32)]
        hide = len(paths) <= size if progress is None else not progress
        with tqdm(total=len(paths), desc="encoding images", unit="img", disable=hide) as bar:
            for i in range(0, len(paths), size):
                chunk = paths[i : i + size]
                rows.append(self.encoder.encode([_read(p) for p in chunk]))
                bar.update(len(chunk))
        features = np.concatenate(rows)
        bad = np.flatnonzero(~np.isfinite(features).reshape(len(features), -1).all(axis=1))
        if len(bad):
            raise CaptionError(
                f"{paths[bad[0]]}: its features hold NaN or inf ({len(bad)} image(s) in all); "
                "check the image"
            )
        return features

    def captions(
        self,
        features: np.ndarray,
        beam_width: int | None = None,
        n_best: int = 1,
        progress: bool | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Per image, its ``n_best`` best captions (best first) with their log-probabilities;
        ``n_best`` 1 is the job's own evaluation path (``evaluate.generate``)."""
        x = torch.as_tensor(features, dtype=torch.float32)
        out: list[list[tuple[str, float]]] = []
        hide = len(x) <= CAPTION_BATCH if progress is None else not progress
        with tqdm(total=len(x), desc="captioning", unit="img", disable=hide) as bar:
            for i in range(0, len(x), CAPTION_BATCH):
                chunk = x[i : i + CAPTION_BATCH]
                if n_best == 1:
                    words, logprobs = generate(self.model, chunk, self.vocab, beam_width=beam_width)
                    out += [[(" ".join(w), lp)] for w, lp in zip(words, logprobs, strict=True)]
                else:
                    for found in self.model.generate_n_best(chunk, n_best, beam_width=beam_width):
                        out.append([(" ".join(self.vocab.decode(ids)), lp) for ids, lp in found])
                bar.update(len(chunk))
        return out

    def caption(
        self, paths: Sequence[Path], beam_width: int | None = None, n_best: int = 1
    ) -> list[dict]:
        """``[{"image": path, "captions": [{"caption", "logprob"}, ...]}, ...]``."""
        found = self.captions(self.encode(paths), beam_width, n_best)
        return [
            {"image": str(p), "captions": [{"caption": c, "logprob": lp} for c, lp in caps]}
            for p, caps in zip(paths, found, strict=True)
        ]


def load_job(job_dir: str | Path, device: str = "auto") -> Captioner:
    """The encoder, vocabulary and trained generator of a finished job's folder."""
    job_dir = Path(job_dir)
    if not job_dir.is_dir():
        raise CaptionError(
            f"{job_dir}: no such folder; give the output folder of a `python -m caplm.train` "
            "job (its paths.output_dir, with .hydra/config.yaml, vocab.json and checkpoints/)"
        )
    config_file = job_dir / CONFIG_FILE
    if not config_file.is_file():
        jobs = sorted(p.parent.parent for p in job_dir.glob(f"*/{CONFIG_FILE.as_posix()}"))
        hint = (
            f" (this folder holds some: {', '.join(str(p) for p in jobs[:3])}"
            f"{', ...' if len(jobs) > 3 else ''})"
            if jobs
            else ""
        )
        raise CaptionError(
            f"{job_dir}: not a job folder: {config_file} is missing (the job's config, which "
            "`python -m caplm.train` writes when it starts); give the output folder of such a "
            f"job{hint}"
        )
    register_resolvers()
    try:
        cfg = OmegaConf.load(config_file)
        data = to_dict(cfg.data)
    except Exception as err:  # any YAML or interpolation error: the file is at fault
        raise CaptionError(f"{config_file}: cannot read the job's config ({err})") from err
    if data.get("features_file"):
        raise CaptionError(
            f"{job_dir}: the job read precomputed image features (data.features_file="
            f"{data['features_file']} in {config_file}), so it has no image encoder: captioning "
            "new images needs the encoder that made those features. Train a job whose images "
            "are encoded by caplm (data.features_file=null, data/encoder=...) to caption new "
            "images with it"
        )
    if not data.get("encoder"):
        raise CaptionError(f"{config_file}: data.encoder is missing; it names the job's encoder")
    device = _device(device)
    checkpoint = _checkpoint(job_dir, cfg)
    try:
        model = load_generator(checkpoint, map_location=device)
    except UNREADABLE as err:
        raise CaptionError(
            f"{checkpoint}: not a loadable caption generator checkpoint ({err}); "
            f"{_rerun(job_dir, cfg)}"
        ) from err
    model.eval()
    vocab_file = job_dir / VOCAB_FILE
    try:
        vocab = load_vocabulary(vocab_file)  # a word or a subword (lm=hf) vocabulary
    except (*UNREADABLE, FileNotFoundError) as err:
        raise CaptionError(f"{vocab_file}: cannot read the job's vocabulary ({err})") from err
    if len(vocab) != model.hparams.vocab_size:
        raise CaptionError(
            f"{vocab_file} has {len(vocab)} tokens but the checkpoint {checkpoint} has "
            f"vocab_size={model.hparams.vocab_size}; they are not from the same job"
        )
    encoder_cfg = {**data["encoder"], "device": str(device)}
    try:
        encoder = build_encoder(encoder_cfg)
    except (ValueError, ImportError, FileNotFoundError) as err:
        raise CaptionError(f"{config_file}: cannot build the job's encoder ({err})") from err
    hp = model.hparams
    takes = (hp.feature_size,) if hp.get("regions") is None else (hp.regions, hp.feature_size)
    if tuple(encoder.feature_shape) != takes:
        raise CaptionError(
            f"the job's encoder gives features of shape {tuple(encoder.feature_shape)} per "
            f"image but the checkpoint {checkpoint} takes {takes} (feature_size, and regions): "
            f"data.encoder in {config_file} ({json.dumps(data['encoder'])}) is not the encoder "
            "the model was trained on; restore the settings the job was trained with"
        )
    if getattr(encoder, "train_epochs", 0):
        _train_encoder_again(encoder, cfg, config_file)
    return Captioner(job_dir, cfg, encoder, vocab, model, checkpoint)


def find_images(items: Sequence[str | Path]) -> list[Path]:
    """The image files named, folders expanded to their images (by name)."""
    found = []
    for item in map(Path, items):
        if item.is_dir():
            inside = sorted(
                p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not inside:
                raise CaptionError(
                    f"{item}: no images in this folder (looked for {' '.join(IMAGE_SUFFIXES)})"
                )
            found += inside
        elif item.is_file():
            found.append(item)
        else:
            raise CaptionError(f"{item}: no such image file or folder")
    return found


def format_text(results: list[dict], n_best: int = 1) -> str:
    """One ``path<TAB>caption`` line per image; with ``n_best`` > 1, a line per caption,
    ``path<TAB>logprob<TAB>caption``."""
    lines = []
    for r in results:
        for c in r["captions"]:
            if n_best == 1:
                lines.append(f"{r['image']}\t{c['caption']}")
            else:
                lines.append(f"{r['image']}\t{c['logprob']:.4f}\t{c['caption']}")
    return "".join(line + "\n" for line in lines)


# -- helpers -------------------------------------------------------------------------------


def _checkpoint(job_dir: Path, cfg: DictConfig) -> Path:
    """The checkpoint the job kept (``fit_done.json`` names it once training is done)."""
    done = job_dir / CHECKPOINTS / DONE
    try:
        record = read_json(done) if done.is_file() else {}
    except UNREADABLE:
        record = {}
    name = record.get("checkpoint")
    path = job_dir / CHECKPOINTS / name if name else None
    try:
        check_files(job_dir / CHECKPOINTS, record.get("files") or {})
    except Mismatch as err:
        raise CaptionError(
            f"{job_dir}: its trained checkpoint cannot be used: {err}. Train it again: "
            f"{_rerun(job_dir, cfg)}, adding skip_completed=false if it completed (the bad "
            "checkpoint is then moved aside)"
        ) from err
    if path is None or not path.is_file():
        what = f"{path} is missing" if path is not None else f"no {done}"
        raise CaptionError(
            f"{job_dir}: no trained checkpoint ({what}): the job did not finish training; "
            f"{_rerun(job_dir, cfg)}"
        )
    return path


def _rerun(job_dir: Path, cfg: DictConfig) -> str:
    """How to finish the job: the same command and overrides (an interrupted fit resumes)."""
    overrides_file = job_dir / ".hydra" / "overrides.yaml"
    try:
        overrides = [str(o) for o in OmegaConf.load(overrides_file)]
    except Exception:  # no or unreadable overrides file: name it instead
        overrides = None
    if overrides is None:
        return (
            "rerun it with `python -m caplm.train` and the same overrides (see "
            f"{overrides_file}) into the same folder (hydra.run.dir={job_dir}); it resumes "
            "from its last checkpoint"
        )
    words = [*overrides, f"hydra.run.dir={job_dir}"]
    command = " ".join(["python -m caplm.train", *map(shlex.quote, words)])
    return (
        f"rerun it with `{command}` (the same overrides, into the same folder); it resumes "
        "from its last checkpoint"
    )


def _train_encoder_again(encoder: ImageEncoder, cfg: DictConfig, config_file: Path) -> None:
    """A ``small_cnn`` trained as an autoencoder keeps no weights: it is trained again, as
    the job trained it (seeded), on the job's training images."""
    name = encoder.identity()["name"]
    try:
        dataset = load_caption_dataset(cfg.data, Path(cfg.paths.cache_dir))
    except Exception as err:  # the dataset's files are gone or moved: say so
        raise CaptionError(
            f"the job's encoder ({name}, train_epochs={encoder.train_epochs} in {config_file}) "
            f"was trained on the job's training images and must be trained again on them, but "
            f"the dataset cannot be loaded ({err})"
        ) from err
    if dataset.load_image is None:
        raise CaptionError(
            f"the job's encoder ({name}, train_epochs={encoder.train_epochs}) must be trained "
            f"again on the job's training images, but dataset {dataset.name} has none "
            "(data.images_dir is not set)"
        )
    ids = dataset.image_ids("train")
    log.warning("training the job's encoder %s again on its %d training images", name, len(ids))
    encoder.fit([dataset.load_image(i) for i in ids])


def _read(path: Path) -> np.ndarray:
    try:
        return read_image(path)
    except (ValueError, OSError) as err:
        why = err.__cause__ or err  # read_image's message names the file already
        raise CaptionError(
            f"{path}: cannot read this image ({why}); give image files "
            f"({' '.join(IMAGE_SUFFIXES)}), or replace or leave out this one"
        ) from err


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise CaptionError("--device cuda: CUDA is not available here; use --device cpu or auto")
    return torch.device(name)
