"""The text normalisers (data.normaliser): word for word on text with punctuation, numbers,
non-ASCII letters and empty lines, through the readers and the corpora alike."""

import json

import pytest
from omegaconf import OmegaConf

from caplm.data.corpora import build_corpus
from caplm.data.readers import read_flickr8k_text, read_karpathy_json
from caplm.data.text import NORMALISERS, normaliser

TEXT = "A man's 2 dogs, 1,000.5 km away -- naïve café-goers: 3rd place!"
EXPECTED = {
    "study": ["a", "man", "s", "NUM", "dogs", "NUM", "km", "away", "na", "ve", "caf", "goers",
              "NUM", "rd", "place"],
    "karpathy": ["a", "man", "s", "2", "dogs", "1", "000", "5", "km", "away", "na", "ve", "caf",
                 "goers", "3rd", "place"],
    "keep_punct": ["a", "man's", "2", "dogs", ",", "1", ",", "000", ".", "5", "km", "away", "-",
                   "-", "na", "ï", "ve", "caf", "é", "-", "goers", ":", "3rd", "place", "!"],
}  # fmt: skip


@pytest.mark.parametrize("name", NORMALISERS)
def test_each_normaliser_word_for_word(name):
    assert normaliser(name)(TEXT) == EXPECTED[name]


def test_study_rule_keeps_only_alphabetic_words_and_num():
    words = normaliser("study")("Über 12.5% of 3,000 people; e-mail: x@y.org\t(ok)")
    assert words == ["ber", "NUM", "of", "NUM", "people", "e", "mail", "x", "y", "org", "ok"]
    assert all(w == "NUM" or w.isalpha() and w.isascii() and w.islower() for w in words)
    assert normaliser("study")("  ... !! ") == []


def test_unknown_normaliser_names_the_setting_and_the_choices():
    with pytest.raises(ValueError, match=r"data.normaliser is 'nltk'; choose one of study, "):
        normaliser("nltk")


def _karpathy(tmp_path):
    caption = {"raw": "Two dogs, 2 cats.", "tokens": ["two", "dogs", "2", "cats"]}
    images = [
        {"filename": f"{s}.jpg", "split": s, "sentences": [caption, {"raw": "A café!"}]}
        for s in ("train", "val", "test")
    ]
    path = tmp_path / "dataset_flickr8k.json"
    path.write_text(json.dumps({"images": images}))
    return path


@pytest.mark.parametrize(
    "name, first, second",
    [
        ("study", ["two", "dogs", "NUM", "cats"], ["a", "caf"]),
        ("karpathy", ["two", "dogs", "2", "cats"], ["a", "caf"]),  # the JSON's tokens as given
        ("keep_punct", ["two", "dogs", ",", "2", "cats", "."], ["a", "caf", "é", "!"]),
    ],
)
def test_karpathy_json_reader_applies_the_normaliser(tmp_path, name, first, second):
    ds = read_karpathy_json(_karpathy(tmp_path), normaliser_name=name)
    assert ds.normaliser == name
    assert ds.splits["train"][0].captions == [first, second]
    assert ds.splits["train"][0].raw == ["Two dogs, 2 cats.", "A café!"]  # as written


def test_flickr8k_token_file_reader_applies_the_normaliser(tmp_path):
    lines = ["a.jpg#0\tA dog's 3 toys .", "", "b.jpg#0\tCafé-au-lait , 2!", "c.jpg#0\tOk ."]
    (tmp_path / "tokens.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    splits = {}
    for split, name in (("train", "a.jpg"), ("val", "b.jpg"), ("test", "c.jpg")):
        splits[split] = tmp_path / f"{split}.txt"
        splits[split].write_text(name + "\n")
    ds = read_flickr8k_text(tmp_path / "tokens.txt", splits, normaliser_name="study")
    assert ds.sentences("train") == [["a", "dog", "s", "NUM", "toys"]]
    assert ds.sentences("val") == [["caf", "au", "lait", "NUM"]]
    ds = read_flickr8k_text(tmp_path / "tokens.txt", splits, normaliser_name="karpathy")
    assert ds.sentences("train") == [["a", "dog", "s", "3", "toys"]]  # no tokens given: a-z0-9


def test_corpora_use_the_caption_datasets_normaliser(tmp_path):
    """A text file and the captions it is compared with cannot be tokenised differently."""
    text = tmp_path / "corpus.txt"
    text.write_text("Two dogs, 2 cats.\n\nA café!\n" * 10, encoding="utf-8")
    cfg = OmegaConf.create(
        {"name": "t", "source": "textfile", "train_file": str(text), "val_file": str(text),
         "size_exponent": None, "min_word_freq": 1, "max_val_sentences": None}
    )  # fmt: skip
    for name in NORMALISERS:
        captions = read_karpathy_json(_karpathy(tmp_path), normaliser_name=name)
        corpus = build_corpus(cfg, captions, seed=1)
        assert corpus.info["normaliser"] == name
        assert corpus.val[:2] == [
            normaliser(name)("Two dogs, 2 cats."),
            normaliser(name)("A café!"),
        ]
        assert corpus.val[0] == captions.splits["train"][0].captions[0]
