"""The text normalisers for captions and corpora, and the vocabulary both models use.

A normaliser turns a sentence as written into tokens. ``data.normaliser`` picks one for a
caption dataset, and its LM corpora always use the dataset's (``CaptionDataset.normaliser``),
so captions, corpora and every perplexity see the same words:

- ``study``: the study's rule (Tanti et al.'s dataset builder): lower-case; every run of
  digits (with ``.``/``,`` inside it) becomes the word ``NUM``; every other character that is
  not a-z separates words. Only alphabetic words remain (and ``NUM``).
- ``karpathy``: the ``tokens`` lists of Karpathy's ``dataset_*.json`` where the text comes
  with them (the readers use them as given); for text without them (corpus files, Flickr8k's
  token file) lower-case runs of a-z and 0-9 (punctuation dropped, numbers kept).
- ``keep_punct``: lower-cased words, numbers and single punctuation marks (caplm's own
  tokeniser, :func:`tokenize`; the generated datasets use it).

A vocabulary maps tokens to ids; ids 0-3 are the special tokens below, in this order, in every
vocabulary, so a language model and a caption generator agree on them.

Every text file the readers and corpora read goes through :func:`read_utf8`, so a file that
is not UTF-8 fails with its name and the place of the first bad byte instead of being decoded
by the locale's encoding or mangled.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch

from caplm.io import read_json, write_text

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
_STUDY_TOKEN = re.compile(r"[0-9](?:[0-9.,]*[0-9])?|[a-z]+")
_ALNUM = re.compile(r"[a-z0-9]+")
NUM = "NUM"  # the study's word for a number
NORMALISERS = ("study", "karpathy", "keep_punct")


def tokenize(text: str) -> list[str]:
    """Lower-case ``text`` and split it into words and punctuation marks.

    >>> tokenize("A red Circle, to the left of 2 squares.")
    ['a', 'red', 'circle', ',', 'to', 'the', 'left', 'of', '2', 'squares', '.']
    """
    return _TOKEN.findall(text.lower())


def study_tokens(text: str) -> list[str]:
    """The study's normalisation: alphabetic words and ``NUM`` for each number.

    >>> study_tokens("Two dogs, 3.5 m apart -- a dog's toy (café)!")
    ['two', 'dogs', 'NUM', 'm', 'apart', 'a', 'dog', 's', 'toy', 'caf']
    """
    return [NUM if t[0].isdigit() else t for t in _STUDY_TOKEN.findall(text.lower())]


def alnum_tokens(text: str) -> list[str]:
    """``karpathy`` for text without given tokens: lower-case runs of a-z and 0-9.

    >>> alnum_tokens("A dog's 2 toys.")
    ['a', 'dog', 's', '2', 'toys']
    """
    return _ALNUM.findall(text.lower())


_RULES = {"study": study_tokens, "karpathy": alnum_tokens, "keep_punct": tokenize}


def normaliser(name: str) -> Callable[[str], list[str]]:
    """The function of normaliser ``name`` (raw text -> tokens); ``karpathy``'s is the one for
    text without given tokens (the JSON reader uses the given ones itself)."""
    if name not in _RULES:
        raise ValueError(
            f"data.normaliser is {name!r}; choose one of {', '.join(NORMALISERS)} (study: the "
            "study's tokenisation, for comparable numbers on real data)"
        )
    return _RULES[name]


def has_word(tokens: Sequence[str]) -> bool:
    """Whether ``tokens`` hold a word or number, not only punctuation marks (or nothing).

    >>> has_word(tokenize("...!")), has_word(tokenize("")), has_word(tokenize("2 dogs!"))
    (False, False, True)
    """
    return any(t[:1].isalnum() for t in tokens)


def read_utf8(path: str | Path) -> str:
    """The text of a UTF-8 file, or a ValueError naming the file and its first bad byte.

    Newlines are kept as written (``str.splitlines`` splits on all of them); a leading
    byte-order mark is kept as the character U+FEFF, as ``Path.read_text`` does.
    """
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        offset = err.start
        line = data.count(b"\n", 0, offset) + 1
        raise ValueError(
            f"{path}: not UTF-8 text: the byte at offset {offset} (line {line}) is "
            f"0x{data[offset]:02x} ({err.reason}); the file must be UTF-8: convert it (e.g. "
            "`iconv -f latin1 -t utf-8 OLD > NEW` for Latin-1) or save it again as UTF-8"
        ) from None


class Vocabulary:
    """Token <-> id mapping with the special tokens first.

    Build one from tokenised sentences with :meth:`build`; words seen fewer than
    ``min_freq`` times map to ``<unk>``.
    """

    def __init__(self, words: Iterable[str]):
        words = [w for w in words if w not in SPECIALS]
        self.itos: list[str] = [*SPECIALS, *words]
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary words must be unique")

    @classmethod
    def build(
        cls,
        sentences: Iterable[Sequence[str]],
        min_freq: int = 1,
        max_size: int | None = None,
    ) -> Vocabulary:
        """Words with count >= ``min_freq``, most frequent first (ties alphabetical)."""
        counts = Counter(w for s in sentences for w in s)
        words = sorted(
            (w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w)
        )
        if max_size is not None:
            words = words[: max(0, max_size - len(SPECIALS))]
        return cls(words)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.itos == other.itos

    @property
    def words(self) -> list[str]:
        """The ordinary words, without the special tokens."""
        return self.itos[len(SPECIALS) :]

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return [self.stoi.get(t, UNK_ID) for t in tokens]

    def decode(self, ids: Iterable[int], strip_specials: bool = True) -> list[str]:
        """Ids to tokens, stopping at the first ``<eos>`` when ``strip_specials``."""
        out = []
        for i in ids:
            i = int(i)
            if strip_specials:
                if i == EOS_ID:
                    break
                if i in (PAD_ID, BOS_ID):
                    continue
            out.append(self.itos[i])
        return out

    def intersect(self, other: Vocabulary) -> Vocabulary:
        """Words of this vocabulary that ``other`` also has, in this vocabulary's order."""
        return Vocabulary(w for w in self.words if w in other)

    def index_in(self, other: Vocabulary) -> torch.Tensor:
        """For each id of this vocabulary, the id of the same token in ``other``, or -1.

        Special tokens always map to each other; this is what copies embedding rows from a
        language model into a caption generator whose vocabulary differs.
        """
        return torch.tensor([other.stoi.get(w, -1) for w in self.itos], dtype=torch.long)

    def save(self, path: str | Path) -> None:

        write_text(path, json.dumps(self.words, indent=0) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: vocabulary file not found")
        words = read_json(path)
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ValueError(f"{path}: a vocabulary file must hold a JSON list of strings")
        return cls(words)
