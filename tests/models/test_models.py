import math

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from caplm.data.text import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from caplm.models import caption_generator as caption_generator_module
from caplm.models.caption_generator import CaptionGenerator
from caplm.models.language_model import LanguageModel
from caplm.models.prefix import PrefixEncoder

V, F = 20, 7
TINY = dict(embed_size=8, rnn_size=6)
TINY_GEN = dict(TINY, post_image_size=5)


pytestmark = [
    pytest.mark.filterwarnings("ignore:.*does not have many workers"),
    pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no"),
    pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated"),
]


def make_batch(sentences: list[list[int]], features: torch.Tensor | None = None) -> dict:
    """inputs = <bos> + words, targets = words + <eos>, both padded with <pad>."""
    T = max(len(s) for s in sentences) + 1
    inputs = torch.full((len(sentences), T), PAD_ID)
    targets = torch.full((len(sentences), T), PAD_ID)
    for i, s in enumerate(sentences):
        inputs[i, : len(s) + 1] = torch.tensor([BOS_ID, *s])
        targets[i, : len(s) + 1] = torch.tensor([*s, EOS_ID])
    batch = {"inputs": inputs, "targets": targets}
    if features is not None:
        batch["features"] = features
    return batch


def random_sentences(n: int, g: torch.Generator, vocab: int = V, lo: int = 2, hi: int = 7):
    lengths = torch.randint(lo, hi + 1, (n,), generator=g).tolist()
    return [torch.randint(4, vocab, (m,), generator=g).tolist() for m in lengths]


def trainer(**kw) -> L.Trainer:
    kw = dict(accelerator="cpu", logger=False, enable_checkpointing=False,
              enable_progress_bar=False, enable_model_summary=False) | kw  # fmt: skip
    return L.Trainer(**kw)


def test_shapes_of_every_output():
    g = torch.Generator().manual_seed(0)
    batch = make_batch(random_sentences(3, g), torch.randn(3, F, generator=g))
    B, T = batch["inputs"].shape
    lm = LanguageModel(V, **TINY)
    gen = CaptionGenerator(V, F, **TINY_GEN)
    assert lm(batch["inputs"]).shape == (B, T, V)
    assert gen(batch["features"], batch["inputs"]).shape == (B, T, V)
    out, state = lm.prefix(batch["inputs"])
    assert out.shape == (B, T, 6) and state.shape == (1, B, 6)
    lp = gen.token_logprobs(batch["features"], batch["inputs"], batch["targets"])
    assert lp.shape == (B, T)
    assert (lp[batch["targets"] == PAD_ID] == 0).all() and (
        lp[batch["targets"] != PAD_ID] < 0
    ).all()
    lstm = PrefixEncoder(V, 8, 6, rnn_type="lstm", num_layers=2)
    h, c = lstm.initial_state(4)
    assert h.shape == c.shape == (2, 4, 6)
    assert [n for n, _ in lstm.named_parameters() if n.startswith("init_")] == ["init_h", "init_c"]


