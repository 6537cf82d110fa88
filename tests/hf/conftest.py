"""Tiny Hugging Face models built in-process (no download), and a guard that fails any test
of this folder that opens a network connection."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.conftest import TINY, compose_config

#: TINY without its word-level LM sizes (an hf LM's sizes are its folder's).
TINY_HF = [o for o in TINY if not o.startswith("lm.")]
#: Captions of the shapes data's kind for the tokenizer (the tiny tests' own data is shapes).
SENTENCES = [
    f"a {c} {s} {r} a {c2} {s2}"
    for c in ("red", "green", "blue", "yellow")
    for s in ("circle", "square", "triangle")
    for r in ("to the left of", "above", "below", ", and")
    for c2, s2 in (("blue", "square"), ("red", "circle"))
]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any connection attempt (a download) fails the test."""

    def refuse(self, address, *args, **kwargs):
        if isinstance(address, str) or self.family == socket.AF_UNIX:  # local sockets are fine
            return real(self, address, *args, **kwargs)
        raise AssertionError(f"network connection attempted to {address!r}")

    real = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """family -> a folder with a tiny random model of that family and its BPE tokenizer."""
    from caplm.runtime.tiny_models import build

    root = tmp_path_factory.mktemp("hf")
    return {f: build(root / f, f, SENTENCES, seed=0, vocab_size=300, hidden=16)
            for f in ("gpt2", "gpt_neox", "llama")}  # fmt: skip


def hf_cfg(tmp: Path, folder: Path, overrides=(), job: str = "job"):
    import tests.conftest as c

    saved = c.TINY
    c.TINY = TINY_HF
    try:
        return compose_config(tmp, ["lm=hf", f"lm.path={folder}", *overrides], job)
    finally:
        c.TINY = saved
