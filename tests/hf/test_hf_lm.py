"""lm=hf: tiny GPT-2 / GPT-NeoX / Llama models built here (tests/hf/conftest.py), never
downloaded; any network connection fails the test."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from caplm.data.subword import (
    SubwordVocabulary,
    per_word_perplexity_stats,
    piece_words,
    word_logprobs,
)
from caplm.data.text import BOS_ID, EOS_ID, PAD_ID
from caplm.hf import local_folder
from caplm.models.caption_generator import CaptionGenerator
from caplm.models.hf_prefix import HFLanguageModel
from caplm.models.transfer.callback import transfer_prefix

FAMILIES = ("gpt2", "gpt_neox", "llama")
#: Each family's body: (embedding, blocks, final norm) parameter-name prefixes.
BODY = {
    "gpt2": ("prefix.body.wte.", "prefix.body.h.", "prefix.body.ln_f."),
    "gpt_neox": ("prefix.body.embed_in.", "prefix.body.layers.", "prefix.body.final_layer_norm."),
    "llama": ("prefix.body.embed_tokens.", "prefix.body.layers.", "prefix.body.norm."),
}


def _models(folder):
    vocab = SubwordVocabulary.from_folder(folder, "keep_punct")
    lm = HFLanguageModel(str(folder), vocab)
    torch.manual_seed(1)  # not the tiny model's seed: random weights differ from the LM's
    gen = CaptionGenerator(len(vocab), feature_size=6, post_image_size=8, arch="hf",
                           hf_path=str(folder), embed_size=None, rnn_size=None, num_layers=None)  # fmt: skip
    return vocab, lm, gen


def test_subword_vocabulary_round_trips_words_and_maps_specials(tiny_models):
    vocab = SubwordVocabulary.from_folder(tiny_models["gpt2"], "keep_punct")
    words = ["a", "red", "circle", ",", "to", "the", "left", "of", "a", "blue", "square"]
    ids = vocab.encode(words)
    assert len(ids) >= len(words) - 2 and min(ids) >= 4  # subwords, no special token
    assert vocab.decode([*ids, EOS_ID, *ids]) == words  # stops at <eos>
    tok = vocab.tokenizer
    eos = tok.eos_token_id  # GPT-2 style: one token is both bos and eos
    assert int(vocab.input_map[BOS_ID]) == eos and int(vocab.input_map[EOS_ID]) == eos
    # <pad> and <bos> are never predicted; <eos> by the tokenizer's eos row, once
    assert vocab.output_map[PAD_ID] == -1 and vocab.output_map[BOS_ID] == -1
    assert (vocab.output_map == eos).sum() == 1
    assert len(vocab) == len(tok) - len(tok.all_special_ids) + 4


def _tokenizers():
    """A word-level tokenizer and a BPE one that splits "red" into r+ed, "circle" into cir+cle."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    word = Tokenizer(models.WordLevel({"a": 0, "red": 1, "circle": 2, "[UNK]": 3}, "[UNK]"))
    chars = ["a", "r", "e", "d", "c", "i", "l", "ed", "ci", "cir", "le", "cle"]
    merges = [("e", "d"), ("c", "i"), ("ci", "r"), ("l", "e"), ("c", "le")]
    bpe = Tokenizer(models.BPE({c: i for i, c in enumerate(chars)}, merges))
    for t in (word, bpe):
        t.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return word, bpe