def test_loss_ignores_padding_and_is_the_token_mean():
    g = torch.Generator().manual_seed(1)
    batch = make_batch(random_sentences(4, g), torch.randn(4, F, generator=g))
    added = CaptionGenerator(V, F, **dict(TINY_GEN, post_image_size=6), merge="add")
    for model in (LanguageModel(V, **TINY), CaptionGenerator(V, F, **TINY_GEN), added):
        model.eval()
        loss, n = model.batch_loss(batch)  # the output layer on real positions only
        text = (batch["inputs"], batch["targets"])
        is_gen = isinstance(model, CaptionGenerator)
        lp = (
            model.token_logprobs(batch["features"], *text)
            if is_gen
            else model.token_logprobs(*text)
        )
        assert n == (batch["targets"] != PAD_ID).sum()
        assert loss.item() == pytest.approx(-lp.sum().item() / n.item(), rel=1e-5)
        noisy = dict(batch, inputs=batch["inputs"].clone())
        pad = noisy["inputs"] == PAD_ID
        noisy["inputs"][pad] = torch.randint(4, V, (int(pad.sum()),), generator=g)
        assert pad.any() and model.batch_loss(noisy)[0].item() == pytest.approx(
            loss.item(), abs=1e-6
        )
        noisy["inputs"][0, 1] = (noisy["inputs"][0, 1] + 1 - 4) % (V - 4) + 4  # a real word
        assert model.batch_loss(noisy)[0].item() != pytest.approx(loss.item(), abs=1e-6)
        # as on a GPU: the output layer at every position, pad targets ignored, no host sync
        every, n_every = model.batch_loss(batch, sync_free=True)
        assert n_every == n and every.item() == pytest.approx(loss.item(), rel=1e-6)


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_prefix_never_sees_the_image_but_the_output_does(rnn_type):
    gen = CaptionGenerator(V, F, rnn_type=rnn_type, **TINY_GEN).eval()
    seen = []
    gen.prefix.register_forward_hook(lambda module, args, out: seen.append(out[0]))
    inputs = make_batch([[4, 5, 6], [7, 8]])["inputs"]
    a = gen(torch.randn(2, F), inputs)
    b = gen(torch.randn(2, F), inputs)
    assert torch.equal(seen[0], seen[1])
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_lm_and_generator_prefixes_have_the_same_parameters(rnn_type):
    lm = LanguageModel(50, rnn_type=rnn_type, num_layers=2, **TINY).prefix.state_dict()
    gen = CaptionGenerator(30, F, rnn_type=rnn_type, num_layers=2, **TINY_GEN).prefix.state_dict()
    assert list(lm) == list(gen)
    for name in lm:
        if name == "embedding.weight":
            assert lm[name].shape == (50, 8) and gen[name].shape == (30, 8)
        else:
            assert lm[name].shape == gen[name].shape, name
    assert "init_h" in lm and ("init_c" in lm) == (rnn_type == "lstm")


def test_frozen_parameters_are_not_optimised_and_do_not_move():
    g = torch.Generator().manual_seed(2)
    gen = CaptionGenerator(V, F, optimizer="rmsprop", lr=1e-2, weight_decay=1e-3, **TINY_GEN)
    gen.prefix.requires_grad_(False)
    frozen = {n: p.detach().clone() for n, p in gen.named_parameters() if not p.requires_grad}
    trained = {n: p.detach().clone() for n, p in gen.named_parameters() if p.requires_grad}
    assert frozen and trained
    opt = gen.configure_optimizers()
    assert isinstance(opt, torch.optim.RMSprop)
    in_opt = {id(p) for group in opt.param_groups for p in group["params"]}
    assert in_opt == {id(p) for p in gen.parameters() if p.requires_grad}
    batches = [make_batch(random_sentences(4, g), torch.randn(4, F, generator=g)) for _ in range(3)]
    trainer(max_steps=3).fit(gen, DataLoader(batches, batch_size=None))
    after = dict(gen.named_parameters())
    for name, before in frozen.items():
        assert torch.equal(after[name], before), name
    for name, before in trained.items():
        assert not torch.equal(after[name], before), name


def test_optimizer_and_init_choices():
    for name, cls in [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                      ("rmsprop", torch.optim.RMSprop), ("sgd", torch.optim.SGD)]:  # fmt: skip
        opt = LanguageModel(
            V, optimizer=name, lr=0.5, weight_decay=0.25, **TINY
        ).configure_optimizers()
        assert (
            type(opt) is cls and opt.defaults["lr"] == 0.5 and opt.defaults["weight_decay"] == 0.25
        )
    with pytest.raises(ValueError, match="adam, adamw, rmsprop, sgd"):
        LanguageModel(V, optimizer="adadelta")
    with pytest.raises(ValueError, match="init"):
        LanguageModel(V, init="normal")
    torch.manual_seed(0)
    xavier = CaptionGenerator(V, F, embed_size=64, rnn_size=48, post_image_size=32)
    default = CaptionGenerator(V, F, embed_size=64, rnn_size=48, post_image_size=32, init="default")
    assert (xavier.output.bias == 0).all() and (xavier.prefix.rnn.bias_hh_l0 == 0).all()
    assert (default.output.bias != 0).any()
    assert (xavier.prefix.embedding.weight[PAD_ID] == 0).all()
    assert (xavier.prefix.init_h == 0).all()
    w = xavier.prefix.rnn.weight_ih_l0  # (3 * 48, 64): xavier std = sqrt(2 / (64 + 144))
    assert w.std().item() == pytest.approx(math.sqrt(2 / (64 + 144)), rel=0.1)


