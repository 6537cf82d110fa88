"""A job's evaluation: the trained models on the test split -> results and captions.

The measures themselves live in :mod:`caplm.evaluation`; this module runs the models to get
what they need (generated captions, token log-probabilities, caption-image scores) and names
the results with the keys of :mod:`caplm.results`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from caplm.data.batching import encode_sentences, pad_batch
from caplm.data.datamodules import CaptionDataModule
from caplm.data.subword import NOT_APPLICABLE_CORRECTED, is_subword, per_word_perplexity_stats
from caplm.data.text import PAD_ID, Vocabulary
from caplm.evaluation.bleu import CorpusBLEU4
from caplm.evaluation.coco import caption_metrics
from caplm.evaluation.diversity import diversity
from caplm.evaluation.grounding import caption_truth, dataset_grounding
from caplm.evaluation.perplexity import coverage, oov_stats, perplexity_stats
from caplm.evaluation.retrieval import retrieval_metrics, retrieval_ranks, score_matrix
from caplm.models import robust
from caplm.results import (
    SPICE_STATUS,
    capgen_key,
    coverage_key,
    div_key,
    grounding_key,
    lm_sample_div_key,
    perturbed_key,
    perturbed_split,
    pplx_keys,
    ret_key,
)
from caplm.results import (
    key as result_key,
)

log = logging.getLogger(__name__)

#: The keys of an ``eval`` config.
EVAL_KEYS = ("spice", "meteor", "retrieval", "lm_samples", "show", "pictures", "lm_perturbed")
#: The texts an LM's perplexity under perturbation is measured on (``eval.lm_perturbed``).
PERTURBED_TEXTS = ("capval", "captest")
NO_CUT = 10**6  # evaluation scores whole sentences, never cut
RETRIEVAL_CAPTIONS = 1024  # captions scored against all test images per call
#: Output-layer values a scoring batch may hold (B x T x V floats, 128 MB in float32): fewer
#: sentences a batch when the vocabulary is large, so a 40,000-word LM scores in bounded memory.
LOGIT_BUDGET = 2**25


@torch.no_grad()
def generate(
    model, features: torch.Tensor, vocab: Vocabulary, batch_size: int = 256, **overrides
) -> tuple[list[list[str]], list[float]]:
    """Captions (as words) and their log-probabilities for a stack of image features."""
    model.eval()
    words, logprobs = [], []
    for start in range(0, len(features), batch_size):
        chunk = features[start : start + batch_size].to(model.device)
        ids, lp = model.generate(chunk, **overrides)
        words += [vocab.decode(seq) for seq in ids]
        logprobs += lp.tolist()
    return words, logprobs


@torch.no_grad()
def sentence_logprobs(
    score: Callable,
    sentences: Sequence[Sequence[str]],
    vocab: Vocabulary,
    features: torch.Tensor | None = None,
    batch_size: int = 256,
) -> list[np.ndarray]:
    """Log-probability of each predicted token (``<eos>`` included) of each sentence.

    ``score(inputs, targets)`` or, with ``features`` (one row per sentence),
    ``score(features, inputs, targets)`` returns (B, T) token log-probabilities. A batch is
    at most ``batch_size`` sentences and at most ``LOGIT_BUDGET`` output values.
    """
    ids = encode_sentences(sentences, vocab, NO_CUT)
    out: list[np.ndarray] = []
    start = 0
    while start < len(ids):
        longest = max(len(s) for s in ids[start : start + batch_size]) + 1
        stop = start + max(1, min(batch_size, LOGIT_BUDGET // (longest * len(vocab))))
        batch = pad_batch(ids[start:stop])
        args = [batch["inputs"], batch["targets"]]
        if features is not None:
            args.insert(0, features[start:stop])
        lp = score(*args).float().cpu()
        mask = batch["targets"] != PAD_ID
        out += [row[m].numpy() for row, m in zip(lp, mask, strict=True)]
        start = stop
    return out


def perplexities(
    part: str,
    split: str,
    token_logprobs: list[np.ndarray],
    sentences: Sequence[Sequence[str]],
    vocab: Vocabulary,
) -> dict:
    """Perplexity results of ``part`` (``lm``/``capgen``) on a split's sentences, and the
    vocabulary's coverage of them (``<split>_oov_type_rate``, ``<split>_oov_token_rate``).
    A subword vocabulary's: per token (``plain``) and per word, with no OOV correction."""
    if is_subword(vocab):
        stats = per_word_perplexity_stats(token_logprobs, [len(s) for s in sentences])
        return pplx_keys(part, split, stats, 0) | {
            result_key(part, f"{split}_pplx_corrected"): NOT_APPLICABLE_CORRECTED
        }
    unk_counts, n_oov = oov_stats(list(sentences), vocab)
    results = pplx_keys(part, split, perplexity_stats(token_logprobs, unk_counts, n_oov), n_oov)
    rates = coverage(list(sentences), vocab)
    return results | {coverage_key(part, split, rate): v for rate, v in rates.items()}


