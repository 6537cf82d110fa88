"""The Transformer prefix (caplm/models/transformer.py) and the models built on it
(``arch="transformer"``): shapes, settings, causality, the key/value cache, the sliding
window past ``max_positions``, generation, and the weight init."""

import math

import pytest
import torch
from torch import nn

from caplm.data.text import BOS_ID, EOS_ID, PAD_ID
from caplm.models.caption_generator import CaptionGenerator
from caplm.models.language_model import LanguageModel
from caplm.models.prefix import PrefixConfig, make_prefix
from caplm.models.transformer import TransformerPrefix, sinusoid_table

V, F = 20, 7
D, LAYERS, HEADS = 16, 2, 2
#: LanguageModel / CaptionGenerator arguments of a tiny Transformer prefix.
SIZES = dict(arch="transformer", embed_size=D, rnn_size=D, num_layers=LAYERS, n_heads=HEADS,
             ff_size=32, max_positions=12)  # fmt: skip
GEN = dict(SIZES, post_image_size=5, min_len=2, max_len=6)


def prefix(seed: int = 0, **kw) -> TransformerPrefix:
    """A tiny TransformerPrefix in eval mode (no dropout)."""
    torch.manual_seed(seed)
    args = dict(vocab_size=V, embed_size=D, d_model=D, num_layers=LAYERS, n_heads=HEADS,
                ff_size=32, max_positions=12) | kw  # fmt: skip
    return TransformerPrefix(**args).eval()


def words(B: int, T: int, seed: int = 0) -> torch.Tensor:
    """(B, T) ordinary word ids (no specials)."""
    return torch.randint(4, V, (B, T), generator=torch.Generator().manual_seed(seed))


# --- shapes and settings ---------------------------------------------------------------


