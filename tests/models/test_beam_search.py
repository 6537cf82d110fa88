"""Batched beam search against independent, unbatched reference decoders.

The models here are plain functions: per-image bigram tables and tiny random RNNs whose
state carries a per-image context (as the caption generator carries the image). Everything
runs in float64 so that comparisons are exact up to rounding.
"""

import math

import pytest
import torch

from caplm.data.text import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from caplm.models.beam_search import SearchRules, _search, beam_search

RULES_OFF = dict(min_len=0, max_len=8, forbid=(), no_repeat=False)
RULES_ON = dict(min_len=2, max_len=6, forbid=(UNK_ID,), no_repeat=True)


class TableModel:
    """log p(next | prev, image) from one bigram table per image; the state holds the image."""

    def __init__(self, logp: torch.Tensor):  # (images, V, V)
        self.logp = logp

    def init_state(self, images):
        return torch.tensor(images, dtype=torch.float64).view(1, -1, 1)

    def step(self, prev, state):
        return self.logp[state[0, :, 0].long(), prev], state


class RNNModel:
    """A tiny tanh RNN; state = (h, image context), both (1, N, .)."""

    def __init__(self, g: torch.Generator, images: int, V: int, H: int = 6, C: int = 3):
        def randn(*shape, scale=1.0):
            return torch.randn(*shape, generator=g, dtype=torch.float64) * scale

        self.E, self.Wx, self.Wh = randn(V, H), randn(H, H, scale=0.7), randn(H, H, scale=0.7)
        self.Wc, self.Wo = randn(C, H), randn(H, V, scale=float(torch.rand(1, generator=g)) * 3)
        self.h0, self.ctx = randn(images, H), randn(images, C)

    def init_state(self, images):
        return self.h0[images][None], self.ctx[images][None]

    def step(self, prev, state):
        h, ctx = state
        h = torch.tanh(self.E[prev] @ self.Wx + h[0] @ self.Wh + ctx[0] @ self.Wc)
        return (h @ self.Wo).log_softmax(-1), (h[None], ctx)


def random_model(seed: int, images: int):
    g = torch.Generator().manual_seed(seed)
    V = int(torch.randint(7, 13, (1,), generator=g))
    if seed % 2:
        return RNNModel(g, images, V)
    scale = 1 + 3 * float(torch.rand(1, generator=g))
    logits = torch.randn(images, V, V, generator=g, dtype=torch.float64) * scale
    return TableModel(logits.log_softmax(-1))


def model_logprob(model, image: int, words: list[int]) -> float:
    """log p(words + <eos> | image), one token at a time."""
    state, prev, total = model.init_state([image]), BOS_ID, 0.0
    for w in [*words, EOS_ID]:
        logp, state = model.step(torch.tensor([prev]), state)
        total += logp[0, w].item()
        prev = w
    return total


def greedy(model, image: int, min_len, max_len, forbid, no_repeat) -> tuple[list[int], float]:
    """Reference greedy decoding under the rules, for one image."""
    state, prev, words, total = model.init_state([image]), BOS_ID, [], 0.0
    while True:
        logp, state = model.step(torch.tensor([prev]), state)
        logp = logp[0].clone()
        banned = {PAD_ID, BOS_ID, *forbid} | ({prev} if no_repeat else set())
        if len(words) < min_len:
            banned.add(EOS_ID)
        if len(words) == max_len:
            banned = set(range(len(logp))) - {EOS_ID}
        logp[list(banned)] = -math.inf
        w = int(logp.argmax())
        total += logp[w].item()
        if w == EOS_ID:
            return words, total
        words.append(w)
        prev = w


def search(model, images, k, **rules):
    return beam_search(model.step, model.init_state(images), len(images), SearchRules(k, **rules))


def assert_obeys(caption, min_len, max_len, forbid, no_repeat):
    assert min_len <= len(caption) <= max_len
    assert not {PAD_ID, BOS_ID, EOS_ID, *forbid} & set(caption)
    if no_repeat:
        assert all(a != b for a, b in zip(caption, caption[1:], strict=False))


@pytest.mark.parametrize("seed", range(50))
def test_random_models_beam_beats_greedy_and_scores_are_true_logprobs(seed):
    images = [0, 1, 2]
    model = random_model(seed, len(images))
    for rules in (RULES_OFF, RULES_ON):
        refs = [greedy(model, i, **rules) for i in images]
        captions, logprobs = search(model, images, 1, **rules)
        assert captions == [words for words, _ in refs]  # width 1 is greedy
        for k in (2, 3, 5):
            captions, logprobs = search(model, images, k, **rules)
            assert logprobs.shape == (len(images),)
            for i, caption in enumerate(captions):
                assert logprobs[i].item() == pytest.approx(
                    model_logprob(model, i, caption), abs=1e-9
                )
                assert logprobs[i].item() >= refs[i][1] - 1e-9
                assert_obeys(caption, **(rules if rules is RULES_ON else RULES_OFF))


