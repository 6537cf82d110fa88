"""The scenes LM corpora: the out-of-domain news text, and the vocabulary statistics."""

import re

import pytest

from caplm.data.scenes import (
    ScenesConfig,
    as_tokens,
    news_sentences,
    scene_records,
    statistics,
)
from caplm.data.scenes import lexicon as L
from caplm.data.scenes.news import SLOTS, TEMPLATES, news_sentence

WORDS = re.compile(r"[a-z]+( [a-z]+)*")


@pytest.fixture(scope="module")
def news():
    return news_sentences(0, 6000)


@pytest.fixture(scope="module")
def caption_words():
    records = scene_records(ScenesConfig(num_train=400), "train")
    return {w for _, five in records for c in five for w in c.split()}


def test_news_is_seeded_clean_and_varied(news):
    assert news[:50] == news_sentences(0, 50)  # a prefix: the i-th does not depend on num
    assert news_sentences(1, 50) != news[:50]
    assert news_sentence(0, "train", 7) == news[7]
    val = news_sentences(0, 500, "val")
    assert val != news[:500] and len(set(val) & set(news)) < 0.05 * len(val)
    assert all(WORDS.fullmatch(s) for s in news)
    s = statistics(news)
    assert 6 <= s["length_min"] and s["length_max"] <= 40 and 10 <= s["length_mean"] <= 25, s
    assert s["types"] >= 1000 and len(set(news)) > 0.95 * len(news), s
    with pytest.raises(ValueError, match="part = 'test'"):
        news_sentences(0, 5, "test")


def test_news_shares_part_but_not_all_of_the_caption_vocabulary(news, caption_words):
    news_words = {w for s in news for w in s.split()}
    shared = news_words & caption_words
    assert len(shared) >= 100
    # colours, numbers, sizes, directions, some of the objects and function words are shared
    for word in ["red", "blue", "green", "yellow", "black", "two", "three", "four", "small",
                 "large", "left", "north", "above", "star", "house", "tree", "fish", "the", "of",
                 "and", "is"]:  # fmt: skip
        assert word in shared, word
    assert len(news_words - caption_words) >= 0.6 * len(news_words)  # another domain
    assert len(caption_words - news_words) >= 0.6 * len(caption_words)
    # and none of the captions' frames or spatial templates
    text = "\n".join(news)
    for phrase in ["there is a", "a picture of", "in this image", "to the left of", "we can see"]:
        assert phrase not in text, phrase


def test_news_templates_expand(news):
    for topic, templates in TEMPLATES.items():
        assert len(templates) >= 4, topic
    used = {w for s in news for w in s.split()}
    assert "percent" in used and "weather" in used and "council" in used
    assert all("{" not in s for s in news)
    assert set(SLOTS) >= {"num", "time", "person", "org", "region"}


def test_news_cache_is_reused(tmp_path):
    first = news_sentences(3, 20, cache_dir=tmp_path)
    (path,) = (tmp_path / "scenes").glob("news-*.txt")
    assert path.read_text().splitlines() == first
    path.write_text("".join(f"cached {i}\n" for i in range(20)))
    assert news_sentences(3, 20, cache_dir=tmp_path)[0] == "cached 0"
    assert news_sentences(3, 21, cache_dir=tmp_path)[0] == first[0]  # another size: its own


def test_statistics_of_a_known_text():
    s = statistics(["a a a a b b c", "a b d"])
    assert s["sentences"] == 2 and s["tokens"] == 10 and s["types"] == 4
    assert s["hapax"] == 2 and s["hapax_share"] == 0.5
    assert s["length_min"] == 3 and s["length_max"] == 7 and s["length_mean"] == 5
    assert s["zipf_slope"] < 0 and 0 < s["zipf_r2"] <= 1
    assert statistics([["x", "y"], ["x"]])["types"] == 2
    with pytest.raises(ValueError):
        statistics([])
    assert as_tokens(["a red star", "two  rings"]) == [["a", "red", "star"], ["two", "rings"]]


def test_colour_words_of_the_captions_appear_in_the_news(news):
    news_words = {w for s in news for w in s.split()}
    assert sum(c in news_words for c in L.COLOURS) >= 6