def evaluate_lm(
    lm, vocab: Vocabulary, texts: dict[str, list[list[str]]], train_sentences, samples: int,
    seed: int, perturbed=None,
) -> dict:  # fmt: skip
    """The LM's perplexities on each of ``texts`` (name -> sentences: its own validation text
    ``val``, the caption sets ``capval`` and ``captest``), and the diversity of its samples;
    with ``perturbed`` (``eval.lm_perturbed``: a strength per perturbation, 0: not measured),
    also its perplexities on the caption sets under each perturbation."""
    device = next(lm.parameters()).device
    lm.eval()

    def score(inputs, targets):
        return lm.token_logprobs(inputs.to(device), targets.to(device))

    results = {}
    for split, sentences in texts.items():
        lps = sentence_logprobs(score, sentences, vocab)
        results.update(perplexities("lm", split, lps, sentences, vocab))
    for kind, strength in robust.strengths(perturbed).items():
        if not strength:
            continue
        results[perturbed_key(kind)] = strength
        for split in PERTURBED_TEXTS:
            sentences = texts[split]
            score = robust.perturbed_scorer(lm, kind, strength, seed)
            lps = sentence_logprobs(score, sentences, vocab)
            unk_counts, n_oov = oov_stats(list(sentences), vocab)
            stats = perplexity_stats(lps, unk_counts, n_oov)
            results.update(pplx_keys("lm", perturbed_split(split, kind), stats, n_oov))
    if samples:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        sampled = [vocab.decode(s) for s in lm.sample(samples, generator=gen)]
        div = diversity(sampled, list(train_sentences), len(vocab.words))
        results.update({lm_sample_div_key(k): v for k, v in div.items()})
    return results


def evaluate_generator(model, data: CaptionDataModule, eval_cfg) -> tuple[dict, list[dict]]:
    """Caption metrics, perplexities, diversity and retrieval on the test split, and the test
    captions: ``{"image_id", "caption", "logprob", "references"}`` each, with ``all_true`` on
    a generated dataset (``caplm.results.ALL_TRUE_MEANS`` says what it checks)."""
    vocab, split = data.vocab, "test"
    images = data.dataset.splits[split]
    features = data.features[split]
    device = model.device

    words, logprobs = generate(model, features, vocab)
    hypotheses = {img.image_id: " ".join(w) for img, w in zip(images, words, strict=True)}
    references = {img.image_id: img.raw for img in images}
    metrics = caption_metrics(references, hypotheses, spice=eval_cfg.spice, meteor=eval_cfg.meteor)
    results = {capgen_key(f"test_{k}"): v for k, v in metrics.items() if k != "spice_status"}
    results[SPICE_STATUS] = metrics.get("spice_status")

    sentences = data.dataset.sentences(split)
    image_index = torch.tensor(data.caption_images(split))

    def score(feats, inputs, targets):
        return model.token_logprobs(feats.to(device), inputs.to(device), targets.to(device))

    lps = sentence_logprobs(score, sentences, vocab, features=features[image_index])
    results.update(perplexities("capgen", split, lps, sentences, vocab))

    scenes = data.dataset.info.get("scenes")
    truth = {}
    if scenes:  # generated data knows what is in each image: check the captions against it
        said = {img.image_id: w for img, w in zip(images, words, strict=True)}
        grounded = dataset_grounding(data.dataset.name, said, scenes)
        results.update({grounding_key(data.dataset.name, k): v for k, v in grounded.items()})
        truth = caption_truth(data.dataset.name, said, scenes)

    train = data.dataset.sentences("train")
    results.update({div_key(k): v for k, v in diversity(words, train, len(vocab.words)).items()})

    if eval_cfg.retrieval:
        ids = encode_sentences(sentences, vocab, NO_CUT)
        batch = pad_batch(ids)

        def pair_scores(feats, inputs, targets):
            return model.caption_image_logprobs(
                feats.to(device), inputs.to(device), targets.to(device)
            )

        # all images per call: the model bounds its own memory, and splitting the images would
        # redo the caption side (the RNN) for every block (9-17x slower, see make bench)
        scores = score_matrix(
            pair_scores,
            features,
            batch["inputs"],
            batch["targets"],
            caption_batch=RETRIEVAL_CAPTIONS,
            image_batch=len(features),
        )
        ranks = retrieval_ranks(scores, image_index.numpy())
        results.update({ret_key(k): v for k, v in retrieval_metrics(ranks, len(images)).items()})

    captions = [
        {
            "image_id": img.image_id,
            "caption": hypotheses[img.image_id],
            "logprob": lp,
            "references": img.raw,
            **({"all_true": truth[img.image_id]} if truth else {}),
        }
        for img, lp in zip(images, logprobs, strict=True)
    ]
    return results, captions


class ValidationBLEU(Callback):
    """Logs ``val/BLEU-4`` (greedy captions, :mod:`caplm.evaluation.bleu`) after each
    validation epoch.

    A cheap signal while training; the final numbers come from pycocoevalcap at test time.
    """

    def __init__(
        self,
        features: torch.Tensor,
        references: list[list[list[str]]],
        vocab: Vocabulary,
        max_images: int = 200,
    ):
        self.features = features[:max_images]
        self.bleu = CorpusBLEU4([[" ".join(r) for r in refs] for refs in references[:max_images]])
        self.vocab = vocab

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        was_training = pl_module.training
        words, _ = generate(pl_module, self.features, self.vocab, beam_width=1)
        pl_module.train(was_training)
        pl_module.log("val/BLEU-4", self.bleu([" ".join(w) for w in words]), prog_bar=True)
