"""The scenes captions: a rich, long-tailed language, every caption true of its scene, and
a caption checker that catches false ones."""

import re
from collections import Counter
from itertools import pairwise

import pytest

from caplm.data.scenes import ScenesConfig, extra_scenes, scene_records, statistics, truth
from caplm.data.scenes import lexicon as L
from caplm.data.scenes.grammar import MAX_WORDS, MIN_WORDS

DEFAULT = ScenesConfig()


@pytest.fixture(scope="module")
def train_records():
    """(objects, captions) of the default dataset's training split (no pictures drawn)."""
    return scene_records(DEFAULT, "train")


def _obj(category, colour, size, col, row):
    extent = sum(L.SIZES[size]) / 2
    return dict(category=category, colour=colour, size=size, col=col, row=row,
                x=(col + 0.5) / 3, y=(row + 0.5) / 3, extent=extent)  # fmt: skip


#: A hand-made scene: a top row of star, moon, ring; two hearts in the bottom corners.
SCENE = [
    _obj("star", "red", "large", 0, 0),
    _obj("moon", "green", "medium", 1, 0),
    _obj("ring", "blue", "small", 2, 0),
    _obj("heart", "yellow", "small", 0, 2),
    _obj("heart", "yellow", "large", 2, 2),
]


def test_vocabulary_is_rich_and_long_tailed(train_records):
    captions = [c for _, five in train_records for c in five]
    assert len(captions) == 5000
    s = statistics(captions)
    assert s["types"] >= 1000, s
    assert s["hapax_share"] >= 0.05 and s["rare_share"] >= 0.2, s  # a long tail of rare words
    assert -2.2 <= s["zipf_slope"] <= -0.9 and s["zipf_r2"] >= 0.8, s  # Zipf-like
    assert s["top10_share"] < 0.4, s
    assert MIN_WORDS == s["length_min"] and s["length_max"] == MAX_WORDS == 25, s
    assert 11 <= s["length_mean"] <= 19, s
    words = Counter(w for c in captions for w in c.split())
    assert all(re.fullmatch("[a-z]+", w) for w in words)
    for word in ["left", "above", "below", "between", "two", "three", "four", "that", "which",
                 "are", "is", "there", "crimson", "tiny", "huge", "star", "stars", "row"]:  # fmt: skip
        assert words[word] > 0, word
    # synonyms and paraphrases: every category, colour and size has several words in use
    for cat, nouns in L.NOUNS.items():
        assert sum(words[sg.split()[-1]] > 0 for sg, _ in nouns) >= 3, cat
    for colour, names in L.COLOUR_WORDS.items():
        assert sum(words[n.split()[0]] > 0 for n in names) >= 8, colour
    for size, names in L.SIZE_WORDS.items():
        assert sum(words[n.split()[0]] > 0 for n in names) >= 6, size


def test_captions_use_many_structures(train_records):
    counts = Counter()
    for _, five in train_records[:400]:
        for c in five:
            p = truth.parse(c)
            counts["relation"] += bool(p.relations)
            counts["relative clause"] += " that " in f" {c} " or " which " in f" {c} "
            counts["coordination"] += " and " in c
            counts["count"] += any(m.count is not None for m in p.mentions)
            counts["between"] += bool(p.betweens)
            counts["order"] += bool(p.orders)
            counts["arrangement"] += bool(p.arrangements)
            counts["place"] += any(m.regions for m in p.mentions)
            counts["plural"] += any(m.plural for m in p.mentions)
    for structure, n in counts.items():
        assert n >= (10 if structure == "between" else 40), (structure, counts)


def test_every_caption_is_true_of_its_own_scene(train_records):
    failures = []
    for objects, captions in [*train_records, *extra_scenes(DEFAULT, 300, "val")]:
        for caption in captions:
            parsed = truth.parse(caption)
            checks = truth.check(parsed, objects)
            bad = [c.what for c in checks if not c.ok]
            if not checks or bad or parsed.agreement_errors:
                failures.append((caption, bad, parsed.agreement_errors, objects))
    assert failures == []


