"""Batched beam search under the study's generation rules.

The search runs over a whole batch of images at once: B images x k beams are N = B * k rows
of one tensor, image-major (row ``b * k + j`` is beam j of image b). The model is seen only
through ``step_fn(prev_tokens (N,), state) -> (logprobs (N, V), new_state)``, where a state is
a tensor or a tuple of tensors with the rows in dim 1, the layout of an RNN hidden state
(num_layers, N, H) and of a Transformer's key/value cache (num_layers, N, 2, heads, S, d),
which grows by one position per step. Anything constant per image (the image's features) can
ride along in the state as a (1, N, ...) tensor: the search reorders every state tensor the
same way.

:func:`beam_search` returns each image's best caption; :func:`beam_search_n_best` the same
search's ``n`` best distinct captions per image (best first, the first being
:func:`beam_search`'s caption).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

import torch

from caplm.data.text import BOS_ID, EOS_ID, PAD_ID

State = torch.Tensor | tuple[torch.Tensor, ...]
StepFn = Callable[[torch.Tensor, State], tuple[torch.Tensor, State]]


@dataclass(frozen=True)
class SearchRules:
    """A search's settings, one object for :func:`beam_search` and :func:`beam_search_n_best`
    (their docstrings say what each rule does)."""

    beam_width: int
    max_len: int
    min_len: int = 0
    forbid: Iterable[int] = ()
    no_repeat: bool = False
    eos_id: int = EOS_ID
    bos_id: int = BOS_ID
    length_penalty: float = 0.0
    no_repeat_ngram: int = 0


def beam_search(
    step_fn: StepFn,
    init_state: State,
    batch_size: int,
    rules: SearchRules,
) -> tuple[list[list[int]], torch.Tensor]:
    """The best caption for each of ``batch_size`` images, and its total log-probability.

    ``init_state`` holds one row per image (dim 1 has ``batch_size`` rows); the search
    repeats it for the beams. ``rules`` (:class:`SearchRules`) are the beam's width and the
    rules below. Decoding starts from ``bos_id``; each hypothesis ends with
    ``eos_id``. Returns the word ids of each image's best caption (no ``<bos>``/``<eos>``)
    and its total log-probability (B,), the ``<eos>`` step included.

    Rules: the caption has between ``min_len`` and ``max_len`` words (``<eos>`` is barred
    before ``min_len`` words and is the only choice after ``max_len``); the ids in
    ``forbid`` are never generated, nor are ``<pad>`` and ``<bos>``; with ``no_repeat`` no
    word follows itself; with ``no_repeat_ngram = n`` (> 0) no n-gram of words occurs twice in
    a caption (0: off, as the study). A rule only removes choices: the scores are the model's own
    log-probabilities, not renormalised over what the rules allow.

    At each step the k best one-word extensions of the live beams are kept; one that ends in
    ``<eos>`` is finished and leaves the beam, and the best finished caption so far is kept.
    The search stops when no live beam can still beat it. Width 1 is greedy decoding. The
    best caption is the one with the highest ``log p / len ** length_penalty`` (len counts
    the ``<eos>``; 0 compares plain log-probabilities).

    Plain beam search can return a caption *worse* than greedy decoding (the greedy path
    can fall off the beam), so with width > 1 a greedy decode under the same rules runs as
    well and the better of the two is returned: the result never scores below greedy.
    """
    search, beam_width = _settings(init_state, batch_size, rules), rules.beam_width
    best = _search(step_fn, init_state, batch_size, beam_width, **search)
    if beam_width > 1:
        best = _better_of(best, _search(step_fn, init_state, batch_size, 1, **search))
    captions = [row[:n] for row, n in zip(best.tokens.tolist(), best.length.tolist(), strict=True)]
    return captions, best.logprob


def beam_search_n_best(
    step_fn: StepFn,
    init_state: State,
    batch_size: int,
    rules: SearchRules,
    n_best: int,
) -> list[list[tuple[list[int], float]]]:
    """The ``n_best`` best distinct captions of each image, best first, each with its total
    log-probability (the ``<eos>`` step included): ``[[(word ids, logprob), ...], ...]``.

    The same search and rules as :func:`beam_search`, which returns the first caption of
    each list. The others are the best of every caption the search finished (the one that
    greedy decoding finds included), ranked by the same score; the search runs until no live
    beam can beat the ``n_best``-th of them. An image's list is shorter when the search
    finished fewer captions. ``n_best`` is at most ``beam_width`` (a beam of k holds at most
    k candidates, so a wider beam gives a better list).
    """
    search, beam_width = _settings(init_state, batch_size, rules), rules.beam_width
    if not isinstance(n_best, int) or isinstance(n_best, bool) or not 1 <= n_best <= beam_width:
        raise ValueError(
            f"n_best must be an integer from 1 to beam_width ({beam_width}), got {n_best!r}; "
            "widen the beam for a longer list"
        )
    pool = _Pool(batch_size, n_best, rules.max_len, _device(init_state))
    best = _search(step_fn, init_state, batch_size, beam_width, **search, pool=pool)
    if beam_width > 1:
        greedy = _search(step_fn, init_state, batch_size, 1, **search)
        best = _better_of(best, greedy)
        pool.add(greedy.tokens[:, None], greedy.length[:, None], greedy.logprob[:, None],
                 greedy.score[:, None])  # fmt: skip
    # The first is beam_search's caption (its ties broken as there); the rest by score.
    lists = []
    for b in range(batch_size):
        first = best.tokens[b, : best.length[b]].tolist()
        found = [(first, float(best.logprob[b]))]
        seen = {tuple(first)}
        order = pool.score[b].argsort(descending=True, stable=True).tolist()
        for j in order:
            if len(found) == n_best or pool.score[b, j] == -float("inf"):
                break
            words = pool.tokens[b, j, : pool.length[b, j]].tolist()
            if tuple(words) not in seen:
                seen.add(tuple(words))
                found.append((words, float(pool.logprob[b, j])))
        lists.append(found if best.logprob[b] > -float("inf") else [])
    return lists


def _settings(init_state: State, batch_size: int, rules: SearchRules) -> dict:
    """The checked arguments of :func:`_search` (raises on a bad one)."""
    r = rules
    if r.beam_width < 1:
        raise ValueError(f"beam_width must be >= 1, got {r.beam_width}")
    if not isinstance(r.no_repeat_ngram, int) or r.no_repeat_ngram < 0:
        raise ValueError(
            f"no_repeat_ngram must be an integer >= 0 (0: off), got {r.no_repeat_ngram!r}"
        )
    if not 0 <= r.min_len <= r.max_len:
        raise ValueError(
            f"need 0 <= min_len <= max_len, got min_len={r.min_len}, max_len={r.max_len}"
        )
    states = init_state if isinstance(init_state, tuple) else (init_state,)
    for s in states:
        if s.dim() < 2 or s.size(1) != batch_size:
            raise ValueError(
                f"every state tensor needs batch_size={batch_size} rows in dim 1, "
                f"got shape {tuple(s.shape)}"
            )
    banned = sorted({PAD_ID, r.bos_id, *r.forbid})
    if r.eos_id in banned:
        raise ValueError(f"eos_id {r.eos_id} cannot be forbidden: no caption could end")
    return dict(max_len=r.max_len, min_len=r.min_len, banned=banned, no_repeat=r.no_repeat,
                eos_id=r.eos_id, bos_id=r.bos_id, length_penalty=r.length_penalty,
                no_repeat_ngram=r.no_repeat_ngram)  # fmt: skip


class _Best(NamedTuple):
    """Per image: the best finished caption so far."""

    tokens: torch.Tensor  # (B, max_len) word ids, pad after ``length``
    length: torch.Tensor  # (B,) number of words
    logprob: torch.Tensor  # (B,) total log-probability, <eos> included
    score: torch.Tensor  # (B,) logprob / (length + 1) ** length_penalty


def _better_of(a: _Best, b: _Best) -> _Best:
    """Per image, ``b`` where it scores strictly higher than ``a``, else ``a``."""
    take = b.score > a.score
    return _Best(
        *(torch.where(take.view(-1, *[1] * (x.dim() - 1)), y, x) for x, y in zip(a, b, strict=True))
    )


class _Pool:
    """Per image: the ``n`` best finished captions of a search so far, and room for one
    more (greedy decoding's, which may repeat one of them), as ``_Best``'s fields with a
    second dim (score -inf: an empty slot). A search's captions are distinct: its beams are
    distinct word sequences, and captions finished at one step have one length."""

    def __init__(self, B: int, n: int, max_len: int, device: torch.device):
        self.n = n
        size = n + 1
        self.tokens = torch.full((B, size, max_len), PAD_ID, dtype=torch.long, device=device)
        self.length = torch.zeros(B, size, dtype=torch.long, device=device)
        self.logprob = torch.full((B, size), -float("inf"), device=device)
        self.score = torch.full((B, size), -float("inf"), device=device)

    def add(self, tokens, length, logprob, score) -> None:
        """Candidates (B, m, max_len), (B, m), (B, m), (B, m); score -inf: not a caption."""
        n = self.score.size(1)
        score = torch.cat([self.score, score], 1)
        keep = score.topk(n, dim=1).indices
        self.score = score.gather(1, keep)
        self.logprob = torch.cat([self.logprob, logprob], 1).gather(1, keep)
        self.length = torch.cat([self.length, length], 1).gather(1, keep)
        tokens = torch.cat([self.tokens, tokens], 1)
        self.tokens = tokens.gather(1, keep[:, :, None].expand(-1, -1, tokens.size(2)))

    @property
    def floor(self) -> torch.Tensor:
        """(B,) the score a new caption must beat to be among the ``n`` best."""
        return self.score[:, self.n - 1]


def _device(state: State) -> torch.device:
    return (state[0] if isinstance(state, tuple) else state).device


def _select_rows(state: State, rows: torch.Tensor) -> State:
    """The given rows (dim 1) of every state tensor."""
    if isinstance(state, tuple):
        return tuple(s.index_select(1, rows) for s in state)
    return state.index_select(1, rows)


def _search(
    step_fn: StepFn,
    init_state: State,
    B: int,
    k: int,
    *,
    max_len: int,
    min_len: int,
    banned: list[int],
    no_repeat: bool,
    eos_id: int,
    bos_id: int,
    length_penalty: float,
    no_repeat_ngram: int = 0,
    pool: _Pool | None = None,
) -> _Best:
    """The best caption per image of a width-``k`` search; with ``pool``, every caption it
    finishes is also offered to the pool, and it runs until none can still enter it."""
    device = _device(init_state)
    state = _select_rows(init_state, torch.arange(B, device=device).repeat_interleave(k))
    inf = float("inf")
    prev = torch.full((B * k,), bos_id, dtype=torch.long, device=device)
    # Only beam 0 starts alive, or the k beams would be k copies of one hypothesis.
    scores = torch.full((B, k), -inf, device=device)
    scores[:, 0] = 0.0
    history = torch.full((B, k, max_len), PAD_ID, dtype=torch.long, device=device)
    best = _Best(
        tokens=history[:, 0].clone(),
        length=torch.zeros(B, dtype=torch.long, device=device),
        logprob=torch.full((B,), -inf, device=device),
        score=torch.full((B,), -inf, device=device),
    )
    banned_ids = torch.tensor(banned, device=device)
    rows_of_image = torch.arange(B, device=device)[:, None] * k
    for t in range(max_len + 1):  # t = words generated so far
        logp, state = step_fn(prev, state)
        V = logp.size(-1)
        if t == 0:
            _check_vocab(V, banned, eos_id, min_len, no_repeat)
        logp = logp.index_fill(1, banned_ids, -inf)  # a copy: the caller's tensor is untouched
        if no_repeat:
            logp.scatter_(1, prev[:, None], -inf)
        if no_repeat_ngram and t >= no_repeat_ngram:
            _ban_repeated_ngrams(logp, history.view(B * k, max_len)[:, :t], no_repeat_ngram)
        if t < min_len:
            logp[:, eos_id] = -inf
        if t == max_len:
            eos = logp[:, eos_id].clone()
            logp.fill_(-inf)
            logp[:, eos_id] = eos

        # All candidates have the same length here, so raw log-probs rank them.
        candidates = (scores[:, :, None] + logp.view(B, k, V)).view(B, k * V)
        top, index = candidates.topk(k, dim=1)
        parent, token = index // V, index % V
        ended = token == eos_id

        # The best caption finishing at this step (its words are its parent beam's history).
        fin_logprob, j = top.masked_fill(~ended, -inf).max(1)
        src = parent.gather(1, j[:, None])[:, :, None].expand(-1, 1, max_len)
        finished = _Best(
            tokens=history.gather(1, src)[:, 0],
            length=torch.full_like(best.length, t),
            logprob=fin_logprob,
            score=fin_logprob / (t + 1) ** length_penalty,
        )
        best = _better_of(best, finished)
        if pool is not None:  # every caption finishing now, not only the best
            logprob = top.masked_fill(~ended, -inf)
            pool.add(history.gather(1, parent[:, :, None].expand(-1, -1, max_len)),
                     torch.full_like(parent, t), logprob,
                     logprob / (t + 1) ** length_penalty)  # fmt: skip

        scores = top.masked_fill(ended, -inf)
        history = history.gather(1, parent[:, :, None].expand(-1, -1, max_len))
        if t < max_len:
            history[:, :, t] = token
        rows = (rows_of_image + parent).flatten()
        state = _select_rows(state, rows)
        prev = token.flatten()

        # Without a length penalty a log-prob only falls as a caption grows, so a live beam
        # that does not beat the best finished caption now never will. Reading that on the
        # host waits for the device, so an accelerator runs every step instead: the steps
        # after the stop change nothing (no later caption scores strictly higher).
        if not stops_early(device):
            continue
        alive_best = scores.max(1).values
        bar = best.score if pool is None else pool.floor  # the floor is at most best.score
        if (alive_best == -inf).all() or (length_penalty == 0 and (alive_best <= bar).all()):
            break
    return best


def stops_early(device: torch.device) -> bool:
    """Whether the search checks after each step if it can stop (on the CPU, where the check
    costs nothing), rather than run all ``max_len + 1`` steps without a host synchronisation."""
    return device.type == "cpu"


def _ban_repeated_ngrams(logp: torch.Tensor, words: torch.Tensor, n: int) -> None:
    """Bar, per row, each word that would complete an n-gram already in the row's ``words``
    (N, t): the words that followed an earlier occurrence of the last n - 1 words."""
    grams = words.unfold(1, n, 1)  # (N, t - n + 1, n)
    last = words[:, words.size(1) - n + 1 :]  # (N, n - 1)
    seen = (grams[:, :, : n - 1] == last[:, None, :]).all(-1)
    logp.scatter_(1, grams[:, :, -1].masked_fill(~seen, PAD_ID), float("-inf"))  # pad: barred


def _check_vocab(V: int, banned: list[int], eos_id: int, min_len: int, no_repeat: bool) -> None:
    if max(*banned, eos_id) >= V:
        raise ValueError(f"special or forbidden ids {banned + [eos_id]} out of range for V={V}")
    words = V - len(banned) - 1
    if (min_len >= 1 and words < 1) or (min_len >= 2 and no_repeat and words < 2):
        raise ValueError(f"the rules leave {words} word(s) to choose from; no caption of "
                         f"min_len={min_len} words can be made")  # fmt: skip
