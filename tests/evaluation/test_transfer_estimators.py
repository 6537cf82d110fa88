"""The transferability estimators on synthetic features with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from caplm.evaluation.transfer_estimators import (
    hscore,
    ledoit_wolf,
    leep,
    logme,
    logme_evidence,
    present_labels,
)


def _classes(n=800, d=10, k=6, noise=1.0, seed=0):
    """Features with a constant column, and labels that a linear map of them predicts."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, d))
    f[:, -1] = 1.0
    labels = (f @ rng.normal(size=(d, k)) + noise * rng.normal(size=(n, k))).argmax(1)
    return f, labels, rng


def test_logme_evidence_equals_scikit_learns_bayesian_ridge_per_target():
    sklearn = pytest.importorskip("sklearn.linear_model")
    f, labels, _ = _classes()
    evidence, counts = logme_evidence(f, labels)
    assert counts.sum() == len(labels)
    for k in range(len(counts)):
        ridge = sklearn.BayesianRidge(
            fit_intercept=False, compute_score=True, tol=1e-12, max_iter=100_000,
            alpha_1=0.0, alpha_2=0.0, lambda_1=0.0, lambda_2=0.0,
        ).fit(f, (labels == k).astype(float))  # fmt: skip
        assert evidence[k] * len(labels) == pytest.approx(ridge.scores_[-1], rel=1e-4)


def test_logme_is_the_class_frequency_weighted_mean_of_the_evidence():
    f, labels, _ = _classes()
    labels[:500] = 0  # unbalanced: the plain mean over classes would differ
    evidence, counts = logme_evidence(f, labels)
    assert logme(f, labels) == pytest.approx((evidence * counts).sum() / counts.sum())
    assert logme(f, labels) != pytest.approx(evidence.mean(), rel=1e-3)


def test_labels_are_remapped_to_the_classes_present():
    f, labels, _ = _classes()
    gappy = np.array([0, 7, 19, 40, 41, 99])[labels]  # ids with holes, as a vocabulary gives
    remapped, counts = present_labels(gappy)
    assert remapped.max() == len(counts) - 1 == 5
    assert logme(f, gappy) == pytest.approx(logme(f, labels))
    # What the remap prevents: a class with no example is an all-zero target, fit perfectly,
    # whose evidence dwarfs every real class's.
    evidence, _ = logme_evidence(f, labels)
    empty, _ = logme_evidence(np.vstack([f, f[:1]]), np.append(labels, 6))  # 6 seen once
    assert empty[-1] > evidence.max()


@pytest.mark.parametrize("estimator", [logme, hscore])
def test_scores_are_invariant_to_a_permutation_of_the_label_ids(estimator):
    f, labels, rng = _classes()
    permuted = rng.permutation(labels.max() + 1)[labels]
    assert estimator(f, permuted) == pytest.approx(estimator(f, labels), rel=1e-9)


@pytest.mark.parametrize("estimator", [logme, hscore])
def test_informative_features_score_above_noise_features(estimator):
    f, labels, rng = _classes(noise=0.5)
    noise = rng.normal(size=f.shape)
    noise[:, -1] = 1.0
    weak = f.copy()
    weak[:, :5] = rng.normal(size=(len(f), 5))  # half the informative columns replaced
    assert estimator(f, labels) > estimator(weak, labels) > estimator(noise, labels)


def test_the_constant_feature_gives_logme_its_intercept():
    rng = np.random.default_rng(1)
    f = rng.normal(size=(600, 4))
    labels = (rng.random(600) < 0.8).astype(int)  # a class prior far from 0 and features of noise
    with_one = np.hstack([f, np.ones((600, 1))])
    assert logme(with_one, labels) > logme(f, labels) + 0.05


def test_leep_by_hand_and_from_row_blocks():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8]])
    labels = np.array([5, 5, 9, 9])  # remapped to 0, 0, 1, 1
    joint = np.array([[1.7, 0.3], [0.5, 1.5]]) / 4  # P(y, z)
    cond = joint / joint.sum(0)  # P(y | z)
    expected = np.mean([np.log(cond[y] @ p) for y, p in zip([0, 0, 1, 1], probs, strict=True)])
    assert leep(probs, labels) == pytest.approx(expected)
    assert leep([probs[:1], probs[1:]], labels) == pytest.approx(expected)
    uninformative = np.full_like(probs, 0.5)
    assert leep(uninformative, labels) == pytest.approx(np.log(0.5))
    assert leep(probs, labels) > leep(uninformative, labels)


def test_ledoit_wolf_matches_scikit_learn():
    covariance = pytest.importorskip("sklearn.covariance")
    x = np.random.default_rng(2).normal(size=(40, 60))  # more dimensions than rows
    x -= x.mean(0)
    ours, shrinkage = ledoit_wolf(x)
    theirs, their_shrinkage = covariance.ledoit_wolf(x, assume_centered=True)
    assert shrinkage == pytest.approx(their_shrinkage)
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_hscore_stays_finite_with_more_dimensions_than_examples():
    rng = np.random.default_rng(3)
    value = hscore(rng.normal(size=(30, 200)), rng.integers(0, 3, 30))
    assert np.isfinite(value)


def test_bad_input_is_refused_with_a_message():
    f, labels, _ = _classes()
    f[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or inf in 1 of 800 rows"):
        logme(f, labels)
    with pytest.raises(ValueError, match="non-empty 1-d"):
        logme(np.ones((0, 3)), np.array([], dtype=int))
    with pytest.raises(ValueError, match="N = 5 labels"):
        hscore(np.ones((4, 3)), np.arange(5))
    with pytest.raises(ValueError, match="4 rows for 5 labels"):
        leep(np.full((4, 2), 0.5), np.arange(5))
