import lightning as L
import pytest
import torch

from caplm.data.text import SPECIALS, Vocabulary
from caplm.models.caption_generator import CaptionGenerator
from caplm.models.language_model import LanguageModel
from caplm.models.transfer.callback import WeightTransfer, transfer_prefix
from caplm.models.transfer.vocab import generator_vocabulary

SIZES = dict(embed_size=8, rnn_size=12)


def _models(lm_vocab, gen_vocab, **gen_kw):
    torch.manual_seed(0)
    lm = LanguageModel(len(lm_vocab), **SIZES)
    gen = CaptionGenerator(len(gen_vocab), feature_size=5, post_image_size=6, **{**SIZES, **gen_kw})
    return lm, gen


def _prefix(module):
    return {n: p.detach().clone() for n, p in module.named_parameters() if n.startswith("prefix.")}


LM_VOCAB = Vocabulary(["star", "blue", "red", "circle", "the"])
CAPTION_VOCAB = Vocabulary(["red", "green", "star", "square"])  # shuffled, partly missing


def test_intersect_policy_gives_every_generator_word_a_row():
    vocab = generator_vocabulary(CAPTION_VOCAB, LM_VOCAB, "intersect")
    assert vocab.words == ["red", "star"]
    lm, gen = _models(LM_VOCAB, vocab)
    stats = transfer_prefix(
        gen, "init", lm_state=lm.state_dict(), row_index=vocab.index_in(LM_VOCAB)
    )
    emb_lm, emb_gen = lm.prefix.embedding.weight, gen.prefix.embedding.weight
    for word in ["red", "star", *SPECIALS]:
        assert torch.equal(emb_gen[vocab.stoi[word]], emb_lm[LM_VOCAB.stoi[word]])
    assert stats.rows == 2 and stats.rows_missing == 0


def test_caption_policy_copies_by_string_and_keeps_missing_words_random():
    vocab = generator_vocabulary(CAPTION_VOCAB, LM_VOCAB, "caption")
    assert vocab == CAPTION_VOCAB
    lm, gen = _models(LM_VOCAB, vocab)
    before = gen.prefix.embedding.weight.detach().clone()
    stats = transfer_prefix(
        gen, "init", lm_state=lm.state_dict(), row_index=vocab.index_in(LM_VOCAB)
    )
    emb = gen.prefix.embedding.weight
    assert torch.equal(emb[vocab.stoi["star"]], lm.prefix.embedding.weight[LM_VOCAB.stoi["star"]])
    for missing in ("green", "square"):
        assert torch.equal(emb[vocab.stoi[missing]], before[vocab.stoi[missing]])
    assert (stats.rows, stats.rows_missing) == (2, 2)
    rnn = {
        n: p
        for n, p in lm.named_parameters()
        if n.startswith("prefix.rnn") or n.startswith("prefix.init")
    }
    gen_params = dict(gen.named_parameters())
    assert all(torch.equal(gen_params[n], p) for n, p in rnn.items())
    assert stats.params_transferred == 2 * 8 + 4 * 8 + sum(p.numel() for p in rnn.values())


def test_parts_choose_what_moves():
    lm, gen = _models(LM_VOCAB, LM_VOCAB)
    before = _prefix(gen)
    transfer_prefix(
        gen,
        "frozen",
        parts=["embedding"],
        lm_state=lm.state_dict(),
        row_index=LM_VOCAB.index_in(LM_VOCAB),
    )
    assert torch.equal(gen.prefix.embedding.weight, lm.prefix.embedding.weight)
    assert torch.equal(gen.prefix.rnn.weight_hh_l0, before["prefix.rnn.weight_hh_l0"])
    assert not gen.prefix.embedding.weight.requires_grad
    assert gen.prefix.rnn.weight_hh_l0.requires_grad


def test_shape_mismatch_names_both_configs():
    lm = LanguageModel(len(LM_VOCAB), embed_size=8, rnn_size=12)
    gen = CaptionGenerator(
        len(LM_VOCAB), feature_size=5, embed_size=8, rnn_size=16, post_image_size=6
    )
    with pytest.raises(
        ValueError,
        match=r"cannot transfer prefix\.(rnn|init).*\(1, 12\).*\(1, 16\).*\(lm=small.*model: rnn 16\)",
    ):
        transfer_prefix(
            gen,
            "init",
            lm_state=lm.state_dict(),
            row_index=LM_VOCAB.index_in(LM_VOCAB),
            describe="(lm=small: rnn 12; model: rnn 16)",
        )


def test_unknown_mode_part_and_policy_are_clear_errors():
    _, gen = _models(LM_VOCAB, LM_VOCAB)
    with pytest.raises(ValueError, match="none, init, frozen, random_frozen"):
        WeightTransfer("freeze")
    with pytest.raises(ValueError, match="known parts: embedding, rnn"):
        transfer_prefix(gen, "random_frozen", parts=["decoder"])
    with pytest.raises(ValueError, match="intersect, caption"):
        generator_vocabulary(CAPTION_VOCAB, LM_VOCAB, "union")


def _fit(gen, callback, steps=4):
    feats = torch.randn(16, 5)
    inputs = torch.randint(4, len(LM_VOCAB), (16, 6))
    inputs[:, 0] = 2
    targets = torch.roll(inputs, -1, 1)
    targets[:, -1] = 3
    batches = [
        {"features": feats[i : i + 4], "inputs": inputs[i : i + 4], "targets": targets[i : i + 4]}
        for i in range(0, 16, 4)
    ]
    loader = torch.utils.data.DataLoader(batches, batch_size=None)
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
    )
    trainer.fit(gen, train_dataloaders=loader)


@pytest.mark.parametrize("mode", ["frozen", "random_frozen", "init", "none"])
def test_training_leaves_frozen_prefixes_bit_identical(mode):
    lm, gen = _models(LM_VOCAB, LM_VOCAB)
    lm_before = {k: v.clone() for k, v in lm.state_dict().items()}
    gen_before = _prefix(gen)
    callback = WeightTransfer(mode, lm_state=lm.state_dict(), row_index=LM_VOCAB.index_in(LM_VOCAB))
    _fit(gen, callback)
    after = _prefix(gen)
    started_as = _prefix(lm) if mode in ("init", "frozen") else gen_before
    if mode in ("frozen", "random_frozen"):
        assert all(torch.equal(after[n], started_as[n]) for n in after)
        assert callback.stats.params_frozen == sum(p.numel() for p in after.values())
    else:
        assert all(
            not torch.equal(after[n], started_as[n]) for n in after if not n.endswith("init_h")
        )  # init_h may stay near its start; the rest move
        assert callback.stats.params_frozen == 0
    # the LM itself is never touched
    assert all(torch.equal(lm.state_dict()[k], v) for k, v in lm_before.items())
    if mode == "none":
        assert callback.stats.params_transferred == 0
