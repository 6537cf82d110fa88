"""Robust LM training and perplexity under perturbation (caplm.models.robust): each
perturbation's statistics, the adversarial step against finite differences, both LM families."""

import pytest
import torch
import torch.nn.functional as F

from caplm.data.text import BOS_ID, PAD_ID, UNK_ID
from caplm.models import robust
from caplm.models.language_model import LanguageModel

FAMILIES = {
    "rnn": {"embed_size": 12, "rnn_size": 16},
    "transformer": {"arch": "transformer", "embed_size": 12, "rnn_size": 16, "n_heads": 2,
                    "rnn_type": None, "rnn_dropout": None, "max_positions": 32},
}  # fmt: skip
VOCAB = 30


def _lm(arch: str, seed: int = 0) -> LanguageModel:
    torch.manual_seed(seed)
    kwargs = {k: v for k, v in FAMILIES[arch].items() if v is not None}
    return LanguageModel(vocab_size=VOCAB, **kwargs)


def _batch(rows: int = 6, width: int = 9, seed: int = 1) -> dict:
    """inputs <bos> + words and targets words + <eos> with ragged lengths, padded."""
    g = torch.Generator().manual_seed(seed)
    words = torch.randint(4, VOCAB, (rows, width), generator=g)
    lengths = torch.randint(2, width, (rows,), generator=g)
    inputs = torch.full((rows, width + 1), PAD_ID)
    targets = torch.full((rows, width + 1), PAD_ID)
    for i, n in enumerate(lengths.tolist()):
        inputs[i, 0], inputs[i, 1 : n + 1] = BOS_ID, words[i, :n]
        targets[i, :n], targets[i, n] = words[i, :n], 3  # 3: <eos>
    return {"inputs": inputs, "targets": targets}


def test_word_dropout_replaces_words_at_its_rate_and_nothing_else():
    g = torch.Generator().manual_seed(0)
    inputs = torch.randint(4, 500, (400, 50), generator=g)
    inputs[:, 0] = BOS_ID
    inputs[:, 40:] = PAD_ID
    dropped = robust.drop_words(inputs, 0.3, torch.Generator().manual_seed(1))
    words = (inputs != PAD_ID) & (inputs != BOS_ID)
    hit = dropped != inputs
    assert (dropped[hit] == UNK_ID).all()
    assert not hit[~words].any()  # <bos> and padding never touched
    assert hit[words].float().mean().item() == pytest.approx(0.3, abs=0.01)  # 15,600 words
    assert torch.equal(robust.drop_words(inputs, 0.0), inputs)


def test_noise_has_the_norm_asked_for_relative_to_each_embedding():
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(4000, 64, generator=g) * torch.rand(4000, 1, generator=g) * 5
    emb[:10] = 0.0  # a pad row's embedding stays zero
    noisy = robust.add_noise(emb, 0.2, torch.Generator().manual_seed(1))
    ratio = (noisy - emb)[10:].norm(dim=1) / emb[10:].norm(dim=1)
    assert ratio.mean().item() == pytest.approx(0.2, rel=0.02)
    assert ratio.std().item() < 0.03  # chi with 64 degrees of freedom: about 0.0177
    assert torch.equal(noisy[:10], emb[:10])
    assert abs((noisy - emb).mean().item()) < 0.01  # centred
    assert torch.equal(robust.add_noise(emb, 0.0), emb)


@pytest.mark.parametrize("arch", ["rnn", "transformer"])
def test_the_adversarial_step_is_the_gradient_direction_by_finite_differences(arch):
    lm = _lm(arch).double().eval()
    batch = _batch()
    real = batch["targets"] != PAD_ID
    with robust.hooked(lm) as hook:
        loss = F.cross_entropy(lm(batch["inputs"])[real], batch["targets"][real])
        emb = hook.captured
        (grad,) = torch.autograd.grad(loss, emb)
    emb = emb.detach()
    step = robust.adversarial_step(grad, emb, batch["inputs"] != PAD_ID, 0.05)
    # its size: epsilon x the sentence's embedding norm, per sentence
    e_norm = (emb * (batch["inputs"] != PAD_ID)[..., None]).flatten(1).norm(dim=1)
    assert torch.allclose(step.flatten(1).norm(dim=1), 0.05 * e_norm)
    assert (step[batch["inputs"] == PAD_ID] == 0).all()

    def loss_at(delta):
        with robust.hooked(lm) as h, torch.no_grad():
            h.delta = delta
            return F.cross_entropy(lm(batch["inputs"])[real], batch["targets"][real]).item()

    def slope(direction, h=1e-5):  # the loss's derivative along a unit direction, numerically
        u = direction / direction.norm()
        return (loss_at(h * u) - loss_at(-h * u)) / (2 * h)

    # one sentence at a time: its step must be the steepest ascent of the loss, at rate |g_s|
    for s in range(batch["inputs"].size(0)):
        only = torch.zeros_like(step)
        only[s] = step[s]
        assert slope(only) == pytest.approx(grad[s].norm().item(), rel=1e-4)
        g = torch.Generator().manual_seed(s)
        other = torch.zeros_like(step)
        other[s] = torch.randn(step[s].shape, generator=g, dtype=step.dtype)
        other[s] *= (batch["inputs"][s] != PAD_ID)[:, None]
        assert slope(other) < slope(only)
    assert loss_at(step) > loss_at(torch.zeros_like(step))  # the step raises the loss


