"""End to end on the second generated dataset: data=scenes with its in-domain and
out-of-domain corpora, grounding by its own checker."""

import pytest

from caplm.results import grounding_key, pplx_key
from caplm.train import run

SCENE_CORPORA = {
    "scenes_extra": ["corpus.num_scenes=100", "corpus.val_scenes=4"],
    "scenes_news": ["corpus.num_sentences=500", "corpus.val_sentences=40"],
}


@pytest.mark.parametrize("corpus", SCENE_CORPORA)
def test_a_scenes_job_runs_with_each_of_its_corpora(make_cfg, corpus):
    cfg = make_cfg(["data=scenes", f"corpus={corpus}", *SCENE_CORPORA[corpus],
                    "corpus.size_exponent=0.5", "transfer=frozen"])  # fmt: skip
    assert cfg.generation.max_len == 25  # the scenes captions have up to 25 words
    results = run(cfg)
    assert results["job/data"] == "scenes" and results["job/corpus"] == corpus
    assert results["lm/corpus_size"] == round(10**0.5 * 24 * 5)
    assert results[pplx_key("lm", "captest")] > 1
    for name in ("object_precision", "object_recall", "all_true_frac", "claim_precision"):
        assert 0.0 <= results[grounding_key("scenes", name)] <= 1.0
    # the news corpus shares only part of the captions' words; the in-domain one nearly all
    oov = results["lm/captest_oov_type_rate"]
    assert oov > 0.3 if corpus == "scenes_news" else oov < 0.3


@pytest.mark.parametrize("data", ["shapes", "scenes"])
def test_corpus_extra_is_each_datasets_own_in_domain_corpus(make_lm_cfg, data):
    """corpus=extra lets data=shapes,scenes sweep one corpus axis: it is the same text (the
    same cached LM) as shapes_extra / scenes_extra."""
    from caplm import lm as lm_entry

    tiny = ["corpus.num_scenes=100", "corpus.val_scenes=4", "seed=2"]
    generic = lm_entry.run(make_lm_cfg([f"data={data}", "corpus=extra", *tiny], job="extra"))
    own = lm_entry.run(make_lm_cfg([f"data={data}", f"corpus={data}_extra", *tiny], job="own"))
    assert generic["lm/cache_key"] == own["lm/cache_key"] and own["lm/trained_here"] is False
    assert generic["lm/pool_size"] == 500
