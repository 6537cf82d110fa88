"""Transferability estimators: how well do fixed features predict a target, without training
the network that will use them?

Each takes features ``(N, D)`` (or, for LEEP, a source model's class probabilities) and integer
labels ``(N,)``, and returns one number, higher meaning "more transferable". All work in
float64 and remap the labels to the classes present first (a class id with no example would
otherwise be a target that is trivially fit, which inflates LogME).

- :func:`logme`: the evidence (log marginal likelihood per example) of a Bayesian linear
  model of each one-vs-rest target, with its prior and noise precisions maximised by MacKay's
  fixed point, after one eigendecomposition of F^T F (You et al., 2021, "LogME: Practical
  Assessment of Pre-trained Models for Transfer Learning"). The score is the class-frequency-weighted
  mean over classes. It fits no intercept: give the features a constant column.
- :func:`leep`: the log expected empirical prediction of the source model's own softmax
  (Nguyen et al., 2020, "LEEP: A New Measure to Evaluate Transferability of Learned
  Representations").
- :func:`hscore`: tr(cov(f)^-1 cov(E[f | y])) with a Ledoit-Wolf shrunk cov(f) (Bao et al.,
  2019; the shrinkage as in Ibrahim et al., 2022, "Newer is not always better: rethinking
  transferability metrics").
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

#: MacKay's fixed point stops for a target once its alpha and beta move less than this
#: (relative); a target the features cannot predict has alpha growing without end, its
#: evidence converging all the same: MAX_ITERATIONS stops it.
TOLERANCE = 1e-6
MAX_ITERATIONS = 30  # enough: the evidence then moves by < 1e-5 (relative)
EPS = 1e-300


def present_labels(labels) -> tuple[np.ndarray, np.ndarray]:
    """Labels remapped to 0..K-1 over the classes present, and each class's count."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-d array, got shape {labels.shape}")
    _, remapped, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return remapped.reshape(-1), counts


def _check_features(features, labels) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] != len(labels):
        raise ValueError(
            f"features must be (N, D) with N = {len(labels)} labels, got shape {f.shape}"
        )
    if not np.isfinite(f).all():
        bad = int((~np.isfinite(f)).any(axis=1).sum())
        raise ValueError(f"features hold NaN or inf in {bad} of {len(f)} rows")
    return f


def one_hot(labels: np.ndarray, num_classes: int) -> sparse.csr_matrix:
    """A sparse (num_classes, N) indicator matrix: row k marks the examples of class k."""
    n = len(labels)
    return sparse.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(num_classes, n))


def logme_evidence(features, labels) -> tuple[np.ndarray, np.ndarray]:
    """Per class present: the LogME evidence per example (K,) and the class counts (K,).

    For target y (the 0/1 indicator of one class) and features F = U S V^T, with alpha the
    prior precision of the weights and beta the noise precision::

        log p(y | F, alpha, beta) / N = (D/2 log alpha + N/2 log beta - 1/2 sum log(alpha +
            beta s_i) - beta/2 ||y - F m||^2 - alpha/2 ||m||^2 - N/2 log 2 pi) / N

    with s the eigenvalues of F^T F (S^2) and m the posterior mean. In that eigenbasis every
    term is a sum over D values per target, so all targets iterate together.
    """
    labels, counts = present_labels(labels)
    f = _check_features(features, labels)
    n, d = f.shape
    # F^T F = V diag(s) V^T by one symmetric eigendecomposition (D x D: much cheaper than an
    # SVD of the tall F), and U^T y = diag(s)^-1/2 V^T F^T y in the directions with s > 0.
    s, v = np.linalg.eigh(f.T @ f)
    s = np.where(s > s.max() * 1e-12, s, 0.0)
    fty = (one_hot(labels, len(counts)) @ f).T  # F^T y for every target: (D, K)
    z2 = np.where(s[:, None] > 0, (v.T @ fty) ** 2 / np.maximum(s[:, None], EPS), 0.0)
    y2 = counts.astype(np.float64)  # ||y||^2 of a 0/1 target
    outside = np.maximum(y2 - z2.sum(0), 0.0)  # the part of y no feature direction reaches
    alpha, beta = np.ones(len(counts)), np.ones(len(counts))
    active = np.arange(len(counts))  # targets still moving: only they are updated
    for _ in range(MAX_ITERATIONS):
        a, b, zz = alpha[active], beta[active], z2[:, active]
        shrink = b * s[:, None] / (a + b * s[:, None])  # (D, k)
        gamma = shrink.sum(0)
        m2 = (shrink**2 * zz / np.maximum(s[:, None], EPS)).sum(0)  # ||m||^2
        res = outside[active] + ((1 - shrink) ** 2 * zz).sum(0)  # ||y - F m||^2
        new_a = gamma / np.maximum(m2, EPS)
        new_b = (n - gamma) / np.maximum(res, EPS)
        moved = np.maximum(np.abs(new_a - a) / a, np.abs(new_b - b) / b)
        alpha[active], beta[active] = new_a, new_b
        active = active[moved >= TOLERANCE]
        if not len(active):
            break
    shrink = beta * s[:, None] / (alpha + beta * s[:, None])
    m2 = (shrink**2 * z2 / np.maximum(s[:, None], EPS)).sum(0)
    res = outside + ((1 - shrink) ** 2 * z2).sum(0)
    evidence = (
        d / 2 * np.log(alpha)
        + n / 2 * np.log(beta)
        - 0.5 * np.log(alpha + beta * s[:, None]).sum(0)
        - beta / 2 * res
        - alpha / 2 * m2
        - n / 2 * np.log(2 * np.pi)
    )
    return evidence / n, counts


