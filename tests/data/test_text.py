import pytest

from caplm.data.text import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIALS,
    UNK_ID,
    Vocabulary,
    has_word,
    read_utf8,
    tokenize,
)


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


def test_has_word_needs_a_word_or_number_not_only_punctuation():
    for text in ("...!", "", "   ", " - ", "?!."):
        assert not has_word(tokenize(text)), text
    for text in ("a", "2 dogs.", "...ok", "café", "一只狗"):
        assert has_word(tokenize(text)), text


def test_read_utf8_reads_what_read_text_reads(tmp_path):
    path = tmp_path / "t.txt"
    text = "\ufeffcafé\r\nnaïve — ok\nlast"
    path.write_bytes(text.encode("utf-8"))
    assert read_utf8(path).splitlines() == path.read_text(encoding="utf-8").splitlines()
    assert read_utf8(path) == text  # newlines and a byte-order mark kept as written


@pytest.mark.parametrize(
    "data, offset, line, byte, reason",
    [
        ("ok\ncafé au lait\n".encode("latin-1"), 6, 2, "0xe9", "invalid continuation byte"),
        (b"\xff first byte", 0, 1, "0xff", "invalid start byte"),
        (b"a\nb\nc\xe2\x82", 5, 3, "0xe2", "unexpected end of data"),  # cut inside a char
    ],
)
def test_read_utf8_names_file_and_first_bad_byte(tmp_path, data, offset, line, byte, reason):
    path = tmp_path / "bad.txt"
    path.write_bytes(data)
    with pytest.raises(ValueError) as err:
        read_utf8(path)
    assert str(err.value) == (
        f"{path}: not UTF-8 text: the byte at offset {offset} (line {line}) is {byte} "
        f"({reason}); the file must be UTF-8: convert it (e.g. `iconv -f latin1 -t utf-8 OLD > "
        "NEW` for Latin-1) or save it again as UTF-8"
    )
