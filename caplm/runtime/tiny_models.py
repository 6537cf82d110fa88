"""Tiny Hugging Face causal LMs made here, from scratch (``python -m caplm.hf_tiny`` is the
command): a byte-level BPE tokenizer trained with ``tokenizers`` on a caption dataset's training
captions (or any sentences), a 2-block GPT-2, GPT-NeoX (Pythia's architecture) or Llama config,
randomly initialised and, with ``epochs``, trained a little on the same sentences by a plain
loop, saved with ``save_pretrained``. They are NOT pretrained models: they let the pipeline run
end to end on a machine without a network (the tests, and ``+experiment=hf_transfer`` on the
embedded data).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from caplm.data.readers import load_caption_dataset
from caplm.hf import transformers
from caplm.runtime.config import compose_checked

log = logging.getLogger(__name__)

FAMILIES = ("gpt2", "gpt_neox", "llama")
EOS = "<|endoftext|>"


def train_tokenizer(sentences: Sequence[str], vocab_size: int = 300):
    """A byte-level BPE tokenizer (GPT-2's kind) trained on ``sentences``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(sentences), trainer)
    tf = transformers()
    return tf.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS)


def tiny_config(family: str, vocab_size: int, eos_id: int, hidden: int = 32, layers: int = 2,
                positions: int = 64):  # fmt: skip
    tf = transformers()
    common = dict(vocab_size=vocab_size, bos_token_id=eos_id, eos_token_id=eos_id)
    if family == "gpt2":
        return tf.GPT2Config(n_embd=hidden, n_layer=layers, n_head=2, n_positions=positions,
                             **common)  # fmt: skip
    if family == "gpt_neox":
        return tf.GPTNeoXConfig(hidden_size=hidden, intermediate_size=2 * hidden,
                                num_hidden_layers=layers, num_attention_heads=2,
                                max_position_embeddings=positions, **common)  # fmt: skip
    if family == "llama":
        return tf.LlamaConfig(hidden_size=hidden, intermediate_size=2 * hidden,
                              num_hidden_layers=layers, num_attention_heads=2,
                              num_key_value_heads=2, max_position_embeddings=positions,
                              **common)  # fmt: skip
    raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")


def build(folder: str | Path, family: str, sentences: Sequence[str], seed: int = 0,
          vocab_size: int = 300, hidden: int = 32, layers: int = 2, epochs: int = 0,
          lr: float = 3e-3, batch_size: int = 32) -> Path:  # fmt: skip
    """Train a tokenizer, make a tiny ``family`` model (trained ``epochs`` on ``sentences``
    from scratch), save both to ``folder``."""
    tf = transformers()
    torch.manual_seed(seed)
    tok = train_tokenizer(sentences, vocab_size)
    cfg = tiny_config(family, len(tok), tok.eos_token_id, hidden, layers)
    model = tf.AutoModelForCausalLM.from_config(cfg)
    if epochs:
        _train(model, tok, sentences, epochs, lr, batch_size, seed)
    folder = Path(folder)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _train(model, tok, sentences, epochs: int, lr: float, batch_size: int, seed: int) -> None:
    ids = [[tok.eos_token_id, *tok(s)["input_ids"], tok.eos_token_id] for s in sentences]
    ids = [x[: model.config.max_position_embeddings if hasattr(model.config,
           "max_position_embeddings") else 64] for x in ids]  # fmt: skip
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(ids), generator=gen).tolist()
        total = 0.0
        for lo in range(0, len(order), batch_size):
            batch = [ids[i] for i in order[lo : lo + batch_size]]
            width = max(map(len, batch))
            x = torch.full((len(batch), width), tok.eos_token_id)
            labels = torch.full((len(batch), width), -100)
            for r, row in enumerate(batch):
                x[r, : len(row)] = torch.tensor(row)
                labels[r, : len(row)] = torch.tensor(row)
            loss = model(input_ids=x, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        log.info("epoch %d: loss %.3f", epoch + 1, total / len(ids))
    model.eval()


def shapes_sentences(num_train: int = 1000) -> list[str]:
    """The embedded shapes dataset's training captions (generated, no files needed)."""
    cfg = compose_checked([f"data.shapes.num_train={num_train}"])
    dataset = load_caption_dataset(cfg.data, Path(cfg.paths.cache_dir))
    return [" ".join(s) for s in dataset.sentences("train")]