def logme(features, labels) -> float:
    """LogME: the class-frequency-weighted mean evidence per example (higher: better)."""
    evidence, counts = logme_evidence(features, labels)
    return float((evidence * counts).sum() / counts.sum())


def leep(probs, labels) -> float:
    """LEEP of a source model's class probabilities ``probs`` (N, Z) for ``labels`` (N,).

    With the empirical joint P(y, z) = mean_i probs[i, z] [y_i = y], and P(y | z) = P(y, z) /
    P(z): LEEP = mean_i log sum_z P(y_i | z) probs[i, z]. ``probs`` may also be an iterable
    of row blocks (it is read twice), so a large N x Z matrix need not exist at once.
    """
    blocks = [probs] if isinstance(probs, np.ndarray) else probs
    labels, counts = present_labels(labels)
    joint, seen = None, 0
    for block in _blocks(blocks):
        rows = labels[seen : seen + len(block)]
        part = one_hot(rows, len(counts)) @ block  # (K, Z)
        joint = part if joint is None else joint + part
        seen += len(block)
    if joint is None or seen != len(labels):
        raise ValueError(f"probs has {seen} rows for {len(labels)} labels")
    conditional = joint / np.maximum(joint.sum(0, keepdims=True), EPS)  # P(y | z): (K, Z)
    total, seen = 0.0, 0
    for block in _blocks(blocks):
        rows = labels[seen : seen + len(block)]
        total += np.log(np.maximum((conditional[rows] * block).sum(1), EPS)).sum()
        seen += len(block)
    return float(total / len(labels))


def _blocks(blocks):
    for block in blocks:
        block = np.asarray(block, dtype=np.float64)
        if block.ndim != 2 or not np.isfinite(block).all() or (block < 0).any():
            raise ValueError("probs must be finite, non-negative (N, Z) rows")
        yield block


def ledoit_wolf(x: np.ndarray) -> tuple[np.ndarray, float]:
    """The Ledoit-Wolf shrunk covariance of the centred rows ``x`` (N, D), and its shrinkage:
    (1 - a) S + a mu I with mu = tr(S) / D and a chosen to minimise the expected squared error.
    """
    n, d = x.shape
    cov = x.T @ x / n
    mu = np.trace(cov) / d
    delta = ((cov - mu * np.eye(d)) ** 2).sum() / d
    beta = ((x**2).sum(1) ** 2).sum() / n**2 / d - (cov**2).sum() / n / d
    shrinkage = 0.0 if delta <= 0 else float(np.clip(beta / delta, 0.0, 1.0))
    return (1 - shrinkage) * cov + shrinkage * mu * np.eye(d), shrinkage


def hscore(features, labels) -> float:
    """H-score with a shrunk feature covariance: tr(cov(f)^-1 cov(E[f | y]))."""
    labels, counts = present_labels(labels)
    f = _check_features(features, labels)
    f = f - f.mean(0)
    cov, _ = ledoit_wolf(f)
    means = (one_hot(labels, len(counts)) @ f) / counts[:, None]  # class means (K, D)
    weights = counts / counts.sum()
    between = (means * weights[:, None]).T @ means  # cov(E[f | y]); f is centred
    return float(np.trace(np.linalg.pinv(cov, hermitian=True) @ between))