def test_articles_agree_with_the_next_word(train_records):
    for _, captions in train_records[:500]:
        for caption in captions:
            words = caption.split()
            for a, b in pairwise(words):
                if a in ("a", "an"):
                    assert (a == "an") == (b[0] in "aeiou"), caption


@pytest.mark.parametrize(
    "caption",
    [
        "a large red star to the left of a small blue ring",
        "the red star is in the top left corner",
        "there are two yellow hearts at the bottom",
        "the green moon is between the red star and the blue ring",
        "from left to right a red star then a green moon and finally a blue ring",
        "the red star that is above a yellow heart is large",
        "the two hearts are of different sizes",
        "a red star and a blue ring in a row",
        "the blue ring is smaller than the red star",
        "there are five shapes in total but no purple shapes",
        "above the tiny yellow heart there is a crimson star",
        "a red star a green moon a blue ring and two yellow hearts and nothing else",
        "the star and the ring are both in the top row",
        "a crescent the colour of fresh grass sits right of a star",
        "the two hearts are below the blue ring",
    ],
)
def test_true_captions_pass(caption):
    g = truth.grounding(caption, SCENE)
    assert g["all_true"], [(c.kind, c.what) for c in truth.check(caption, SCENE) if not c.ok]


@pytest.mark.parametrize(
    "caption, kind",
    [
        ("a large green star to the left of a small blue ring", "colour"),
        ("a red square in the top left corner", "object"),
        ("a small red star", "size"),
        ("there are three yellow hearts", "count"),
        ("a single yellow heart", "count"),
        ("there are four shapes", "count"),
        ("no green shapes", "count"),
        ("a red star to the right of a blue ring", "relation"),
        ("the blue ring is above the red star", "relation"),
        ("the blue ring is bigger than the red star", "relation"),
        ("the blue ring is between the red star and the green moon", "relation"),
        ("from left to right a blue ring then a red star", "relation"),
        ("the two hearts are to the left of the blue ring", "relation"),
        ("the red star is in the middle", "position"),
        ("the two hearts are all the same size", "arrangement"),
        ("a red star and a yellow heart in a row", "arrangement"),
        ("a red star and a blue ring and nothing else", "arrangement"),
        ("the red star that is above a yellow heart is small", "size"),
        ("a white star", "colour"),
        ("above the blue ring there is a red star", "relation"),
    ],
)
def test_false_captions_are_caught(caption, kind):
    checks = truth.check(caption, SCENE)
    assert not truth.grounding(caption, SCENE)["all_true"]
    assert any(c.kind == kind and not c.ok for c in checks), [
        (c.kind, c.ok, c.what) for c in checks
    ]


def test_parse_reads_nested_clauses_and_coordination():
    p = truth.parse("the star that is above the ring is red and the moon is blue")
    (relation,) = p.relations
    assert relation[0] == "above" and relation[1][0].category == "star"
    assert relation[2].category == "ring" and relation[1][0].colours == ["red"]
    assert p.mentions[2].category == "moon" and p.mentions[2].colours == ["blue"]
    p = truth.parse("a red star that sits left of a blue ring which lies above a tiny moon")
    assert [(r[0], r[1][0].category, r[2].category) for r in p.relations] == [
        ("left", "star", "ring"), ("above", "ring", "moon")]  # fmt: skip
    p = truth.parse("the star and the two rings are below a moon")
    assert sorted(m.category for m in p.relations[0][1]) == ["ring", "star"]
    assert p.mentions[1].count == 2 and p.mentions[1].plural
    p = truth.parse("a heart shaped icon in the shape of a valentine card")
    assert p.mentions[0].shaped == "heart" and len(p.mentions) == 1
    p = truth.parse("a hollow circle and a circle")
    assert [m.category for m in p.mentions] == ["ring", "circle"]


def test_agreement_errors_are_found():
    assert truth.parse("there is two red stars").agreement_errors
    assert truth.parse("there are a red star").agreement_errors
    assert truth.parse("the stars is above the ring").agreement_errors
    assert truth.parse("the star and the ring is red").agreement_errors
    assert not truth.parse("the star and the ring are red").agreement_errors
    assert not truth.parse("there are two fish and a star").agreement_errors


