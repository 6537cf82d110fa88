"""Scoring sentences in batches bounded by the output layer's size."""

import numpy as np
import torch

import caplm.evaluation.evaluate as evaluate
from caplm.data.text import Vocabulary
from caplm.models.language_model import LanguageModel


def _lm_and_sentences(n=40):
    rng = np.random.default_rng(0)
    words = [f"w{chr(97 + i)}" for i in range(20)]
    sentences = [list(rng.choice(words, rng.integers(1, 12))) for _ in range(n)]
    vocab = Vocabulary.build(sentences)
    torch.manual_seed(0)
    lm = LanguageModel(len(vocab), embed_size=8, rnn_size=8).eval()
    return lm, vocab, sentences


def test_a_large_vocabulary_gets_smaller_batches_with_the_same_log_probabilities(monkeypatch):
    lm, vocab, sentences = _lm_and_sentences()
    shapes = []

    def score(inputs, targets):
        shapes.append(tuple(inputs.shape))
        return lm.token_logprobs(inputs, targets)

    whole = evaluate.sentence_logprobs(score, sentences, vocab)
    assert [b for b, _ in shapes] == [len(sentences)]  # one batch of 256 at most
    budget = 5 * 13 * len(vocab)  # about five of the longest sentences a batch
    monkeypatch.setattr(evaluate, "LOGIT_BUDGET", budget)
    shapes.clear()
    bounded = evaluate.sentence_logprobs(score, sentences, vocab)
    assert len(shapes) >= len(sentences) // 5 and sum(b for b, _ in shapes) == len(sentences)
    assert all(b * t * len(vocab) <= budget for b, t in shapes)
    assert len(bounded) == len(whole)
    for a, b in zip(bounded, whole, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_budget_below_one_sentence_still_scores_one_at_a_time(monkeypatch):
    lm, vocab, sentences = _lm_and_sentences(6)
    monkeypatch.setattr(evaluate, "LOGIT_BUDGET", 1)
    sizes = []

    def score(inputs, targets):
        sizes.append(len(inputs))
        return lm.token_logprobs(inputs, targets)

    out = evaluate.sentence_logprobs(score, sentences, vocab)
    assert sizes == [1] * 6 and [len(x) for x in out] == [len(s) + 1 for s in sentences]
