"""A Hugging Face tokenizer's subwords as a caplm vocabulary, and per-word log-probabilities.

:class:`SubwordVocabulary` is what ``lm=hf`` models (caplm/models/hf_prefix.py) read and
write. It has :class:`caplm.data.text.Vocabulary`'s interface (``encode``, ``decode``,
``len``, ``words``, ``index_in``, ``save``), so the data modules, beam search and evaluation
run unchanged:

- ids 0-3 are caplm's special tokens (``<pad>``, ``<unk>``, ``<bos>``, ``<eos>``); then every
  ordinary token of the tokenizer, in its id order (the tokenizer's own special tokens are
  caplm's: its bos feeds ``<bos>``, its eos is ``<eos>``, its unk is ``<unk>``);
- ``encode(words)`` tokenises the words (as the dataset's normaliser split them) joined by
  spaces; ``decode(ids)`` detokenises to text and splits it with the dataset's normaliser, so
  captions are scored as words exactly as a word-level model's are, and numbers compare
  across tokenisers.

The study's vocabulary policies (``transfer.vocab_policy``) and its OOV correction of
perplexity concern words missing from a word vocabulary; a subword vocabulary has no such
words. Perplexity across tokenisers is per word: a word's log-probability is the sum over
its pieces (:func:`word_logprobs`), and a caption's perplexity is ``exp(-log P / (words + 1))``
(the end token counts as one more word, as in word-level perplexity).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from caplm.data.text import BOS_ID, EOS_ID, PAD_ID, SPECIALS, UNK_ID, Vocabulary, normaliser
from caplm.hf import transformers
from caplm.io import read_json, write_text
from caplm.results import PPLX_STATS

#: The vocabulary file's marker (vocab.json of a job with ``lm=hf``).
KIND = "hf_subword"
NOT_APPLICABLE_VOCAB_POLICY = (
    "not_applicable: the generator's vocabulary is the LM tokenizer's subwords (every word "
    "is spelt by them), so the study's word-vocabulary policies do not apply"
)
NOT_APPLICABLE_CORRECTED = (
    "not_applicable: a subword vocabulary has no <unk> words to correct for; compare "
    "per_word perplexities across tokenisers"
)


class SubwordVocabulary:
    subword = True

    def __init__(self, tokenizer, normaliser_name: str, path: str | Path):
        self.tokenizer, self.normaliser_name, self.path = tokenizer, normaliser_name, str(path)
        self.normalise: Callable[[str], list[str]] = normaliser(normaliser_name)
        n = len(tokenizer)
        special = set(tokenizer.all_special_ids)
        bos, eos, unk = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id
        if bos is None and eos is None:
            raise ValueError(
                f"{path}: the tokenizer has neither a bos nor an eos token; caplm needs one to "
                "start and end captions (set eos_token in its tokenizer_config.json)"
            )
        ordinary = [i for i in range(n) if i not in special]
        self.itos = [*SPECIALS, *tokenizer.convert_ids_to_tokens(ordinary)]
        first = bos if bos is not None else eos
        last = eos if eos is not None else bos
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else last
        #: caplm id -> the tokenizer id fed to the model.
        self.input_map = torch.tensor([pad, unk if unk is not None else last, first, last,
                                       *ordinary], dtype=torch.long)  # fmt: skip
        #: caplm id -> the model's output row that predicts it, -1 for none (<pad>, <bos>).
        self.output_map = self.input_map.clone()
        self.output_map[[PAD_ID, BOS_ID]] = -1
        if unk is None:
            self.output_map[UNK_ID] = -1
        self._to_caplm = {hf: i for i, hf in enumerate(ordinary, start=len(SPECIALS))}
        if unk is not None:
            self._to_caplm[unk] = UNK_ID

    @classmethod
    def from_folder(cls, folder: str | Path, normaliser_name: str) -> SubwordVocabulary:
        tok = transformers().AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        return cls(tok, normaliser_name, folder)

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SubwordVocabulary) and self.itos == other.itos

    @property
    def words(self) -> list[str]:
        """The ordinary tokens (subwords), without the special tokens."""
        return self.itos[len(SPECIALS) :]

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Words (as the normaliser split them) -> caplm ids of their subwords."""
        if not tokens:
            return []
        ids = self.tokenizer(" ".join(tokens), add_special_tokens=False)["input_ids"]
        return [self._to_caplm.get(i, UNK_ID) for i in ids]

    def decode(self, ids: Iterable[int], strip_specials: bool = True) -> list[str]:
        """caplm ids -> words: detokenised text split by the dataset's normaliser (up to the
        first ``<eos>``; ``strip_specials=False`` gives the subwords themselves)."""
        ids = [int(i) for i in ids]
        if not strip_specials:
            return [self.itos[i] for i in ids]
        if EOS_ID in ids:
            ids = ids[: ids.index(EOS_ID)]
        hf = [int(self.input_map[i]) for i in ids if i not in (PAD_ID, BOS_ID, UNK_ID)]
        return self.normalise(self.tokenizer.decode(hf))

    def index_in(self, other: SubwordVocabulary) -> torch.Tensor:
        """caplm id -> the row of the LM's output layer (over the tokenizer's ids) that
        predicts it, -1 for none: what copies the LM head's rows into the generator's."""
        if not isinstance(other, SubwordVocabulary) or other.itos != self.itos:
            raise ValueError("a subword vocabulary maps only to the same tokenizer's")
        return self.output_map.clone()

    def save(self, path: str | Path) -> None:
        write_text(path, json.dumps({"kind": KIND, "tokenizer": self.path,
                                     "normaliser": self.normaliser_name, "size": len(self)},
                                    indent=1) + "\n")  # fmt: skip

    def word_counts(self, sentences: Sequence[Sequence[str]]) -> list[int]:
        return [len(s) for s in sentences]