def test_per_word_perplexity_sums_subword_pieces_the_same_under_two_tokenisers():
    words = ["a", "red", "circle"]
    word, bpe = _tokenizers()
    enc_w, enc_b = word.encode(" ".join(words)), bpe.encode(" ".join(words))
    assert enc_w.tokens == ["a", "red", "circle"]
    assert enc_b.tokens == ["a", "r", "ed", "cir", "cle"]
    # hand-made log-probabilities (pieces, then <eos>) that give each word the same total
    lp_w = [-1.0, -2.0, -3.0, -0.5]
    lp_b = [-1.0, -0.5, -1.5, -2.0, -1.0, -0.5]
    per_word_w = word_logprobs(lp_w, piece_words(words, enc_w.offsets), len(words))
    per_word_b = word_logprobs(lp_b, piece_words(words, enc_b.offsets), len(words))
    assert per_word_w.tolist() == per_word_b.tolist() == [-1.0, -2.0, -3.0, -0.5]
    stats_w = per_word_perplexity_stats([np.array(lp_w)], [3])
    stats_b = per_word_perplexity_stats([np.array(lp_b)], [3])
    # exp(6.5 / 4): three words and the end token, whatever the pieces
    assert stats_w["per_word_geomean"] == pytest.approx(math.exp(6.5 / 4))
    assert stats_b["per_word_geomean"] == pytest.approx(math.exp(6.5 / 4))
    # per token they differ: 4 tokens vs 6
    assert stats_w["plain_geomean"] == pytest.approx(math.exp(6.5 / 4))
    assert stats_b["plain_geomean"] == pytest.approx(math.exp(6.5 / 6))


def test_word_vocabulary_per_word_perplexity_is_the_corrected_one():
    from caplm.evaluation.perplexity import perplexity_stats

    stats = perplexity_stats([np.array([-1.0, -2.0]), np.array([-0.5, -1.0, -3.0])], [1, 0], 3)
    for s in ("mean", "median", "geomean"):
        assert stats[f"per_word_{s}"] == stats[f"corrected_{s}"] != stats[f"plain_{s}"]


@pytest.mark.parametrize("family", FAMILIES)
def test_lm_scores_as_the_hf_model_and_its_parts_transfer_by_name(tiny_models, family):
    from caplm.hf import transformers

    folder = tiny_models[family]
    vocab, lm, gen = _models(folder)
    raw = transformers().AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True)
    raw.eval()
    words = ["a", "green", "triangle", "above", "a", "red", "circle"]
    ids = torch.tensor([vocab.encode(words)])
    inputs = torch.cat([torch.tensor([[BOS_ID]]), ids], 1)
    targets = torch.cat([ids, torch.tensor([[EOS_ID]])], 1)
    ours = lm.token_logprobs(inputs, targets)[0]
    hf_in = vocab.input_map[inputs]
    with torch.no_grad():
        theirs = raw(input_ids=hf_in).logits.log_softmax(-1)[0]
    hf_targets = vocab.output_map[targets[0]]
    expected = theirs.gather(1, hf_targets[:, None])[:, 0]
    if family == "gpt2":  # bos == eos: the distributions are the same
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    else:  # caplm never predicts the tokenizer's bos: its share is renormalised away
        assert (ours >= expected - 1e-5).all()

    emb, blocks, norm = BODY[family]
    state = lm.state_dict()
    stats = transfer_prefix(gen, "frozen", ["embedding", "blocks:1", "final_norm"], state,
                            vocab.index_in(vocab))  # fmt: skip
    params = dict(gen.named_parameters())
    copied = [n for n in params if n.startswith((emb, f"{blocks}1.", norm))]
    assert copied and stats.params_frozen == sum(params[n].numel() for n in copied)
    for n, p in params.items():
        if n in copied:
            assert torch.equal(p, state[n]) and not p.requires_grad, n
        elif n.startswith(f"{blocks}0.") and p.dim() == 2:
            assert not torch.equal(p, state[n]) and p.requires_grad, n  # block 0 left random
    # the LM head's rows into the output layer's prefix columns, by token
    transfer_prefix(gen, "init", ["output"], state, vocab.index_in(vocab))
    H = gen.prefix.output_size
    rows = vocab.output_map >= 0
    torch.testing.assert_close(
        gen.output.weight[rows, :H], state["output.weight"][vocab.output_map[rows]]
    )