def _replace(caption, start, end, words):
    tokens = caption.split()
    return " ".join([*tokens[:start], words, *tokens[end:]])


def test_mutated_reference_captions_are_caught():
    """In scenes whose objects differ in category, colour and size, changing one colour,
    count or direction makes a true caption false: the checker reads what the grammar
    writes."""
    opposite = {"left": "to the right of", "right": "to the left of", "above": "below",
                "below": "above", "directly_above": "below", "directly_below": "above"}  # fmt: skip
    changed = Counter()
    for objects, captions in extra_scenes(DEFAULT, 1500, "train"):
        if any(len({o[k] for o in objects}) < len(objects) for k in ("category", "colour", "size")):
            continue  # every attribute picks out one object: no other object can make it true
        absent = [c for c in L.COLOURS if all(o["colour"] != c for o in objects)]
        for caption in captions:
            if re.search(r"\b(no|not)\b", caption):
                continue
            items = truth.segment(caption.split())
            for k, (kind, value, start, end) in enumerate(items):
                ahead = [i[0] for i in items[k + 1 :] if i[0] not in (*truth.CHAIN, "DET")]
                if kind == "COLOUR" and value in L.COLOURS and absent:
                    new = _replace(caption, start, end, absent[0])
                elif kind == "REL" and value in opposite:
                    new = _replace(caption, start, end, opposite[value])
                elif kind == "COUNT" and value in (1, 2, 3, 4) and ahead[:1] == ["NOUN"]:
                    new = _replace(caption, start, end, L.COUNT_FORMS[value % 4 + 1][0])
                else:
                    continue
                assert not truth.grounding(new, objects)["all_true"], (caption, new, objects)
                changed[kind] += 1
    assert min(changed.values()) >= 30 and len(changed) == 3, changed


def test_grounding_scores_on_references_and_on_other_scenes(train_records):
    scenes = {f"i{k}": objects for k, (objects, _) in enumerate(train_records[:300])}
    refs = {f"i{k}": five[0] for k, (_, five) in enumerate(train_records[:300])}
    scores = truth.grounding_scores(refs, scenes)
    assert scores["object_precision"] == 1.0 and scores["all_true_frac"] == 1.0
    assert scores["claim_precision"] == 1.0 and 0.2 < scores["object_recall"] < 1.0
    for kind in ("colour", "size", "count", "position", "relation", "arrangement"):
        assert scores[f"{kind}_claims"] > 0 and scores[f"{kind}_precision"] == 1.0, kind
    shifted = {f"i{k}": refs[f"i{(k + 1) % 300}"] for k in range(300)}  # other scenes' captions
    wrong = truth.grounding_scores(shifted, scenes)
    assert wrong["object_precision"] < 0.5 and wrong["all_true_frac"] < 0.2
    assert tuple(scores) == truth.SCORE_KEYS
    tokens = {k: v.split() for k, v in refs.items()}  # token lists, as the evaluation passes
    assert truth.grounding_scores(tokens, scenes) == scores
    empty = truth.grounding_scores({"i0": ["<unk>", "shape"]}, scenes)
    assert empty["all_true_frac"] == 0.0 and empty["object_precision"] == 0.0


def test_lexicon_is_clean_and_unambiguous():
    for phrase in truth.TABLE:
        assert all(re.fullmatch("[a-z]+", w) for w in phrase), phrase
    # every word and phrase the grammar uses for a category, colour or size reads back as it
    for cat, nouns in L.NOUNS.items():
        for sg, pl in nouns:
            assert truth.TABLE[tuple(sg.split())][1][0] == cat
            assert truth.TABLE[tuple(pl.split())][1][0] == cat
    for colour, words in L.COLOUR_WORDS.items():
        for w in (*words, *L.COLOUR_SIMILES[colour]):
            assert truth.TABLE[tuple(w.split())] == ("COLOUR", colour), w
    for size, words in L.SIZE_WORDS.items():
        for w in (*words, *L.SIZE_POST[size]):
            assert truth.TABLE[tuple(w.split())] == ("SIZE", size), w
    for rel, phrases in L.RELATIONS.items():
        for w in phrases:
            assert truth.TABLE[tuple(w.split())] == ("REL", rel), w