def load_vocabulary(path: str | Path):
    """A job's ``vocab.json``: a word vocabulary, or a subword one (read from its tokenizer)."""
    data = read_json(path) if Path(path).is_file() else None
    if isinstance(data, dict) and data.get("kind") == KIND:
        return SubwordVocabulary.from_folder(data["tokenizer"], data["normaliser"])
    return Vocabulary.load(path)


def is_subword(vocab) -> bool:
    return getattr(vocab, "subword", False)


def piece_words(words: Sequence[str], offsets: Sequence[tuple[int, int]]) -> list[int]:
    """For each piece (its character span in ``" ".join(words)``), the index of the word it
    spells: the word holding its last character (a piece that is only a space goes with the
    next word)."""
    ends, pos = [], 0
    for w in words:
        pos += len(w)
        ends.append(pos)  # word i covers [ends[i] - len, ends[i])
        pos += 1
    out = []
    for _start, end in offsets:
        last = end - 1
        i = next((k for k, e in enumerate(ends) if last < e), len(words) - 1)
        out.append(i)
    return out


def word_logprobs(
    piece_logprobs: Sequence[float], piece_word: Sequence[int], n_words: int
) -> np.ndarray:
    """Per word, the sum of its pieces' log-probabilities; then the end token's (the
    log-probabilities hold one more entry than ``piece_word``: the end token's)."""
    lp = np.asarray(piece_logprobs, dtype=np.float64)
    if len(lp) != len(piece_word) + 1:
        raise ValueError(f"{len(lp)} log-probabilities for {len(piece_word)} pieces + <eos>")
    out = np.zeros(n_words + 1)
    np.add.at(out, np.asarray(piece_word, dtype=int), lp[:-1])
    out[-1] = lp[-1]
    return out


def per_word_perplexity_stats(
    token_logprobs: Sequence[np.ndarray], word_counts: Sequence[int]
) -> dict[str, float]:
    """Per caption ``exp(-log P / (words + 1))``, log P the sum over all its tokens (pieces
    and end token): mean, median and geometric mean, as ``per_word_<stat>``; and the same per
    token as ``plain_<stat>``."""
    if len(token_logprobs) != len(word_counts) or not token_logprobs:
        raise ValueError(f"{len(token_logprobs)} captions but {len(word_counts)} word counts")
    log_p = np.array([np.sum(lp, dtype=np.float64) for lp in token_logprobs])
    out = {}
    for kind, n in (("plain", [len(lp) for lp in token_logprobs]),
                    ("per_word", [c + 1 for c in word_counts])):  # fmt: skip
        pplx = np.exp(-log_p / np.asarray(n))
        stats = {"mean": np.mean(pplx), "median": np.median(pplx),
                 "geomean": np.exp(np.mean(np.log(pplx)))}  # fmt: skip
        out.update({f"{kind}_{s}": float(stats[s]) for s in PPLX_STATS})
    return out