def test_val_and_test_perplexity_are_token_weighted_over_the_epoch():
    g = torch.Generator().manual_seed(3)
    gen = CaptionGenerator(V, F, **TINY_GEN)
    # Unequal token counts (2 x 2 vs 3 x 8 targets), so a mean of batch means would differ.
    batches = [
        make_batch(random_sentences(2, g, lo=1, hi=1), torch.randn(2, F, generator=g)),
        make_batch(random_sentences(3, g, lo=7, hi=7), torch.randn(3, F, generator=g)),
    ]
    nll = [
        -gen.token_logprobs(b["features"], b["inputs"], b["targets"]).sum().item() for b in batches
    ]
    count = [(b["targets"] != PAD_ID).sum().item() for b in batches]
    token_mean = sum(nll) / sum(count)
    batch_mean = sum(n / c for n, c in zip(nll, count, strict=True)) / 2
    assert abs(token_mean - batch_mean) > 0.01  # the test can tell the two apart
    t = trainer()
    (val,) = t.validate(gen, DataLoader(batches, batch_size=None), verbose=False)
    assert val["val/loss"] == pytest.approx(token_mean, rel=1e-5)
    assert val["val/pplx"] == pytest.approx(math.exp(token_mean), rel=1e-5)
    (test,) = t.test(gen, DataLoader(batches, batch_size=None), verbose=False)
    assert test["test/pplx"] == pytest.approx(math.exp(token_mean), rel=1e-5)
    # A second epoch starts from zero (the running means were reset).
    (again,) = t.validate(gen, DataLoader(batches[:1], batch_size=None), verbose=False)
    assert again["val/loss"] == pytest.approx(nll[0] / count[0], rel=1e-5)


def brute_force_logprobs(gen, features, inputs, targets):
    columns = [
        gen.token_logprobs(f.expand(len(inputs), -1), inputs, targets).sum(1) for f in features
    ]
    return torch.stack(columns, 1)


@pytest.mark.parametrize("merge,rnn_type", [("concat", "gru"), ("add", "gru"), ("concat", "lstm")])
def test_caption_image_logprobs_equals_brute_force(merge, rnn_type, monkeypatch):
    g = torch.Generator().manual_seed(4)
    size = dict(embed_size=8, rnn_size=6, post_image_size=6 if merge == "add" else 5)
    gen = CaptionGenerator(V, F, merge=merge, rnn_type=rnn_type, image_activation="none", **size)
    features = torch.randn(9, F, generator=g)
    batch = make_batch(random_sentences(11, g))
    expected = brute_force_logprobs(gen, features, batch["inputs"], batch["targets"])
    fast = gen.caption_image_logprobs(features, batch["inputs"], batch["targets"])
    assert fast.shape == (11, 9)
    torch.testing.assert_close(fast, expected, atol=1e-4, rtol=1e-5)
    monkeypatch.setattr(caption_generator_module, "CHUNK_ELEMENTS", 40)  # many small blocks
    chunked = gen.caption_image_logprobs(features, batch["inputs"], batch["targets"])
    torch.testing.assert_close(chunked, expected, atol=1e-4, rtol=1e-5)
    with torch.no_grad():  # logits spread over hundreds of nats: the float64 path
        gen.output.weight.mul_(60)
    expected = brute_force_logprobs(gen, features, batch["inputs"], batch["targets"])
    wide = gen.caption_image_logprobs(features, batch["inputs"], batch["targets"])
    assert expected.min() < -500 and torch.isfinite(wide).all()
    torch.testing.assert_close(wide, expected, atol=1e-3, rtol=1e-5)


