"""corpus.dedup (caplm.data.dedup and the corpus it shapes): exact and near duplicates on
hand-built sentences, the threshold's edge, and the size control after it."""

import pytest

from caplm.data.corpora import build_corpus, outside_design
from caplm.data.dedup import check, deduplicate, jaccard, shingles
from caplm.runtime.jobs import job_identity

W = [f"w{i}" for i in range(12)]
NEAR = {"threshold": 0.8, "ngram": 1, "num_perm": 128}


def test_exact_keeps_the_first_of_identical_sentences_in_order():
    s = [["a", "red", "circle"], ["a", "blue", "square"], ["a", "red", "circle"],
         ["a", "red", "circle", "."], ["a", "blue", "square"]]  # fmt: skip
    kept, removed = deduplicate(s, "exact")
    assert kept == [s[0], s[1], s[3]] and removed == 2
    assert deduplicate(s, "none") == (s, 0)


def test_shingles_and_jaccard():
    assert shingles(["a", "b", "c", "d"], 2) == {("a", "b"), ("b", "c"), ("c", "d")}
    assert shingles(["a"], 3) == {("a",)}  # fewer words than n: one n-gram
    assert jaccard(frozenset("abcd"), frozenset("abce")) == 3 / 5


def test_near_removes_at_the_threshold_and_keeps_just_below_it():
    base = W[:8]
    at = W[:8] + W[8:10]  # 8 shared of 10 unigrams: Jaccard exactly 0.8
    below = W[:8] + W[8:11]  # 8 of 11: 0.727
    far = W[4:12]  # 4 of 12: 0.333
    assert jaccard(shingles(base, 1), shingles(at, 1)) == 0.8
    kept, removed = deduplicate([base, at, below, far], "near", NEAR)
    assert kept == [base, below, far] and removed == 1
    # just above 0.8, 'at' stays, and 'below' (10 of its 11 words in 'at': 0.909) goes as
    # a near-duplicate of the kept 'at'
    kept, _ = deduplicate([base, at, below, far], "near", {**NEAR, "threshold": 0.81})
    assert kept == [base, at, far]
    # at 0.7 'below' goes too; 'far' stays whatever the threshold down to its own similarity
    kept, removed = deduplicate([base, at, below, far], "near", {**NEAR, "threshold": 0.7})
    assert kept == [base, far] and removed == 2


def test_near_compares_with_kept_sentences_and_counts_exact_ones_too():
    a = "a big red circle is above a small blue square".split()
    a2 = "a big red circle is above a small blue square .".split()  # 3-grams: 8 of 9 shared
    b = "two green triangles are left of a yellow star".split()
    kept, removed = deduplicate([a, b, a, a2, b], "near", {**NEAR, "ngram": 3})
    assert kept == [a, b] and removed == 3
    assert deduplicate([a, b, a, a2, b], "exact")[1] == 2


@pytest.mark.parametrize(
    "method, near, message",
    [
        ("fuzzy", None, "corpus.dedup is 'fuzzy'; one of none, exact, near"),
        ("near", {"threshold": 0.8}, "needs corpus.dedup_near.ngram, num_perm"),
        ("near", {**NEAR, "threshold": 1.5}, "threshold is 1.5; in (0, 1]"),
        ("near", {**NEAR, "ngram": 0}, "ngram is 0; an integer >= 1"),
    ],
)
def test_bad_settings_are_named(method, near, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check(method, near)


def test_dedup_comes_before_the_size_control_and_is_recorded(make_cfg, tmp_path):
    from caplm.data.readers import load_caption_dataset

    cfg = make_cfg(["corpus=shapes_extra", "corpus.num_scenes=100", "corpus.val_scenes=4"])
    dataset = load_caption_dataset(cfg.data, tmp_path / "cache")
    plain = build_corpus(cfg.corpus, dataset, 1, tmp_path / "cache")
    cfg.corpus.dedup = "exact"
    exact = build_corpus(cfg.corpus, dataset, 1, tmp_path / "cache")
    n = len(dataset.sentences("train"))
    assert len(plain.train) == len(exact.train) == n  # round(10^0 x n) either way
    assert plain.info["dedup_removed"] == 0 and plain.info["dedup"] == "none"
    removed = exact.info["dedup_removed"]
    assert removed > 0 and exact.info["pool_size"] == plain.info["pool_size"] - removed
    assert len({tuple(s) for s in exact.train}) == n  # no sentence twice
    assert exact.val == plain.val  # the validation text is never deduplicated
    cfg.corpus.size_exponent = 0.7  # more than the deduplicated pool holds
    with pytest.raises(ValueError, match="corpus.dedup=exact left .* pool sentences, fewer"):
        build_corpus(cfg.corpus, dataset, 1, tmp_path / "cache")


def test_the_caption_set_is_never_deduplicated_and_none_leaves_the_job_as_it_was(make_cfg):
    cfg = make_cfg(["corpus=captions", "corpus.dedup=exact"])
    assert "never deduplicated" in outside_design(cfg.corpus)
    base = job_identity(make_cfg(["transfer=init", "corpus=shapes_extra"]))
    assert "dedup" not in base["corpus"] and "dedup_near" not in base["corpus"]
    near = job_identity(make_cfg(["transfer=init", "corpus=shapes_extra", "corpus.dedup=near"]))
    assert near["corpus"].pop("dedup") == "near" and near["corpus"].pop("dedup_near")
    assert near == base
