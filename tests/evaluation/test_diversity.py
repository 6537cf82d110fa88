import pytest

from caplm.evaluation.diversity import diversity

GENERATED = [
    ["a", "red", "circle"],
    ["a", "red", "circle"],
    ["a", "blue", "square", "left"],
    ["a", "red", "square"],
]
TRAIN = [["a", "red", "circle"], ["a", "blue", "square"], ["the", "star"]]


def test_diversity_by_hand():
    assert diversity(GENERATED, TRAIN, vocab_size=10) == {
        "vocab_used": 6,  # a red circle blue square left
        "vocab_used_frac": 0.6,
        "unique_captions": 3,
        "unique_frac": 0.75,
        "reused_from_train": 2,  # "a red circle" twice; "a blue square left" is not verbatim
        "reused_frac": 0.5,
        "distinct_1grams": 6,
        "distinct_2grams": 6,  # a-red red-circle a-blue blue-square square-left red-square
        "distinct_3grams": 4,  # a-red-circle a-blue-square blue-square-left a-red-square
        "len_mean": 3.25,
        "len_min": 3,
        "len_max": 4,
    }


def test_empty_caption_counts_as_length_zero():
    d = diversity([[], ["a"]], [[]], vocab_size=5)
    assert (d["len_min"], d["len_max"], d["len_mean"]) == (0, 1, 0.5)
    assert (d["distinct_1grams"], d["distinct_2grams"], d["reused_from_train"]) == (1, 0, 1)


def test_no_generated_captions_is_an_error():
    with pytest.raises(ValueError, match="no generated captions"):
        diversity([], TRAIN, vocab_size=10)


def test_vocab_size_must_be_positive():
    with pytest.raises(ValueError, match="vocab_size"):
        diversity(GENERATED, TRAIN, vocab_size=0)