def test_prefix_outputs_and_cache_shapes():
    p = prefix()
    out, state = p(words(3, 5))
    assert out.shape == (3, 5, D)
    assert state.shape == (LAYERS, 3, 2, HEADS, 5, D // HEADS)
    assert p.initial_state(4).shape == (LAYERS, 4, 2, HEADS, 0, D // HEADS)
    assert p.arch == "transformer" and p.output_size == D and p.max_positions == 12
    with pytest.raises(ValueError, match=r"tokens must be \(batch, time\)"):
        p(words(1, 5)[0])


def test_models_with_a_transformer_prefix_give_vocabulary_logits():
    torch.manual_seed(0)
    inputs, features = words(3, 5), torch.randn(3, F)
    lm = LanguageModel(V, **SIZES)
    gen = CaptionGenerator(V, F, **GEN)
    assert isinstance(lm.prefix, TransformerPrefix) and isinstance(gen.prefix, TransformerPrefix)
    assert lm(inputs).shape == (3, 5, V)
    assert gen(features, inputs).shape == (3, 5, V)
    add = CaptionGenerator(V, F, **dict(GEN, post_image_size=D), merge="add")
    assert add(features, inputs).shape == (3, 5, V) and add.output.in_features == D
    assert gen.output.in_features == D + 5
    # The LM's and the generator's prefixes have the same parameters (so they transfer).
    lm_state = LanguageModel(30, **SIZES).prefix.state_dict()
    gen_state = gen.prefix.state_dict()
    assert list(lm_state) == list(gen_state)
    for name in lm_state:
        if name == "embedding.weight":
            assert lm_state[name].shape == (30, D) and gen_state[name].shape == (V, D)
        else:
            assert lm_state[name].shape == gen_state[name].shape, name


def test_embed_size_other_than_d_model_is_projected():
    same = prefix()
    assert isinstance(same.embed_proj, nn.Identity)
    assert not [n for n, _ in same.named_parameters() if n.startswith("embed_proj.")]
    narrow = prefix(embed_size=8)
    assert isinstance(narrow.embed_proj, nn.Linear)
    assert (narrow.embed_proj.in_features, narrow.embed_proj.out_features) == (8, D)
    assert narrow.embedding.weight.shape == (V, 8)
    out, _ = narrow(words(2, 4))
    assert out.shape == (2, 4, D)
    lm = LanguageModel(V, **dict(SIZES, embed_size=8))
    assert lm(words(2, 4)).shape == (2, 4, V)
    assert lm.prefix.embed_proj.weight.shape == (D, 8)


def test_learned_positions_are_parameters_sinusoidal_ones_are_not():
    learned, sinus = prefix(), prefix(positions="sinusoidal")
    assert learned.positions.weight.shape == (12, D)
    assert "positions.weight" in dict(learned.named_parameters())
    assert not [n for n, _ in sinus.named_parameters() if "position" in n or "sinusoid" in n]
    assert "sinusoid" not in sinus.state_dict()  # a fixed table: not saved, not transferred
    assert set(learned.state_dict()) - set(sinus.state_dict()) == {"positions.weight"}
    n_learned = sum(p.numel() for p in learned.parameters())
    assert n_learned - sum(p.numel() for p in sinus.parameters()) == 12 * D
    # The table: sin at even columns, cos at odd ones; position 0 is (0, 1, 0, 1, ...).
    table = sinusoid_table(12, D)
    assert torch.equal(sinus.sinusoid, table)
    assert torch.equal(table[0, 0::2], torch.zeros(D // 2))
    assert torch.equal(table[0, 1::2], torch.ones(D // 2))
    torch.testing.assert_close(table[3, 0], torch.tensor(math.sin(3.0)))
    torch.testing.assert_close(table[3, 1], torch.tensor(math.cos(3.0)))
    assert sinusoid_table(5, 7).shape == (5, 7)  # an odd width
    # Either way a word's output depends on where it is.
    for p in (learned, sinus):
        out, _ = p(torch.full((1, 4), 5))
        assert (out[0, 1:] - out[0, :1]).abs().amax() > 1e-3


def test_invalid_settings_raise_errors_naming_the_field():
    with pytest.raises(ValueError, match=r"rnn_size \(the Transformer's width d_model, 15\) "
                       r"must be a multiple of\s+n_heads \(2\)"):  # fmt: skip
        make_prefix(V, PrefixConfig("transformer", embed_size=8, rnn_size=15, n_heads=2))
    with pytest.raises(ValueError, match="multiple of n_heads"):
        LanguageModel(V, **dict(SIZES, n_heads=3))
    with pytest.raises(ValueError, match="positions must be one of learned, sinusoidal.*'rotary'"):
        make_prefix(V, PrefixConfig("transformer", rnn_size=D, n_heads=2, positions="rotary"))
    with pytest.raises(ValueError, match="n_heads: Transformer settings, but arch is rnn"):
        make_prefix(V, PrefixConfig("rnn", n_heads=2))
    with pytest.raises(ValueError, match="n_heads, max_positions, positions: Transformer"):
        LanguageModel(V, n_heads=2, max_positions=8, positions="learned")
    with pytest.raises(ValueError, match="arch: transformer needs n_heads"):
        make_prefix(V, PrefixConfig("transformer", rnn_size=D))
    with pytest.raises(ValueError, match="arch: transformer needs n_heads"):
        CaptionGenerator(V, F, **dict(GEN, n_heads=None))
    with pytest.raises(ValueError, match="arch must be one of rnn, transformer.*'lstm'"):
        make_prefix(V, PrefixConfig("lstm"))
    with pytest.raises(ValueError, match=r"block_dropout must be in \[0, 1\)"):
        make_prefix(V, PrefixConfig("transformer", rnn_size=D, n_heads=2, block_dropout=1.0))
    with pytest.raises(ValueError, match="max_positions must be a positive integer"):
        make_prefix(V, PrefixConfig("transformer", rnn_size=D, n_heads=2, max_positions=0))
    with pytest.raises(ValueError, match="n_heads must be a positive integer"):
        make_prefix(V, PrefixConfig("transformer", rnn_size=D, n_heads=True))


def test_transformer_defaults_and_summary():
    p = make_prefix(
        V, PrefixConfig("transformer", embed_size=8, rnn_size=D, num_layers=1, n_heads=4)
    )
    assert p.max_positions == 64 and hasattr(p, "positions") and len(p.blocks) == 1
    assert p.blocks[0].mlp.fc.out_features == 4 * D  # ff_size None: 4 x d_model
    assert p.blocks[0].attn.dropout == 0.1
    summary = PrefixConfig.of(dict(arch="transformer", embed_size=8, rnn_size=D, num_layers=2,
                                   n_heads=4)).summary()  # fmt: skip
    assert summary == "transformer, embed 8, d_model 16, 2 layer(s), 4 heads"
    rnn = dict(rnn_type="gru", embed_size=8, rnn_size=D, num_layers=1)
    assert PrefixConfig.of(rnn).summary() == "gru, embed 8, rnn 16, 1 layer(s)"


# --- causality and the cache -----------------------------------------------------------


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_a_token_changes_only_its_own_and_later_outputs(positions):
    p = prefix(positions=positions)
    tokens = words(2, 8)
    with torch.no_grad():
        out, _ = p(tokens)
        for t in range(tokens.size(1)):
            changed = tokens.clone()
            changed[:, t] = (changed[:, t] - 4 + 1) % (V - 4) + 4  # another word
            out2, _ = p(changed)
            torch.testing.assert_close(out2[:, :t], out[:, :t], atol=1e-5, rtol=0)
            assert (out2[:, t] - out[:, t]).abs().amax(-1).min() > 1e-3, t


def test_language_model_logits_are_causal():
    torch.manual_seed(0)
    lm = LanguageModel(V, **SIZES).eval()
    tokens = words(2, 7, seed=1)
    changed = tokens.clone()
    changed[:, 4] = (changed[:, 4] - 4 + 3) % (V - 4) + 4
    with torch.no_grad():
        a, b = lm(tokens), lm(changed)
    torch.testing.assert_close(b[:, :4], a[:, :4], atol=1e-5, rtol=0)
    assert (b[:, 4:] - a[:, 4:]).abs().amax() > 1e-3


@pytest.mark.parametrize("kw", [{}, {"positions": "sinusoidal"}, {"embed_size": 8}],
                         ids=["learned", "sinusoidal", "projected"])  # fmt: skip
def test_cached_decoding_equals_the_whole_sequence(kw):
    p = prefix(**kw)
    tokens = words(3, 9, seed=2)
    with torch.no_grad():
        whole, whole_state = p(tokens)
        state, steps = None, []
        for i in range(tokens.size(1)):
            out, state = p(tokens[:, i : i + 1], state)
            assert state.size(-2) == i + 1  # the cache grows one position per token
            steps.append(out)
        torch.testing.assert_close(torch.cat(steps, 1), whole, atol=1e-5, rtol=0)
        torch.testing.assert_close(state, whole_state, atol=1e-5, rtol=0)
        first, state = p(tokens[:, :3])
        rest, state = p(tokens[:, 3:], state)
        torch.testing.assert_close(torch.cat([first, rest], 1), whole, atol=1e-5, rtol=0)
        assert state.shape == whole_state.shape
        # A cache starting from initial_state is the same as none.
        torch.testing.assert_close(p(tokens, p.initial_state(3))[0], whole, atol=1e-6, rtol=0)


def manual_caption_logprob(gen, features, caption: list[int]) -> float:
    """log p(caption + <eos> | image) from one full, uncached forward pass."""
    inputs = torch.tensor([[BOS_ID, *caption]])
    targets = torch.tensor([caption + [EOS_ID]])
    with torch.no_grad():
        logp = gen(features[None], inputs).log_softmax(-1)
    return logp[0, torch.arange(len(caption) + 1), targets[0]].sum().item()


@pytest.mark.parametrize("width", [1, 3])
def test_generation_with_the_cache_reports_the_full_forward_logprob(width):
    torch.manual_seed(0)
    gen = CaptionGenerator(V, F, **GEN, no_repeat=False, forbid_unk=False).eval()
    with torch.no_grad():  # sharper distributions, so the beams disagree and get reordered
        gen.output.weight.mul_(3)
    features = torch.randn(4, F, generator=torch.Generator().manual_seed(1))
    captions, logprobs = gen.generate(features, beam_width=width)
    lists = gen.generate_n_best(features, n_best=width, beam_width=width)
    assert [found[0][0] for found in lists] == captions
    torch.testing.assert_close(
        torch.tensor([found[0][1] for found in lists]), logprobs, atol=1e-5, rtol=0
    )
    checked = 0
    for i, found in enumerate(lists):
        assert len(found) == width
        for caption, logprob in found:
            assert 2 <= len(caption) <= 6 and not {PAD_ID, BOS_ID, EOS_ID} & set(caption)
            assert logprob == pytest.approx(manual_caption_logprob(gen, features[i], caption),
                                            abs=1e-4)  # fmt: skip
            checked += 1
        scores = [lp for _, lp in found]
        assert scores == sorted(scores, reverse=True)
    assert checked == 4 * width
    # token_logprobs (full forward, batched and padded) agrees too.
    T = max(len(c) for c in captions) + 1
    inputs, targets = torch.full((4, T), PAD_ID), torch.full((4, T), PAD_ID)
    for i, c in enumerate(captions):
        inputs[i, : len(c) + 1] = torch.tensor([BOS_ID, *c])
        targets[i, : len(c) + 1] = torch.tensor([*c, EOS_ID])
    recomputed = gen.token_logprobs(features, inputs, targets).sum(1)
    torch.testing.assert_close(logprobs, recomputed, atol=1e-4, rtol=0)


def test_a_wider_beam_finds_at_least_the_greedy_logprob():
    torch.manual_seed(0)
    gen = CaptionGenerator(V, F, **GEN).eval()
    features = torch.randn(5, F, generator=torch.Generator().manual_seed(2))
    _, greedy = gen.generate(features, beam_width=1)
    _, beam = gen.generate(features, beam_width=3)
    assert (beam >= greedy - 1e-5).all()


def test_language_model_sampling_uses_the_cache():
    torch.manual_seed(0)
    lm = LanguageModel(V, **SIZES)
    samples = lm.sample(6, max_len=12, generator=torch.Generator().manual_seed(0))
    assert len(samples) == 6 and all(len(s) <= 12 for s in samples)
    assert not {PAD_ID, BOS_ID, EOS_ID} & {w for s in samples for w in s}
    again = lm.sample(6, max_len=12, generator=torch.Generator().manual_seed(0))
    assert again == samples
    with pytest.raises(ValueError, match="max_positions=12"):
        lm.sample(2, max_len=13)


# --- past max_positions ----------------------------------------------------------------


def windowed_reference(p, tokens: torch.Tensor) -> torch.Tensor:
    """The documented window: the first W outputs from one window, then each next W/2 from
    the window of W tokens that ends with them (written out independently of the code)."""
    W, T = p.max_positions, tokens.size(1)
    rows = list(p(tokens[:, :W])[0].unbind(1))
    lo = W
    while lo < T:
        hi = min(lo + W // 2, T)
        window = p(tokens[:, hi - W : hi])[0]
        rows += [window[:, q - (hi - W)] for q in range(lo, hi)]
        lo = hi
    return torch.stack(rows, 1)


@pytest.mark.parametrize("T", [7, 15, 16])
def test_sequences_longer_than_max_positions_are_scored_with_a_window(T):
    p = prefix(max_positions=6)
    tokens = words(2, T, seed=3)
    with torch.no_grad():
        out, state = p(tokens)
        assert out.shape == (2, T, D)
        assert state.size(-2) == 6  # the last window's cache
        torch.testing.assert_close(out, windowed_reference(p, tokens), atol=1e-5, rtol=0)
        torch.testing.assert_close(out[:, :6], p(tokens[:, :6])[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(out[:, -1], p(tokens[:, -6:])[0][:, -1], atol=1e-5, rtol=0)
        changed = tokens.clone()  # still causal
        changed[:, T - 2] = (changed[:, T - 2] - 4 + 1) % (V - 4) + 4
        torch.testing.assert_close(p(changed)[0][:, : T - 2], out[:, : T - 2], atol=1e-5, rtol=0)


def test_models_score_long_sequences():
    torch.manual_seed(0)
    lm = LanguageModel(V, **dict(SIZES, max_positions=6))
    gen = CaptionGenerator(V, F, **dict(GEN, max_positions=6, max_len=5, min_len=1))
    tokens = words(2, 14, seed=4)
    assert lm(tokens).shape == (2, 14, V)
    lp = lm.token_logprobs(tokens, torch.roll(tokens, -1, 1))
    assert lp.shape == (2, 14) and torch.isfinite(lp).all() and (lp < 0).all()
    assert gen(torch.randn(2, F), tokens).shape == (2, 14, V)
    scores = gen.caption_image_logprobs(torch.randn(3, F), tokens, torch.roll(tokens, -1, 1))
    assert scores.shape == (2, 3) and torch.isfinite(scores).all()


def test_incremental_decoding_stops_at_max_positions():
    p = prefix(max_positions=6)
    tokens = words(2, 8, seed=5)
    with torch.no_grad():
        _, state = p(tokens[:, :5])
        out, full = p(tokens[:, 5:6], state)  # position 5, the last one: fine
        assert out.shape == (2, 1, D) and full.size(-2) == 6
        with pytest.raises(ValueError, match=r"max_positions=6.*position 6"):
            p(tokens[:, 6:7], full)
        _, state = p(tokens[:, :4])
        with pytest.raises(ValueError, match=r"max_positions=6.*position 6"):
            p(tokens[:, 4:7], state)


def test_generation_needs_max_len_plus_one_positions():
    with pytest.raises(ValueError, match=r"max_len=8 needs 9 positions.*max_positions=8"):
        CaptionGenerator(V, F, **dict(GEN, max_positions=8, max_len=8))
    torch.manual_seed(0)
    gen = CaptionGenerator(V, F, **dict(GEN, max_positions=8, max_len=7))
    features = torch.randn(2, F)
    with pytest.raises(ValueError, match="max_positions=8"):
        gen.generate(features, max_len=8)
    with pytest.raises(ValueError, match="max_positions=8"):
        gen.generate_n_best(features, n_best=1, max_len=8)
    # max_len + 1 == max_positions is the longest that fits: every caption of exactly max_len.
    for width in (1, 3):
        captions, logprobs = gen.generate(features, beam_width=width, min_len=7, max_len=7)
        assert [len(c) for c in captions] == [7, 7] and torch.isfinite(logprobs).all()


# --- training and init -----------------------------------------------------------------


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    gen = CaptionGenerator(V, F, **dict(GEN, embed_size=8))
    inputs = words(3, 6)
    targets = torch.roll(inputs, -1, 1)
    loss, _ = gen.batch_loss({"features": torch.randn(3, F), "inputs": inputs, "targets": targets})
    loss.backward()
    for name, p in gen.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("model", ["lm", "generator"])
def test_xavier_init_leaves_layer_norms_at_the_identity(model):
    torch.manual_seed(0)
    kw = dict(SIZES, embed_size=8)
    m = LanguageModel(V, **kw) if model == "lm" else CaptionGenerator(V, F, **dict(GEN, **kw))
    norms = [mod for mod in m.modules() if isinstance(mod, nn.LayerNorm)]
    assert len(norms) == 2 * LAYERS + 1  # ln_1, ln_2 per block, and the final one
    for norm in norms:
        assert torch.equal(norm.weight, torch.ones(D)) and torch.equal(norm.bias, torch.zeros(D))
    p = m.prefix
    assert (p.embedding.weight[PAD_ID] == 0).all()
    assert (p.blocks[0].attn.qkv.bias == 0).all() and (p.embed_proj.bias == 0).all()
    qkv = p.blocks[0].attn.qkv.weight  # (3 D, D): xavier std = sqrt(2 / (D + 3 D))
    assert qkv.std().item() == pytest.approx(math.sqrt(2 / (4 * D)), rel=0.15)
    fc = p.blocks[1].mlp.fc.weight  # (32, D)
    assert fc.std().item() == pytest.approx(math.sqrt(2 / (32 + D)), rel=0.15)
    assert p.positions.weight.std().item() == pytest.approx(math.sqrt(2 / (12 + D)), rel=0.15)
    torch.manual_seed(0)
    default = LanguageModel(V, **dict(kw, init="default"))
    assert (default.prefix.blocks[0].attn.qkv.bias != 0).any()
    for norm in (mod for mod in default.modules() if isinstance(mod, nn.LayerNorm)):
        assert torch.equal(norm.weight, torch.ones(D)) and torch.equal(norm.bias, torch.zeros(D))
