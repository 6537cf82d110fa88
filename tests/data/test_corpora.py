import json
import logging

import pytest
from omegaconf import OmegaConf

from caplm.data.corpora import build_corpus, corpus_size, read_sentences, subsample
from caplm.data.text import tokenize
from caplm.data.types import CaptionDataset, CaptionImage


def _captions(n_train=20, n_val=4):
    def images(split, n):
        return [
            CaptionImage(f"{split}{i}", [[split, "caption", str(i)]], [f"{split} caption {i}"])
            for i in range(n)
        ]

    return CaptionDataset(
        "toy",
        {"train": images("train", n_train), "val": images("val", n_val), "test": images("test", 3)},
        key="toy",
    )


def _cfg(**kw):
    base = {
        "name": "c",
        "source": "captions",
        "size_exponent": 0,
        "min_word_freq": 1,
        "max_val_sentences": 100,
    }
    return OmegaConf.create({**base, **kw})


@pytest.mark.parametrize(
    "e, expected", [(-1, 3000), (-0.5, 9487), (0, 30000), (0.5, 94868), (1, 300000)]
)
def test_corpus_size_matches_the_study(e, expected):
    # the study's sizes for a 30,000-sentence caption training set
    assert corpus_size(e, 30000, pool_size=10**6) == expected


def test_null_exponent_takes_the_whole_pool():
    assert corpus_size(None, 30000, pool_size=1234) == 1234


def test_subsample_is_deterministic_by_seed():
    pool = list(range(100))
    a, b, c = subsample(pool, 10, 1, "x"), subsample(pool, 10, 1, "x"), subsample(pool, 10, 2, "x")
    assert a == b and a != c and len(set(a)) == 10


def test_asking_for_more_than_the_pool_names_both_numbers():
    with pytest.raises(
        ValueError,
        match=r"= 63 LM training sentences, but it must be 1 to 20 "
        r"\(the corpus's pool\); set corpus.size_exponent between -1.602 and 0.01,",
    ):
        build_corpus(_cfg(size_exponent=0.5), _captions(), seed=1)


def test_captions_corpus_uses_train_captions_only_and_val_for_validation():
    corpus = build_corpus(_cfg(size_exponent=-0.5), _captions(), seed=1)
    assert len(corpus.train) == round(10**-0.5 * 20)  # 6
    assert all(s[0] == "train" for s in corpus.train)
    assert all(s[0] == "val" for s in corpus.val) and len(corpus.val) == 4


def test_textfile_holds_out_a_fixed_validation_part(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("\n".join(f"Sentence number {i}." for i in range(200)) + "\n\n")
    cfg = _cfg(source="textfile", train_file=str(text), val_fraction=0.1, size_exponent=0)
    a = build_corpus(cfg, _captions(n_train=20), seed=1)
    b = build_corpus(cfg, _captions(n_train=20), seed=2)
    assert a.val == b.val and len(a.val) == 20  # fixed across runs
    assert len(a.train) == 20 and a.train != b.train  # shuffled by the run's seed
    assert not {tuple(s) for s in a.train} & {tuple(s) for s in a.val}


def test_missing_text_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.txt"):
        read_sentences(tmp_path / "nothere.txt", tokenize)


def test_blank_lines_are_dropped_and_counted(tmp_path, caplog):
    text = tmp_path / "text.txt"
    text.write_text("One. Two!\n\n   \n\t\nThree, four ...\n* * *\n", encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="caplm.data.corpora"):
        sentences = read_sentences(text, tokenize)
    # sentences are kept as tokenised, in order (punctuation is a token, as in captions)
    assert sentences == [
        ["one", ".", "two", "!"],
        ["three", ",", "four", ".", ".", "."],
        ["*", "*", "*"],
    ]
    assert f"{text}: dropped 3 of 6 lines with no words after normalisation" in caplog.text
    caplog.clear()
    text.write_text("a b\nc\n")
    with caplog.at_level(logging.INFO, logger="caplm.data.corpora"):
        assert read_sentences(text, tokenize) == [["a", "b"], ["c"]]
    assert "dropped" not in caplog.text
    text.write_text("\n \n")
    with pytest.raises(ValueError, match=f"{text}: corpus text file has no sentences"):
        read_sentences(text, tokenize)


@pytest.mark.parametrize("which", ["train_file", "val_file"])
def test_a_corpus_file_that_is_not_utf8_names_file_and_byte(tmp_path, which):
    files = {}
    for name in ("train_file", "val_file"):
        files[name] = tmp_path / f"{name}.txt"
        files[name].write_text("A first sentence.\nA second one.\n", encoding="utf-8")
    files[which].write_bytes("A first sentence.\nUn caf\xe9 noir.\n".encode("latin-1"))
    offset = files[which].read_bytes().index(b"\xe9")
    cfg = _cfg(source="textfile", **{k: str(v) for k, v in files.items()}, size_exponent=None)
    with pytest.raises(ValueError) as err:
        build_corpus(cfg, _captions(), seed=1)
    assert str(err.value).startswith(
        f"{files[which]}: not UTF-8 text: the byte at offset {offset} (line 2) is 0xe9"
    )
    assert "the file must be UTF-8" in str(err.value)
    # in UTF-8 the text is read as written (the tokenizer splits off the "é", as ever)
    files[which].write_text("Un café noir.\n", encoding="utf-8")
    corpus = build_corpus(cfg, _captions(), seed=1)
    sentences = corpus.train if which == "train_file" else corpus.val
    assert sentences == [["un", "caf", "é", "noir", "."]]


def test_unknown_source_lists_the_known_ones():
    with pytest.raises(
        ValueError,
        match="captions, caption_dataset, extra, shapes_extra, scenes_extra, scenes_news, textfile, lm1b",
    ):
        build_corpus(_cfg(source="web"), _captions(), seed=1)


def test_sentence_splitter_keeps_abbreviations_inside_sentences():
    from caplm.data.fetch_corpora import split_sentences

    text = 'Fellow-Citizens: we meet again.  Mr. Smith went to the U.S. Congress!\nIs it so? "Yes."'
    assert split_sentences(text) == [
        "Fellow-Citizens: we meet again.",
        "Mr. Smith went to the U.S. Congress!",
        "Is it so?",
        '"Yes."',
    ]


# -- the study's corpora: lm1b folders and another caption dataset ---------------------------


def _lm1b(root, train_shards=3):
    """A tiny copy of the benchmark's layout: training shards and held-out shards."""
    from caplm.data.corpora import LM1B_HELDOUT, LM1B_TRAIN

    for i in range(1, train_shards + 1):
        shard = root / LM1B_TRAIN.format(i)
        shard.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"Shard {i} line {k} : the U.S. sold {k},000 cars ." for k in range(5)]
        lines += ["Hi .", "", " ".join(["word"] * 51), "Naïve résumé of 3 items ."]
        shard.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for i in range(3):
        held = root / LM1B_HELDOUT.format(i)
        held.parent.mkdir(parents=True, exist_ok=True)
        held.write_text(f"Held out {i} sentence one .\nHeld out {i} two !\n", encoding="utf-8")


