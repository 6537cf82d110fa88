"""The architectures beside merge (#40): merge_attention, par_inject, init_inject.

Attention's shapes and masks, the one-region reduction to merge, batched beam search against
one image at a time, exact pair scoring against brute force, and transfer into each."""

from __future__ import annotations

import logging

import pytest
import torch

from caplm.models.architectures import ARCHITECTURES, build_generator, load_generator
from caplm.models.attention import MergeAttentionGenerator, RegionAttention
from caplm.models.caption_generator import CaptionGenerator
from caplm.models.language_model import LanguageModel
from caplm.models.transfer.callback import copied_masks, transfer_prefix

V, F, R = 23, 6, 5
SIZES = dict(embed_size=8, rnn_size=12, post_image_size=8, min_len=1, max_len=7)
OTHERS = ("merge_attention", "par_inject", "init_inject")


def model(architecture: str, regions: int | None = R, **kw) -> CaptionGenerator:
    torch.manual_seed(0)
    cfg = {"architecture": architecture, **SIZES, **kw}
    shape = (F,) if regions is None else (regions, F)
    return build_generator(cfg, V, shape, {}).eval()


def region_features(B: int = 4, regions: int = R) -> torch.Tensor:
    torch.manual_seed(1)
    x = torch.randn(B, regions, F)
    x[0, 3:] = 0  # image 0 has 3 real regions, 2 of padding
    return x


def captions(B: int = 4, T: int = 6):
    torch.manual_seed(2)
    inputs = torch.randint(4, V, (B, T))
    inputs[:, 0] = 1  # <bos>
    targets = torch.cat([inputs[:, 1:], torch.full((B, 1), 2)], 1)  # ... <eos>
    targets[0, 4:] = 0  # a shorter caption, padded
    inputs[0, 5:] = 0
    return inputs, targets


def test_attention_shapes_and_padding_regions_never_attended():
    att = RegionAttention(12, 8, 8, 2, R, "learned")
    h, values = torch.randn(3, 4, 12), torch.randn(3, R, 8)
    mask = torch.ones(3, R, dtype=torch.bool)
    mask[0, 2:] = False
    mask[2] = False  # an image with no real region attends to nothing
    out, w = att(h, att.keys(values), values, mask)
    assert out.shape == (3, 4, 8) and w.shape == (3, 2, 4, R)
    assert (w[0, :, :, 2:] == 0).all() and torch.allclose(w[0].sum(-1), torch.ones(2, 4))
    assert (w[2] == 0).all() and (out[2] == 0).all()


def test_padding_regions_change_nothing():
    m = model("merge_attention")
    x, (inputs, _) = region_features(), captions()
    w = m.attention_weights(x, inputs)
    assert w.shape == (4, inputs.size(1), R) and (w[0, :, 3:] == 0).all()
    moved = x.clone()
    moved[0, 3:] = 0.0
    assert torch.equal(m(x, inputs)[0], m(moved, inputs)[0])
    real = x.clone()
    real[0, 3] = 1.0  # a real region there now: it is attended
    assert m.attention_weights(real, inputs)[0, :, 3].min() > 0


@pytest.mark.parametrize("positions", ["learned", "none"])
def test_one_region_is_merge(positions):
    """merge_attention with one region is merge: same weights, same logits and captions."""
    att = model("merge_attention", regions=1, region_positions=positions)
    merge = model("merge", regions=None)
    merge.load_state_dict({k: v for k, v in att.state_dict().items() if k in merge.state_dict()})
    x = torch.randn(4, F)
    inputs, _ = captions()
    assert torch.equal(att(x[:, None, :], inputs), merge(x, inputs))
    words, logp = att.generate(x[:, None, :], beam_width=3)
    merge_words, merge_logp = merge.generate(x, beam_width=3)
    assert words == merge_words and torch.equal(logp, merge_logp)