def test_a_part_the_model_lacks_or_a_block_beyond_it_is_refused(tiny_models):
    vocab, lm, gen = _models(tiny_models["llama"])
    with pytest.raises(ValueError, match=r"blocks:2.*2 block\(s\), 0 to 1"):
        transfer_prefix(gen, "frozen", ["blocks:2"], lm.state_dict(), vocab.index_in(vocab))
    with pytest.raises(ValueError, match="not a part of a Hugging Face prefix"):
        transfer_prefix(gen, "frozen", ["rnn_input"], lm.state_dict(), vocab.index_in(vocab))


def test_stepwise_decoding_matches_the_whole_sequence_and_generates(tiny_models):
    vocab, lm, gen = _models(tiny_models["gpt2"])
    gen.eval()
    tokens = torch.tensor([[BOS_ID, *vocab.encode(["a", "red", "square", "below"])]])
    with torch.no_grad():
        whole, _ = gen.prefix(tokens)
        state, steps = gen.prefix.initial_state(1), []
        for t in range(tokens.size(1)):
            out, state = gen.prefix(tokens[:, t : t + 1], state)
            steps.append(out)
    torch.testing.assert_close(torch.cat(steps, 1), whole, rtol=1e-5, atol=1e-5)
    ids, logprob = gen.generate(torch.randn(3, 6), beam_width=2, max_len=8)
    assert len(ids) == 3 and all(1 <= len(c) <= 8 for c in ids) and (logprob < 0).all()


def test_a_missing_model_is_a_clear_error_without_a_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="huggingface-cli download .*caplm never downloads"):
        local_folder(str(tmp_path / "gpt2"))
    with pytest.raises(FileNotFoundError, match="not in the local Hugging Face cache"):
        local_folder("some-org/not-a-cached-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        local_folder(str(tmp_path / "empty"))


def test_lora_trains_only_adapters_in_the_body_and_a_checkpoint_rebuilds_them(tiny_models):
    from caplm.models.transfer.methods.lora import add_lora

    folder = tiny_models["llama"]
    vocab, lm, gen = _models(folder)
    transfer_prefix(gen, "init", ["embedding", "rnn"], lm.state_dict(), vocab.index_in(vocab))
    settings = {"r": 2, "lora_alpha": 4, "lora_dropout": 0.0, "target_modules": None}
    trainable, frozen = add_lora(gen, settings)
    body = {n: p for n, p in gen.named_parameters() if n.startswith("prefix.body.")}
    adapters = [n for n in body if "lora_" in n]
    assert adapters and trainable == sum(body[n].numel() for n in adapters)
    assert all(p.requires_grad == ("lora_" in n) for n, p in body.items())
    assert frozen == sum(p.numel() for p in lm.prefix.parameters())  # the whole body
    assert gen.output.weight.requires_grad and gen.image[0].weight.requires_grad
    # LoRA's B starts at zero: the adapted body computes what the copied one did
    tokens = torch.tensor([[BOS_ID, *vocab.encode(["a", "red", "circle"])]])
    gen.eval()
    torch.testing.assert_close(gen.prefix(tokens)[0], lm.prefix(tokens)[0])
    # as from a checkpoint: the hyperparameters rebuild the adapters, so the names match
    again = CaptionGenerator(**gen.hparams)
    again.load_state_dict(gen.state_dict())
    again.eval()
    torch.testing.assert_close(again.prefix(tokens)[0], gen.prefix(tokens)[0])


def test_gradient_checkpointing_is_an_option_of_the_prefix(tiny_models):
    folder = str(tiny_models["gpt2"])
    vocab = SubwordVocabulary.from_folder(folder, "keep_punct")
    plain = CaptionGenerator(len(vocab), 6, post_image_size=8, arch="hf", hf_path=folder)
    ckpt = CaptionGenerator(len(vocab), 6, post_image_size=8, arch="hf", hf_path=folder,
                            gradient_checkpointing=True)  # fmt: skip
    assert ckpt.prefix.body.is_activation_checkpointing
    assert not plain.prefix.body.is_activation_checkpointing
