import math

import numpy as np
import pytest

from caplm.data.text import Vocabulary
from caplm.evaluation.perplexity import (
    caption_perplexities,
    oov_stats,
    perplexity_stats,
)
from caplm.results import PPLX_KINDS, PPLX_STATS


def logs(*probs):
    return np.log(np.array(probs))


# Three captions; the last token of each is the end token. n_oov_types = 4.
#   c1: p = 0.5, 0.25        no <unk>   plain sqrt(8)   corrected sqrt(8)
#   c2: p = 0.5, 0.5, 0.5    1 <unk>    plain 2         corrected (8 * 4)^(1/3)
#   c3: p = 0.25, 0.25       2 <unk>    plain 4         corrected (16 * 4 * 4)^(1/2) = 16
LOGPROBS = [logs(0.5, 0.25), logs(0.5, 0.5, 0.5), logs(0.25, 0.25)]
UNKS = [0, 1, 2]
N_OOV = 4


def test_per_caption_perplexity_by_hand():
    per = caption_perplexities(LOGPROBS, UNKS, N_OOV)
    np.testing.assert_allclose(per["plain"], [math.sqrt(8), 2, 4])
    np.testing.assert_allclose(per["corrected"], [math.sqrt(8), 32 ** (1 / 3), 16])


def test_stats_by_hand():
    stats = perplexity_stats(LOGPROBS, UNKS, N_OOV)
    assert set(stats) == {f"{k}_{s}" for k in PPLX_KINDS for s in PPLX_STATS}
    expected = {
        "plain_mean": (math.sqrt(8) + 2 + 4) / 3,
        "plain_median": math.sqrt(8),
        "plain_geomean": (math.sqrt(8) * 2 * 4) ** (1 / 3),  # = 2^1.5 = sqrt(8)
        "corrected_mean": (math.sqrt(8) + 32 ** (1 / 3) + 16) / 3,
        "corrected_median": 32 ** (1 / 3),
        "corrected_geomean": (math.sqrt(8) * 32 ** (1 / 3) * 16) ** (1 / 3),
    }
    # a word vocabulary's token is a word: its per-word perplexity is the corrected one
    expected.update({k.replace("corrected", "per_word"): v for k, v in list(expected.items())
                     if k.startswith("corrected")})  # fmt: skip
    assert stats == pytest.approx(expected, rel=1e-12)
    assert stats["plain_geomean"] == pytest.approx(math.sqrt(8))


def test_median_of_an_even_count_averages_the_middle_perplexities():
    stats = perplexity_stats([logs(0.5), logs(0.25)], [0, 0], 0)
    assert stats["plain_median"] == pytest.approx(3.0)  # (2 + 4) / 2


def test_correction_raises_perplexity_only_for_captions_with_unk():
    per = caption_perplexities(LOGPROBS, UNKS, N_OOV)
    has_unk = np.array(UNKS) > 0
    assert (per["corrected"][has_unk] > per["plain"][has_unk]).all()
    np.testing.assert_array_equal(per["corrected"][~has_unk], per["plain"][~has_unk])


def test_one_oov_type_needs_no_correction():
    per = caption_perplexities(LOGPROBS, UNKS, 1)  # all of <unk>'s probability is that word's
    np.testing.assert_array_equal(per["corrected"], per["plain"])


def test_correction_removes_the_small_vocabulary_advantage():
    # Text: "a x <eos>", "a y <eos>". The large vocabulary knows x and y and gives each 0.1;
    # the small one maps both to <unk> and gives <unk> their total, 0.2: the same model.
    sentences = [["a", "x"], ["a", "y"]]
    large, small = Vocabulary(["a", "x", "y"]), Vocabulary(["a"])
    unk_large, oov_large = oov_stats(sentences, large)
    unk_small, oov_small = oov_stats(sentences, small)
    assert (unk_large, oov_large, unk_small, oov_small) == ([0, 0], 0, [1, 1], 2)

    stats_large = perplexity_stats([logs(0.5, 0.1, 0.5)] * 2, unk_large, oov_large)
    stats_small = perplexity_stats([logs(0.5, 0.2, 0.5)] * 2, unk_small, oov_small)
    assert stats_small["plain_geomean"] == pytest.approx(0.05 ** (-1 / 3))
    assert stats_large["plain_geomean"] == pytest.approx(0.025 ** (-1 / 3))
    assert stats_small["plain_geomean"] < stats_large["plain_geomean"]  # looks better, isn't
    for stat in PPLX_STATS:
        key = f"corrected_{stat}"
        assert stats_small[key] == pytest.approx(stats_large[key], rel=1e-12)


def test_oov_stats_counts_tokens_and_distinct_types():
    vocab = Vocabulary(["a", "red", "circle"])
    sentences = [["a", "red", "star"], ["a", "blue", "star", "blue"], []]
    assert oov_stats(sentences, vocab) == ([1, 3, 0], 2)  # types: star, blue


def test_unk_without_oov_types_is_an_error():
    with pytest.raises(ValueError, match="n_oov_types=0"):
        perplexity_stats(LOGPROBS, UNKS, 0)


@pytest.mark.parametrize(
    "logprobs, unks, match",
    [
        ([logs(0.5)], [0, 0], "1 captions but 2 unk counts"),
        ([], [], "no captions"),
        ([np.array([])], [0], "no predicted tokens"),
        ([logs(0.5)], [2], "larger than"),
    ],
)
def test_bad_inputs_are_clear_errors(logprobs, unks, match):
    with pytest.raises(ValueError, match=match):
        perplexity_stats(logprobs, unks, 3)


def test_coverage_counts_oov_types_and_tokens():
    from caplm.evaluation.perplexity import coverage

    vocab = Vocabulary(["a", "dog"])
    text = [["a", "dog", "runs"], ["a", "cat", "runs", "a"]]
    # types a, dog, runs, cat: runs and cat missing; tokens: 7, of which 3 (runs x2, cat) missing
    assert coverage(text, vocab) == {"oov_type_rate": 2 / 4, "oov_token_rate": 3 / 7}
    with pytest.raises(ValueError, match="no words"):
        coverage([[]], vocab)


def test_corrected_perplexity_of_a_hand_computed_caption():
    """One caption "a <unk> <eos>" with 3 OOV types in the text: log P' = log P - 1 x log 3."""
    logprobs = [np.log([0.5, 0.3, 0.8])]
    stats = perplexity_stats(logprobs, unk_counts=[1], n_oov_types=3)
    plain = (0.5 * 0.3 * 0.8) ** (-1 / 3)
    assert stats["plain_geomean"] == pytest.approx(plain, rel=1e-12)
    assert stats["corrected_geomean"] == pytest.approx((0.5 * 0.3 / 3 * 0.8) ** (-1 / 3), rel=1e-12)
