"""Image retrieval by caption probability, as in the study.

For each test caption i, the test images are ranked by the generator's log-probability of
caption i given image j; the rank of caption i's own image measures how well the generator's
probabilities tell images apart. Ties are ranked pessimistically: an image that scores the
same as the true one is counted as ranked above it, so a model that gives every image the
same score gets the worst rank, never a lucky first place.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

RECALL_AT = (1, 5, 10)


def retrieval_ranks(scores: np.ndarray, true_image: np.ndarray) -> np.ndarray:
    """Rank (1 = best) of each caption's true image: scores (N captions, M images), true (N,)."""
    scores = np.asarray(scores)
    true_image = np.asarray(true_image)
    if scores.ndim != 2 or true_image.shape != scores.shape[:1]:
        raise ValueError(
            f"need scores (N, M) and true_image (N,), got {scores.shape} and {true_image.shape}"
        )
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    if true_image.size and (true_image.min() < 0 or true_image.max() >= scores.shape[1]):
        raise ValueError(f"true_image must index the {scores.shape[1]} images")
    true_scores = scores[np.arange(len(scores)), true_image]
    # >= counts the true image itself (rank 1 when nothing beats it) and every tie against it.
    return (scores >= true_scores[:, None]).sum(axis=1)


def retrieval_metrics(ranks: np.ndarray, num_images: int) -> dict[str, float]:
    """R@1, R@5, R@10 (fractions of captions in [0, 1]), median rank, and the median rank as
    a fraction of the number of images (``median_rank_frac``)."""
    ranks = np.asarray(ranks)
    if ranks.size == 0:
        raise ValueError("no ranks to summarise")
    if ranks.min() < 1 or ranks.max() > num_images:
        raise ValueError(f"ranks must lie in 1..{num_images}")
    out = {f"R@{k}": float(np.mean(ranks <= k)) for k in RECALL_AT}
    out["median_rank"] = float(np.median(ranks))
    out["median_rank_frac"] = out["median_rank"] / num_images
    return out


def score_matrix(
    score_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    features: torch.Tensor,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    caption_batch: int = 256,
    image_batch: int = 16,
    progress: bool = True,
) -> np.ndarray:
    """(N captions, M images) matrix of ``score_fn(features[m], inputs[n], targets[n])``.

    ``score_fn`` is e.g. ``CaptionGenerator.caption_image_logprobs``: features (m, F),
    inputs and targets (n, T) -> (n, m) log-probabilities. It is called on blocks of
    ``caption_batch`` captions x ``image_batch`` images, so memory stays bounded: a merge
    model holds about n x m x T x V output logits per call.
    """
    n_captions, n_images = len(inputs), len(features)
    if len(targets) != n_captions:
        raise ValueError(f"{n_captions} caption inputs but {len(targets)} targets")
    out = np.empty((n_captions, n_images), dtype=np.float64)
    blocks = [
        (i, j) for i in range(0, n_captions, caption_batch) for j in range(0, n_images, image_batch)
    ]
    with torch.no_grad():
        for i, j in tqdm(blocks, desc="retrieval scores", disable=not progress, leave=False):
            rows, cols = slice(i, i + caption_batch), slice(j, j + image_batch)
            block = score_fn(features[cols], inputs[rows], targets[rows])
            expected = (min(caption_batch, n_captions - i), min(image_batch, n_images - j))
            if tuple(block.shape) != expected:
                raise ValueError(
                    f"score_fn returned shape {tuple(block.shape)}, expected {expected}"
                )
            out[rows, cols] = block.detach().cpu().double().numpy()
    return out
