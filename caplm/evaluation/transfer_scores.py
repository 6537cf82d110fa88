"""Transferability scores of a language model for a caption dataset, before any generator
is trained on it (``transferability`` config; ``python -m caplm.transferability``).

Inputs, the same for every LM scored on a dataset:

- a fixed sample of training captions, one per image (images in a seeded order until about
  ``positions`` caption positions), drawn ``samples`` times;
- at every position of those captions, the LM's prefix encoder output (teacher-forced: the
  caption's words so far, in the LM's vocabulary) and a PCA of the image's features (one PCA
  of the training images for all LMs, scaled so its components have mean variance 1), and a
  constant 1;
- the target: the next caption word (or ``<eos>``) in the caption vocabulary.

Scores (:mod:`caplm.evaluation.transfer_estimators`): LogME on [prefix, image, 1] (the main one),
LogME on [prefix, 1] (``logme_text``), H-score on [prefix, image], LEEP of the LM's own softmax;
each the mean over the samples, with LogME's spread across them (``logme_sd``); and LogME of
a random, untrained prefix of the same architecture (``logme_random``), the level a score must
beat to say the LM's training taught the prefix anything the captions use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import numpy as np
import torch

from caplm.data.batching import encode_sentences, pad_batch
from caplm.data.text import PAD_ID, Vocabulary
from caplm.data.types import CaptionDataset
from caplm.evaluation.transfer_estimators import hscore, leep, logme
from caplm.models.common import evaluating
from caplm.models.language_model import LanguageModel
from caplm.results import transferability_key

log = logging.getLogger(__name__)

#: The keys of a ``transferability`` config.
TRANSFERABILITY_KEYS = ("enabled", "positions", "samples", "image_components", "seed")
#: The scores each LM gets (results ``transferability/<name>``), the main one first.
SCORES = ("logme", "logme_text", "hscore", "leep")
BATCH = 256  # captions per forward pass


def caption_samples(
    dataset: CaptionDataset, positions: int, samples: int, max_len: int, seed: int
) -> list[tuple[np.ndarray, list[list[str]]]]:
    """``samples`` draws of (training image rows, one caption of each), each until about
    ``positions`` caption positions (words + ``<eos>``). Depends only on the dataset and
    ``seed``, so every LM is scored on the same captions."""
    images = dataset.splits["train"]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(samples):
        rows, captions, total = [], [], 0
        for i in rng.permutation(len(images)):
            if total >= positions:
                break
            refs = images[i].captions
            caption = refs[rng.integers(len(refs))][:max_len]
            rows.append(int(i))
            captions.append(caption)
            total += len(caption) + 1
        out.append((np.array(rows), captions))
    return out


class ImagePCA:
    """The top principal components of the training images' features, scaled so that the
    kept components have mean variance 1 (the prefix outputs are of order 1 too)."""

    def __init__(self, train_features: np.ndarray, components: int):
        x = _flat(train_features)
        self.mean = x.mean(0)
        x = x - self.mean
        k = max(0, min(components, len(x) - 1, x.shape[1]))
        if len(x) < x.shape[1]:  # fewer images than features (a spatial grid): O(N^2 D)
            _, sv, vt = np.linalg.svd(x, full_matrices=False)
            self.basis, eigenvalues = vt[:k].T, sv[:k] ** 2 / len(x)
        else:  # the covariance's eigenvectors (D x D), cheaper than an SVD of a tall matrix
            eigenvalues, vectors = np.linalg.eigh(x.T @ x / len(x))
            order = np.argsort(eigenvalues)[::-1][:k]
            self.basis, eigenvalues = vectors[:, order], eigenvalues[order]
        variance = eigenvalues.mean() if k else 1.0
        self.scale = 1.0 / np.sqrt(max(variance, 1e-12))

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return (_flat(features) - self.mean) @ self.basis * self.scale


def _flat(features) -> np.ndarray:
    """Features (N, F), or region features (N, R, D) as (N, R * D), in float64."""
    x = np.asarray(features, dtype=np.float64)
    return x.reshape(len(x), -1)


@torch.no_grad()
def prefix_positions(
    lm: LanguageModel,
    lm_vocab: Vocabulary,
    caption_vocab: Vocabulary,
    captions,
    with_probs: bool = True,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """At every position of ``captions``: the prefix output (P, H), the next word's caption
    vocabulary id (P,) and, in blocks, the LM's softmax over its vocabulary (for LEEP; none
    without ``with_probs``)."""
    hidden, labels, probs = [], [], []
    with evaluating(lm):
        for lo in range(0, len(captions), BATCH):
            chunk = captions[lo : lo + BATCH]
            lm_batch = pad_batch(encode_sentences(chunk, lm_vocab, max_len=10**6))
            targets = pad_batch(encode_sentences(chunk, caption_vocab, max_len=10**6))["targets"]
            h, _ = lm.prefix(lm_batch["inputs"].to(lm.device))
            real = (targets != PAD_ID).to(h.device)
            h = h[real]
            hidden.append(h.double().cpu().numpy())
            labels.append(targets.to(h.device)[real].cpu().numpy())
            if with_probs:
                probs.append(lm.output(h).softmax(-1).cpu().numpy())  # float64 in leep()
    return np.concatenate(hidden), np.concatenate(labels), probs


def random_prefix_lm(lm: LanguageModel, vocab_size: int, seed: int) -> LanguageModel:
    """An untrained LM with ``lm``'s architecture (its prefix is what ``random_frozen`` uses)."""
    hparams = {k: v for k, v in dict(lm.hparams).items() if k != "vocab_size"}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LanguageModel(vocab_size=vocab_size, **hparams)