def test_lstm_variant_trains_and_generates():
    g = torch.Generator().manual_seed(5)
    gen = CaptionGenerator(V, F, rnn_type="lstm", num_layers=2, min_len=2, max_len=5, **TINY_GEN)
    batch = make_batch(random_sentences(4, g), torch.randn(4, F, generator=g))
    loss, _ = gen.batch_loss(batch)
    loss.backward()
    assert gen.prefix.init_c.grad is not None and gen.prefix.init_c.grad.abs().sum() > 0
    captions, logprobs = gen.generate(batch["features"])
    assert len(captions) == 4 and all(2 <= len(c) <= 5 for c in captions)
    assert torch.isfinite(logprobs).all()


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match=r"post_image_size \(5\) must equal rnn_size \(6\)"):
        CaptionGenerator(V, F, merge="add", **TINY_GEN)
    with pytest.raises(ValueError, match="merge"):
        CaptionGenerator(V, F, merge="multiply")
    with pytest.raises(ValueError, match="image_activation"):
        CaptionGenerator(V, F, image_activation="tanh")
    with pytest.raises(ValueError, match="rnn_type"):
        LanguageModel(V, rnn_type="rnn")
    with pytest.raises(ValueError, match="min_len"):
        CaptionGenerator(V, F, min_len=8, max_len=5)
    gen = CaptionGenerator(V, F, **TINY_GEN)
    with pytest.raises(TypeError, match="min_length"):
        gen.generate(torch.randn(2, F), min_length=3)
    with pytest.raises(ValueError, match="temperature"):
        LanguageModel(V).sample(2, temperature=0)


def test_generate_obeys_the_rules_and_reports_the_model_logprob():
    g = torch.Generator().manual_seed(6)
    gen = CaptionGenerator(V, F, min_len=3, max_len=6, **TINY_GEN)
    with torch.no_grad():  # make <unk> and <eos> tempting: the rules must still hold
        gen.output.bias[UNK_ID] = 3.0
        gen.output.bias[EOS_ID] = 3.0
    features = torch.randn(8, F, generator=g)
    captions, logprobs = gen.generate(features)
    assert gen.training  # generate() restores the mode
    for c in captions:
        assert 3 <= len(c) <= 6 and not {PAD_ID, UNK_ID, BOS_ID, EOS_ID} & set(c)
        assert all(a != b for a, b in zip(c, c[1:], strict=False))
    batch = make_batch(captions, features)
    recomputed = gen.token_logprobs(features, batch["inputs"], batch["targets"]).sum(1)
    torch.testing.assert_close(logprobs, recomputed, atol=1e-4, rtol=1e-5)
    relaxed, _ = gen.generate(features, min_len=0, forbid_unk=False)
    assert any(c == [] or UNK_ID in c for c in relaxed)


# Ten short sentences, distinct after their first word (so the LM can memorise them).
SENTENCES = [
    [4 + i, 4 + (i * 3 + 1) % 16, 4 + (i * 5 + 2) % 16, 4 + (i * 7 + 5) % 16] for i in range(10)
]


def test_language_model_overfits_ten_sentences_and_samples_them():
    torch.manual_seed(0)
    lm = LanguageModel(V, embed_size=32, rnn_size=64, embed_dropout=0, rnn_dropout=0, lr=1e-2)
    batch = make_batch(SENTENCES)
    start = lm.batch_loss(batch)[0].item()
    trainer(max_steps=150).fit(lm, DataLoader([batch] * 150, batch_size=None))
    lm.eval()
    end = lm.batch_loss(batch)[0].item()
    # The first word is a uniform choice among 10; everything after it is determined.
    floor = math.log(10) / 5
    assert start > 2.5 and end < floor + 0.1
    samples = lm.sample(30, temperature=0.5, generator=torch.Generator().manual_seed(0))
    assert all(s in SENTENCES for s in samples)
    assert len({tuple(s) for s in samples}) > 3
    again = lm.sample(30, temperature=0.5, generator=torch.Generator().manual_seed(0))
    assert again == samples
    assert all(len(s) <= 2 for s in lm.sample(10, max_len=2))


def test_generator_memorises_captions_and_beam_search_recovers_them():
    torch.manual_seed(0)
    captions = [[5, 9, 6, 12, 7], [8, 10, 6, 11], [13, 4, 15, 9, 5, 6], [7, 14, 7, 14]]
    features = torch.randn(4, F)
    gen = CaptionGenerator(V, F, embed_size=32, rnn_size=32, post_image_size=32, lr=1e-2,
                           embed_dropout=0, rnn_dropout=0, image_dropout=0,
                           min_len=4, max_len=8, beam_width=3)  # fmt: skip
    batch = make_batch(captions, features)
    trainer(max_steps=150).fit(gen, DataLoader([batch] * 150, batch_size=None))
    for width in (1, 3):
        generated, logprobs = gen.generate(features, beam_width=width)
        assert generated == captions
        assert (logprobs > math.log(0.5)).all()