@pytest.mark.parametrize("arch", ["rnn", "transformer"])
def test_robust_training_steps_train_on_clean_plus_perturbed_loss(arch):
    lm = _lm(arch)
    batch = _batch()
    lm.train()
    plain = lm.training_step(batch, 0)  # no robust settings: the plain step
    lm.robust = robust.RobustTraining({"adversarial": 0.5})
    torch.manual_seed(3)  # the same dropout masks as the plain step below
    both = lm.training_step(batch, 0)
    lm.robust = None
    torch.manual_seed(3)
    clean = lm.training_step(batch, 0)
    assert both.item() > clean.item() > 0  # clean + adversarial loss, each positive
    assert both.item() > 2 * clean.item()  # the perturbed loss is the larger of the two
    assert plain.requires_grad and both.requires_grad
    both.backward()
    assert lm.prefix.embedding.weight.grad.abs().sum() > 0
    # word dropout and noise are drawn in the step: the same seed gives the same loss
    lm.robust = robust.RobustTraining({"word_dropout": 0.2, "noise": 0.1})
    torch.manual_seed(4)
    a = lm.training_step(batch, 0)
    torch.manual_seed(4)
    assert lm.training_step(batch, 0).item() == a.item()


@pytest.mark.parametrize("arch", ["rnn", "transformer"])
def test_perplexity_under_perturbation_is_seeded_and_worse_than_clean(arch):
    lm = _lm(arch).eval()
    batch = _batch(rows=8)
    clean = lm.token_logprobs(batch["inputs"], batch["targets"]).sum().item()
    for kind, strength in (("word_dropout", 0.5), ("noise", 1.0), ("adversarial", 0.5)):
        score = robust.perturbed_scorer(lm, kind, strength, seed=5)
        lp = score(batch["inputs"], batch["targets"])
        assert (lp[batch["targets"] == PAD_ID] == 0).all()
        again = robust.perturbed_scorer(lm, kind, strength, seed=5)(
            batch["inputs"], batch["targets"]
        )
        assert torch.equal(lp, again)
        if kind == "adversarial":  # a first-order ascent step: the log-likelihood falls
            assert lp.sum().item() < clean
    for kind in robust.KINDS:  # strength 0 is the clean score
        zero = robust.perturbed_scorer(lm, kind, 0.0, seed=5)(batch["inputs"], batch["targets"])
        assert zero.sum().item() == pytest.approx(clean, abs=1e-4)
    assert not lm.training


def test_strengths_are_checked_and_an_all_zero_node_is_dropped():
    assert robust.strengths(None) == {"word_dropout": 0.0, "noise": 0.0, "adversarial": 0.0}
    with pytest.raises(ValueError, match="word_dropout must be in"):
        robust.strengths({"word_dropout": 1.0})
    with pytest.raises(ValueError, match="noise must be >= 0"):
        robust.strengths({"noise": -0.1})
    with pytest.raises(ValueError, match="unknown perturbation.*nois"):
        robust.strengths({"nois": 0.1})
    cfg = {"fit": {"batch_size": 2, "robust": {"word_dropout": 0.0, "noise": 0.0}}}
    assert robust.drop_off(cfg, ("fit", "robust")) == {"fit": {"batch_size": 2}}
    on = {"fit": {"robust": {"noise": 0.1}}}
    assert robust.drop_off(on, ("fit", "robust")) == {"fit": {"robust": {"noise": 0.1}}}
    assert robust.drop_off({}, ("eval", "lm_perturbed")) == {}