def _study_captions(n_train=20):
    ds = _captions(n_train)
    ds.normaliser = "study"
    return ds


def test_lm1b_reads_its_shards_with_the_studys_length_bounds(tmp_path):
    _lm1b(tmp_path)
    cfg = _cfg(source="lm1b", root=str(tmp_path), train_shards=2, val_shards=[1, 2],
               min_words=2, max_words=50, size_exponent=None)  # fmt: skip
    corpus = build_corpus(cfg, _study_captions(), seed=1)
    # per shard: 5 numbered lines + the résumé line; "Hi ." has 1 word, the 51-word line is
    # over the bound, the blank line has none; shard 3 is not read
    assert corpus.info["pool_size"] == 12 and len(corpus.train) == 12
    assert sorted(corpus.train)[0] == ["na", "ve", "r", "sum", "of", "NUM", "items"]
    assert ["shard", "NUM", "line", "NUM", "the", "u", "s", "sold", "NUM", "cars"] in corpus.train
    assert not any(s[:2] == ["shard", "NUM"] and len(s) > 10 for s in corpus.train)
    assert corpus.val == [
        ["held", "out", "NUM", "sentence", "one"], ["held", "out", "NUM", "two"],
    ] * 2  # fmt: skip
    with pytest.raises(FileNotFoundError, match="corpus.root"):
        build_corpus(_cfg(source="lm1b", root=str(tmp_path / "no"), train_shards=1,
                          val_shards=[1]), _study_captions(), seed=1)  # fmt: skip
    with pytest.raises(FileNotFoundError, match="news.en-00004-of-00100"):
        build_corpus(_cfg(source="lm1b", root=str(tmp_path), train_shards=4, val_shards=[1]),
                     _study_captions(), seed=1)  # fmt: skip


def test_another_caption_datasets_train_captions_are_a_corpus(tmp_path):
    images = [
        {"filename": f"{s}{k}.jpg", "split": s, "sentences": [{"raw": f"A {s} caption, {k}!"}]}
        for s in ("train", "val", "test", "restval")
        for k in range(3)
    ]
    path = tmp_path / "dataset_coco.json"
    path.write_text(json.dumps({"images": images}))
    dataset = {"format": "karpathy_json", "annotations": str(path), "restval": "train"}
    corpus = build_corpus(_cfg(source="caption_dataset", dataset=dataset, size_exponent=None),
                          _study_captions(), seed=1, cache_dir=tmp_path)  # fmt: skip
    # the caption dataset's normaliser (study) is used, whatever the corpus's dataset says
    assert sorted(corpus.train) == sorted(
        [["a", s, "caption", "NUM"] for s in ("train", "restval") for _ in range(3)]
    )
    assert corpus.val == [["a", "val", "caption", "NUM"]] * 3  # never test captions
    with pytest.raises(ValueError, match="needs corpus.dataset"):
        build_corpus(_cfg(source="caption_dataset"), _study_captions(), seed=1)


def test_validation_sampling_is_explicit_and_independent_of_order():
    from caplm.data.corpora import sample_by_content

    sentences = [["s", str(i)] for i in range(50)]
    assert sample_by_content(sentences, None) is sentences  # the default: all of them
    assert sample_by_content(sentences, 50) == sentences
    a = sample_by_content(sentences, 10)
    b = sample_by_content(sentences[::-1], 10)
    assert len(a) == 10 and sorted(a) == sorted(b)  # the same subset in any order
    assert a == [s for s in sentences if s in a]  # kept in the given order
    corpus = build_corpus(_cfg(max_val_sentences=3), _captions(n_val=4), seed=1)
    assert len(corpus.val) == 3
    assert corpus.info["val_sentences_available"] == 4 and corpus.info["max_val_sentences"] == 3