@pytest.mark.parametrize("architecture", OTHERS)
@pytest.mark.parametrize("width", [1, 3])
def test_batched_beam_search_equals_one_image_at_a_time(architecture, width):
    m = model(architecture)
    x = region_features(5)
    words, logp = m.generate(x, beam_width=width)
    for i in range(len(x)):
        one, one_logp = m.generate(x[i : i + 1], beam_width=width)
        assert one[0] == words[i]
        assert torch.allclose(one_logp[0], logp[i], atol=1e-5)
    n_best = m.generate_n_best(x, 2, beam_width=3 if width == 1 else width)
    assert [found[0][0] for found in n_best] == m.generate(
        x, beam_width=3 if width == 1 else width
    )[0]


@pytest.mark.parametrize("architecture", ["merge", *OTHERS])
def test_exact_pair_scores_equal_brute_force(architecture):
    m = model(architecture)
    x, (inputs, targets) = region_features(3), captions(4)
    scores = m.caption_image_logprobs(x, inputs, targets)
    brute = torch.stack(
        [m.token_logprobs(x[j].expand(4, R, F), inputs, targets).sum(1) for j in range(3)], 1
    )
    assert scores.shape == (4, 3)
    assert torch.allclose(scores, brute, atol=1e-4)
    assert torch.allclose(m.pair_logprobs(x, inputs, targets), brute, atol=1e-4)


def test_wrong_feature_shapes_are_refused():
    m = model("merge_attention")
    with pytest.raises(ValueError, match=r"features of shape \(4, 6\) per image, but .* \(5, 6\)"):
        m(torch.randn(2, 4, F), captions(2)[0])
    with pytest.raises(ValueError, match="model=par_inject injects the image into an RNN"):
        model("par_inject", arch="transformer", n_heads=2, max_positions=16, rnn_type=None)
    with pytest.raises(ValueError, match="architecture 'merge_attention'; known: merge"):
        CaptionGenerator(V, F, architecture="merge_attention")


def test_a_transformer_prefix_attends_too():
    m = model("merge_attention", arch="transformer", n_heads=2, max_positions=16, rnn_type=None)
    x = region_features(3)
    words, _ = m.generate(x, beam_width=2)
    for i in range(3):
        assert m.generate(x[i : i + 1], beam_width=2)[0][0] == words[i]


@pytest.mark.parametrize("architecture", ["merge", *OTHERS])
def test_checkpoints_load_as_their_architecture(architecture, tmp_path):
    import lightning as L

    m = model(architecture)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, max_epochs=0)
    trainer.strategy.connect(m)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    back = load_generator(tmp_path / "m.ckpt")
    assert type(back) is ARCHITECTURES[architecture]
    x, (inputs, _) = region_features(2), captions(2)
    assert torch.equal(back.eval()(x, inputs), m(x, inputs))


# -- transfer -----------------------------------------------------------------------------------


