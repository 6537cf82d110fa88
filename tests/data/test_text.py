import pytest

from caplm.data.text import BOS_ID, EOS_ID, PAD_ID, SPECIALS, UNK_ID, Vocabulary, tokenize


def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("Two BLUE squares, left of a star!") == [
        "two",
        "blue",
        "squares",
        ",",
        "left",
        "of",
        "a",
        "star",
        "!",
    ]
    assert tokenize("a dog's ball") == ["a", "dog's", "ball"]
    assert tokenize("   ") == []


def test_build_applies_min_freq_and_orders_by_count():
    v = Vocabulary.build([["a", "b", "a"], ["c", "a", "b"]], min_freq=2)
    assert v.itos[: len(SPECIALS)] == list(SPECIALS)
    assert v.words == ["a", "b"]
    assert v.encode(["a", "c", "b"]) == [v.stoi["a"], UNK_ID, v.stoi["b"]]
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)


def test_decode_stops_at_eos_and_skips_specials():
    v = Vocabulary(["red", "circle"])
    ids = [BOS_ID, v.stoi["red"], v.stoi["circle"], EOS_ID, v.stoi["red"], PAD_ID]
    assert v.decode(ids) == ["red", "circle"]


def test_index_in_maps_by_token_string_with_shuffled_and_missing_words():
    lm = Vocabulary(["star", "blue", "red"])
    cap = Vocabulary(["red", "green", "star"])
    idx = cap.index_in(lm).tolist()
    assert idx[:4] == [0, 1, 2, 3]  # specials map to themselves
    assert idx[4:] == [lm.stoi["red"], -1, lm.stoi["star"]]
    assert cap.intersect(lm).words == ["red", "star"]


def test_save_load_roundtrip_and_bad_file(tmp_path):
    v = Vocabulary(["x", "y"])
    v.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json") == v
    (tmp_path / "bad.json").write_text('{"x": 1}')
    with pytest.raises(ValueError, match="bad.json"):
        Vocabulary.load(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        Vocabulary.load(tmp_path / "missing.json")