def table(V: int, rows: dict[int, dict[int, float]]) -> TableModel:
    """A one-image bigram table; each row's mass not given is spread over the other tokens."""
    p = torch.full((V, V), 1.0 / V, dtype=torch.float64)
    for prev, nxt in rows.items():
        rest = (1 - sum(nxt.values())) / (V - len(nxt))
        p[prev] = rest
        for tok, q in nxt.items():
            p[prev, tok] = q
    assert torch.allclose(p.sum(1), torch.ones(V, dtype=torch.float64))
    return TableModel(p.log()[None])


A, B, C, D, E, F = range(4, 10)


def test_width_two_finds_a_strictly_better_caption_than_greedy():
    # Greedy takes A (0.6) then ends: 0.6 * 0.4 = 0.24; B then <eos> is 0.35 * 0.9 = 0.315.
    model = table(
        10, {BOS_ID: {A: 0.6, B: 0.35}, A: {EOS_ID: 0.4, C: 0.3, D: 0.3}, B: {EOS_ID: 0.9}}
    )
    assert search(model, [0], 1, max_len=5)[0] == [[A]]
    captions, logprobs = search(model, [0], 2, max_len=5)
    assert captions == [[B]]
    assert logprobs.item() == pytest.approx(math.log(0.35 * 0.9))


def test_greedy_path_falling_off_the_beam_does_not_make_the_result_worse():
    # Greedy: A (0.4), D (0.24), <eos> (1.0): 0.096. With k=2, A D (0.096) loses its place to
    # B E and B F (0.175 each), whose continuations are all below 0.035.
    rows = {
        BOS_ID: {A: 0.4, B: 0.35, C: 0.25},
        A: {D: 0.24, EOS_ID: 0.19, C: 0.19, E: 0.19, F: 0.19},
        B: {E: 0.5, F: 0.5},
        D: {EOS_ID: 1.0},
        E: {EOS_ID: 0.02},
        F: {EOS_ID: 0.02},
    }
    model = table(10, rows)
    rules = dict(max_len=3, min_len=0, banned=[PAD_ID, BOS_ID], no_repeat=False,
                 eos_id=EOS_ID, bos_id=BOS_ID, length_penalty=0.0)  # fmt: skip
    plain = _search(model.step, model.init_state([0]), 1, 2, **rules)
    assert plain.logprob.item() < math.log(0.096)  # the trap works: plain beam is worse
    captions, logprobs = search(model, [0], 2, max_len=3)
    assert captions == [[A, D]]
    assert logprobs.item() == pytest.approx(math.log(0.096))


def test_length_penalty_prefers_longer_captions_but_reports_raw_logprob():
    # [A]: 0.5 * 0.8 = 0.4; [B, C]: 0.45 * 0.9 * 0.9 = 0.3645, better per token.
    rows = {BOS_ID: {A: 0.5, B: 0.45}, A: {EOS_ID: 0.8}, B: {C: 0.9}, C: {EOS_ID: 0.9}}
    model = table(10, rows)
    assert search(model, [0], 2, max_len=5)[0] == [[A]]
    captions, logprobs = search(model, [0], 2, max_len=5, length_penalty=1.0)
    assert captions == [[B, C]]
    assert logprobs.item() == pytest.approx(math.log(0.3645))


def test_rules_bound_length_and_forbid_words_even_against_the_model():
    # The model wants <unk> <unk> then <eos> at once; the rules must overrule it.
    model = table(8, {BOS_ID: {UNK_ID: 0.9}, UNK_ID: {UNK_ID: 0.5, EOS_ID: 0.45}})
    captions, _ = search(model, [0], 3, **RULES_ON)
    assert_obeys(captions[0], **RULES_ON)
    eager = table(8, {i: {EOS_ID: 0.9} for i in range(8)})  # wants to end at once
    captions, logprobs = search(eager, [0], 2, min_len=3, max_len=6)
    assert len(captions[0]) == 3
    assert logprobs.item() == pytest.approx(3 * math.log(0.1 / 7) + math.log(0.9))
    # A strong length penalty makes longer captions score better: max_len must stop them.
    captions, _ = search(eager, [0], 2, min_len=0, max_len=4, length_penalty=5.0)
    assert len(captions[0]) == 4