def lm_and_index(rnn_type="gru", num_layers=1):
    torch.manual_seed(5)
    lm = LanguageModel(V, embed_size=8, rnn_size=12, rnn_type=rnn_type, num_layers=num_layers)
    state = lm.state_dict()
    for name in state:  # trained-like biases (init leaves them 0, as the generator's)
        if "bias" in name:
            state[name] = torch.randn_like(state[name])
    row_index = torch.arange(V)
    row_index[7] = -1  # a word the LM lacks
    return state, row_index


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
@pytest.mark.parametrize("architecture", OTHERS)
def test_each_part_moves_bit_identically_and_frozen_stays_frozen(architecture, rnn_type, caplog):
    lm_state, row_index = lm_and_index(rnn_type, num_layers=2)
    m = model(architecture, rnn_type=rnn_type, num_layers=2).train()
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    with caplog.at_level(logging.INFO):
        stats = transfer_prefix(m, "frozen", ("embedding", "rnn"), lm_state, row_index)
    params = dict(m.named_parameters())
    emb = params["prefix.embedding.weight"]
    have = row_index >= 0
    assert torch.equal(emb[have], lm_state["prefix.embedding.weight"][row_index[have]])
    assert torch.equal(emb[7], before["prefix.embedding.weight"][7])
    for name in [n for n in lm_state if n.startswith("prefix.rnn.")]:
        assert torch.equal(params[name], lm_state[name]), name  # word columns: W_ih is the LM's
        assert not params[name].requires_grad
    if architecture == "par_inject":
        assert torch.equal(params["prefix.image_input"], before["prefix.image_input"])
        assert params["prefix.image_input"].requires_grad  # the image columns are new
        assert torch.equal(params["prefix.init_h"], lm_state["prefix.init_h"])
        assert "prefix.image_input (the image columns" in caplog.text
    if architecture == "init_inject":
        assert "prefix.init_h" not in params
        assert "the language model's prefix.init_h cannot move: init_inject's RNN" in caplog.text
    frozen = {n for n, p in m.named_parameters() if not p.requires_grad}
    assert stats.params_frozen == sum(params[n].numel() for n in frozen)
    # a training step moves the rest, never the frozen parts
    snapshot = {n: p.detach().clone() for n, p in m.named_parameters()}
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=0.1)
    x, (inputs, targets) = region_features(), captions()
    loss, _ = m.batch_loss({"features": x, "inputs": inputs, "targets": targets})
    loss.backward()
    opt.step()
    for n, p in m.named_parameters():
        assert torch.equal(p, snapshot[n]) == (n in frozen), n
    masks = copied_masks(m, ("embedding", "rnn"), row_index)
    parts = ("prefix.embedding", "prefix.rnn.", "prefix.init_")
    assert set(masks) == {n for n in params if n.startswith(parts)}
    assert ("prefix.init_h" in masks) == (architecture != "init_inject")


@pytest.mark.parametrize("architecture", OTHERS)
@pytest.mark.parametrize("part", ["rnn_input", "rnn_recurrent", "rnn_bias", "output"])
def test_finer_parts_move_alone(architecture, part):
    lm_state, row_index = lm_and_index()
    m = model(architecture)
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    transfer_prefix(m, "init", (part,), lm_state, row_index)
    for n, p in m.named_parameters():
        moved = not torch.equal(p, before[n])
        expect = {
            "rnn_input": n == "prefix.rnn.weight_ih_l0",
            "rnn_recurrent": n == "prefix.rnn.weight_hh_l0",
            "rnn_bias": n.startswith("prefix.rnn.bias_"),
            "output": n.startswith("output."),
        }[part]
        assert moved == expect, n
    if part == "rnn_input":  # the word columns; par_inject's image columns are apart
        assert torch.equal(m.prefix.rnn.weight_ih_l0, lm_state["prefix.rnn.weight_ih_l0"])


def test_init_state_cannot_move_into_init_inject(caplog):
    lm_state, row_index = lm_and_index()
    m = model("init_inject")
    with caplog.at_level(logging.WARNING):
        stats = transfer_prefix(m, "init", ("init_state",), lm_state, row_index)
    assert stats.params_transferred == 0
    assert "prefix.init_h cannot move" in caplog.text


def test_merge_attention_takes_the_lm_prefix_as_merge_does():
    lm_state, row_index = lm_and_index()
    m = model("merge_attention")
    assert isinstance(m, MergeAttentionGenerator)
    stats = transfer_prefix(m, "frozen", ("embedding", "rnn"), lm_state, row_index)
    merge = model("merge")
    assert stats == transfer_prefix(merge, "frozen", ("embedding", "rnn"), lm_state, row_index)
    theirs = dict(merge.prefix.named_parameters())
    for n, p in m.prefix.named_parameters():
        if n == "embedding.weight":  # row 7: the LM lacks it, each keeps its own init
            p, theirs[n] = p[row_index >= 0], theirs[n][row_index >= 0]
        assert torch.equal(p, theirs[n]), n
