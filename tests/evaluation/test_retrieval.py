import numpy as np
import pytest
import torch

from caplm.evaluation.retrieval import retrieval_metrics, retrieval_ranks, score_matrix


def test_identity_scores_rank_every_true_image_first():
    ranks = retrieval_ranks(np.log(np.eye(4) * 0.9 + 0.025), np.arange(4))
    np.testing.assert_array_equal(ranks, [1, 1, 1, 1])
    assert retrieval_metrics(ranks, 4) == {
        "R@1": 1.0,
        "R@5": 1.0,
        "R@10": 1.0,
        "median_rank": 1.0,
        "median_rank_frac": 0.25,
    }


def test_ranks_by_hand_with_ties_ranked_pessimistically():
    scores = np.array(
        [
            [0.1, 0.5, 0.3, 0.2],  # true 0: three images above it -> 4
            [0.9, 0.1, 0.2, 0.3],  # true 3: one above -> 2
            [0.4, 0.4, 0.1, 0.4],  # true 1: ties with images 0 and 3 -> 3, not 1
        ]
    )
    ranks = retrieval_ranks(scores, np.array([0, 3, 1]))
    np.testing.assert_array_equal(ranks, [4, 2, 3])
    metrics = retrieval_metrics(ranks, 4)
    assert (metrics["R@1"], metrics["R@5"], metrics["median_rank"]) == (0.0, 1.0, 3.0)


def test_constant_scores_give_the_worst_rank():
    np.testing.assert_array_equal(retrieval_ranks(np.zeros((3, 5)), np.array([0, 2, 4])), [5, 5, 5])


def test_recall_at_k_and_median_by_hand():
    metrics = retrieval_metrics(np.array([1, 2, 6, 11, 1]), num_images=20)
    assert metrics == pytest.approx(
        {"R@1": 0.4, "R@5": 0.6, "R@10": 0.8, "median_rank": 2.0, "median_rank_frac": 0.1}
    )


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: retrieval_ranks(np.zeros((2, 3)), np.array([0, 3])), "index the 3 images"),
        (lambda: retrieval_ranks(np.zeros((2, 3)), np.array([0])), r"need scores \(N, M\)"),
        (lambda: retrieval_ranks(np.array([[0.0, np.nan]]), np.array([0])), "NaN"),
        (lambda: retrieval_metrics(np.array([1, 5]), num_images=4), r"1\.\.4"),
        (lambda: retrieval_metrics(np.array([]), num_images=4), "no ranks"),
    ],
)
def test_bad_inputs_are_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# A "generator" with known probabilities: caption i names its image in inputs[i, 0];
# P(caption | its image) = 0.7, P(caption | any other image) = 0.3 / (M - 1).
M = 5


def known_logprobs(features, inputs, targets):
    assert not torch.is_grad_enabled()
    named = inputs[:, :1] == features[:, 0][None, :]  # (n, m)
    return torch.where(named, torch.tensor(0.7).log(), torch.tensor(0.3 / (M - 1)).log())


def test_known_probabilities_give_known_ranks():
    features = torch.arange(M, dtype=torch.float32)[:, None].repeat(1, 3)  # image j: feature j
    true_image = torch.tensor([3, 0, 4, 4, 1, 2, 0])
    inputs = torch.stack([true_image.float(), torch.zeros(7)], dim=1)
    scores = score_matrix(known_logprobs, features, inputs, inputs, caption_batch=3, image_batch=2)
    assert scores.shape == (7, M)
    np.testing.assert_allclose(np.exp(scores).sum(axis=1), 1.0)  # a distribution over images
    np.testing.assert_array_equal(retrieval_ranks(scores, true_image.numpy()), np.ones(7))
    # Claiming a wrong image instead: four images tie at 0.3/(M-1) and one beats them -> rank M.
    np.testing.assert_array_equal(
        retrieval_ranks(scores, (true_image.numpy() + 1) % M), np.full(7, M)
    )


def test_chunking_gives_the_same_matrix_as_one_call():
    # float64, compared with an absolute tolerance too: float32 blocks of a matmul may round
    # differently from the whole product, and relative error is unbounded near zero
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(5, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    inputs = torch.randn(7, 4, generator=gen, dtype=torch.float64)
    targets = torch.randn(7, 4, generator=gen, dtype=torch.float64)
    calls = []

    def score_fn(f, x, y):
        calls.append((len(x), len(f)))
        return (x + 2 * y) @ f.T

    whole = score_matrix(score_fn, features, inputs, targets, caption_batch=100, image_batch=100)
    chunked = score_matrix(score_fn, features, inputs, targets, caption_batch=3, image_batch=2)
    assert calls[0] == (7, 5) and len(calls) == 1 + 3 * 3  # 7 captions by 3, 5 images by 2
    assert calls[-1] == (1, 1)
    np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        whole, ((inputs + 2 * targets) @ features.T).detach().numpy(), rtol=1e-12, atol=1e-12
    )


def test_score_fn_with_a_wrong_shape_is_an_error():
    with pytest.raises(ValueError, match=r"returned shape \(2, 2\), expected \(2, 3\)"):
        score_matrix(
            lambda f, x, y: torch.zeros(2, 2),
            torch.zeros(3, 1),
            torch.zeros(2, 1),
            torch.zeros(2, 1),
        )