def test_results_do_not_depend_on_the_other_images_in_the_batch():
    g = torch.Generator().manual_seed(7)
    model = RNNModel(g, images=5, V=11)
    for rules in (RULES_OFF, RULES_ON):
        together, lp_together = search(model, [0, 1, 2, 3, 4], 3, **rules)
        shuffled, lp_shuffled = search(model, [3, 0, 4, 2], 3, **rules)
        for i in range(5):
            alone, lp_alone = search(model, [i], 3, **rules)
            assert alone[0] == together[i]
            assert lp_alone[0].item() == pytest.approx(lp_together[i].item(), abs=1e-12)
        assert shuffled == [together[i] for i in (3, 0, 4, 2)]
        assert torch.allclose(lp_shuffled, lp_together[[3, 0, 4, 2]])


def test_bad_arguments_raise_clear_errors():
    model = random_model(0, 2)
    state = model.init_state([0, 1])
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(model.step, state, 2, SearchRules(0, max_len=5))
    with pytest.raises(ValueError, match="min_len"):
        beam_search(model.step, state, 2, SearchRules(2, max_len=3, min_len=4))
    with pytest.raises(ValueError, match="batch_size=3"):
        beam_search(model.step, state, 3, SearchRules(2, max_len=5))
    with pytest.raises(ValueError, match="eos_id"):
        beam_search(model.step, state, 2, SearchRules(2, max_len=5, forbid=(EOS_ID,)))
    with pytest.raises(ValueError, match="out of range"):
        beam_search(model.step, state, 2, SearchRules(2, max_len=5, forbid=(99,)))
    tiny = table(5, {})  # one word (id 4) besides <unk>: with no_repeat, no 2-word caption
    with pytest.raises(ValueError, match="1 word"):
        search(tiny, [0], 2, max_len=5, min_len=2, forbid=(UNK_ID,), no_repeat=True)


def _has_repeated_ngram(words: list[int], n: int) -> bool:
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(grams) != len(set(grams))


def test_no_repeat_ngram_bars_a_second_occurrence_of_any_ngram():
    # The model loops 4 5 4 5 4 5 ...: with n = 2 the bigram (4, 5) may come only once.
    loop = table(8, {BOS_ID: {4: 0.9}, 4: {5: 0.8, 6: 0.1}, 5: {4: 0.8, 7: 0.1},
                     6: {EOS_ID: 0.9}, 7: {EOS_ID: 0.9}})  # fmt: skip
    rules = dict(min_len=0, max_len=8, forbid=(), no_repeat=False)
    looped, _ = search(loop, [0], 1, **rules)
    assert looped[0][:4] == [4, 5, 4, 5]  # off (the study's default): it loops
    barred, _ = search(loop, [0], 1, **rules, no_repeat_ngram=2)
    assert barred[0][:3] == [4, 5, 4] and not _has_repeated_ngram(barred[0], 2)
    assert barred[0][3] != 5  # (4, 5) would repeat
    assert search(loop, [0], 1, **rules, no_repeat_ngram=0) == search(loop, [0], 1, **rules)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_holds_for_every_caption_of_random_models(seed, n):
    model = random_model(seed, images=4)
    captions, logprobs = search(model, [0, 1, 2, 3], 3, min_len=0, max_len=8, no_repeat_ngram=n)
    for image, caption in enumerate(captions):
        assert not _has_repeated_ngram(caption, n)
        assert logprobs[image].item() == pytest.approx(model_logprob(model, image, caption))


def test_no_repeat_ngram_must_be_a_count():
    with pytest.raises(ValueError, match="no_repeat_ngram must be an integer >= 0"):
        search(random_model(0, 1), [0], 2, max_len=5, no_repeat_ngram=-1)


@pytest.mark.parametrize("seed", range(12))
def test_running_every_step_as_on_an_accelerator_finds_the_same_captions(seed, monkeypatch):
    # On a GPU the search runs all max_len + 1 steps instead of reading its stop test on the
    # host each step; the steps after the stop must change nothing.
    from caplm.models import beam_search as bs

    images = [0, 1, 2, 3]
    model = random_model(seed, len(images))
    state = model.init_state(images)
    runs = []
    for early in (True, False):
        monkeypatch.setattr(bs, "stops_early", lambda device, early=early: early)
        got = []
        for rules in (RULES_OFF, RULES_ON):
            for k in (1, 3):
                got.append(beam_search(model.step, state, len(images), SearchRules(k, **rules)))
            got.append(
                bs.beam_search_n_best(model.step, state, len(images), SearchRules(3, **rules), 3)
            )
        runs.append(got)
    for a, b in zip(*runs, strict=True):
        if isinstance(a, tuple):  # (captions, logprobs)
            assert a[0] == b[0] and torch.equal(a[1], b[1])
        else:
            assert a == b