def score_features(
    lm: LanguageModel,
    lm_vocab: Vocabulary,
    caption_vocab: Vocabulary,
    samples,
    images: np.ndarray,
    names=SCORES,
) -> dict[str, list[float]]:
    """The scores ``names`` on each caption sample; ``images`` are the PCA'd training image
    features."""
    scores: dict[str, list[float]] = {name: [] for name in (*names, "positions")}
    for rows, captions in samples:
        hidden, labels, probs = prefix_positions(
            lm, lm_vocab, caption_vocab, captions, with_probs="leep" in names
        )
        lengths = np.array([len(c) + 1 for c in captions])
        image = images[np.repeat(rows, lengths)]
        for name in names:
            scores[name].append(_score(name, hidden, image, labels, probs))
        scores["positions"].append(len(labels))
    return scores


def _score(name: str, hidden, image, labels, probs) -> float:
    one = np.ones((len(labels), 1))
    if name == "logme":
        return logme(np.hstack([hidden, image, one]), labels)
    if name == "logme_text":
        return logme(np.hstack([hidden, one]), labels)
    if name == "hscore":
        return hscore(np.hstack([hidden, image]), labels)
    return leep(probs, labels)  # a list of blocks: read twice


def transferability_scores(
    lm: LanguageModel,
    lm_vocab: Vocabulary,
    dataset: CaptionDataset,
    features: Mapping[str, np.ndarray],
    caption_vocab: Vocabulary,
    cfg,
    max_len: int,
) -> dict:
    """The LM's ``transferability/*`` results for this caption dataset (see the module doc).

    Raises ValueError when the LM cannot be scored (its vocabulary shares no word with the
    captions) or a score comes out NaN; :func:`scores_or_reason` turns that into a result."""
    start = time.perf_counter()
    if not caption_vocab.intersect(lm_vocab).words:
        raise ValueError(
            f"the LM's vocabulary ({len(lm_vocab.words)} words, e.g. "
            f"{', '.join(lm_vocab.words[:5])}) shares no word with the {dataset.name} "
            "training captions: its prefix would see only <unk>, so no score can rank it"
        )
    samples = caption_samples(dataset, cfg["positions"], cfg["samples"], max_len, cfg["seed"])
    images = ImagePCA(features["train"], cfg["image_components"])(features["train"])
    scores = score_features(lm, lm_vocab, caption_vocab, samples, images)
    random_lm = random_prefix_lm(lm, len(caption_vocab), cfg["seed"]).to(lm.device)
    random_scores = score_features(
        random_lm, caption_vocab, caption_vocab, samples, images, names=("logme",)
    )
    results = {transferability_key(name): float(np.mean(scores[name])) for name in SCORES}
    spread = float(np.std(scores["logme"], ddof=1)) if len(samples) > 1 else None
    results[transferability_key("logme_sd")] = spread
    results[transferability_key("logme_random")] = float(np.mean(random_scores["logme"]))
    results[transferability_key("positions")] = int(np.mean(scores["positions"]))
    results[transferability_key("samples")] = len(samples)
    results[transferability_key("time_s")] = round(time.perf_counter() - start, 2)
    bad = [k for k, v in results.items() if isinstance(v, float) and not np.isfinite(v)]
    if bad:
        raise ValueError(f"{', '.join(bad)} came out NaN or inf; the features or labels are "
                         "degenerate (e.g. every caption position has the same next word)")  # fmt: skip
    log.info(
        "transferability: LogME %.4f (sd %s; random prefix %.4f), H-score %.2f, LEEP %.3f "
        "over %d positions in %.1f s",
        results[transferability_key("logme")],
        results[transferability_key("logme_sd")],
        results[transferability_key("logme_random")],
        results[transferability_key("hscore")],
        results[transferability_key("leep")],
        results[transferability_key("positions")],
        results[transferability_key("time_s")],
    )
    return results


def scores_or_reason(*args, **kwargs) -> dict:
    """:func:`transferability_scores`, or ``transferability/skipped`` with the reason why the LM
    could not be scored (a warning, not a crash: the job or the other LMs go on)."""
    try:
        return transferability_scores(*args, **kwargs)
    except ValueError as err:
        log.warning("transferability scores skipped: %s", err)
        return {transferability_key("skipped"): str(err)}
