"""The transfer methods beyond the study (l2_sp, aux_lm, wise_ft, ulmfit) and the finer
parts, each tested for what it guarantees."""

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from caplm.data.text import Vocabulary
from caplm.models.caption_generator import CaptionGenerator
from caplm.models.language_model import LanguageModel
from caplm.models.transfer.callback import WeightTransfer, selected_names, transfer_prefix
from caplm.models.transfer.methods.aux_lm import AuxLM, gamma_at
from caplm.models.transfer.methods.l2_sp import L2SP
from caplm.models.transfer.methods.ulmfit import (
    ULMFiT,
    ULMFiTMethod,
    group_names,
    slanted_triangular,
    ulmfit_groups,
)
from caplm.models.transfer.methods.wise_ft import choose_alpha, interpolate, validation_loss
from caplm.models.transfer.modes import PARTS, method_problems

SIZES = dict(embed_size=8, rnn_size=12)
LM_VOCAB = Vocabulary(["star", "blue", "red", "circle", "the"])
CAPTION_VOCAB = Vocabulary(["red", "green", "star", "square"])


def _models(gen_vocab=LM_VOCAB, **gen_kw):
    torch.manual_seed(0)
    lm = LanguageModel(len(LM_VOCAB), **SIZES)
    kw = {**SIZES, "post_image_size": 6, **gen_kw}
    gen = CaptionGenerator(len(gen_vocab), feature_size=5, **kw)
    return lm, gen


def _batches(vocab_size=None, n=16, seed=1):
    vocab_size = vocab_size or len(LM_VOCAB)
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, 5, generator=g)
    inputs = torch.randint(4, vocab_size, (n, 6), generator=g)
    inputs[:, 0] = 2
    targets = torch.roll(inputs, -1, 1)
    targets[:, -1] = 3
    return [
        {"features": feats[i : i + 4], "inputs": inputs[i : i + 4], "targets": targets[i : i + 4]}
        for i in range(0, n, 4)
    ]


def _fit(gen, callbacks, epochs=1):
    loader = torch.utils.data.DataLoader(_batches(), batch_size=None)
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    trainer.fit(gen, train_dataloaders=loader)
    return trainer


def _state(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


# -- finer parts ----------------------------------------------------------------------------


def test_the_finer_rnn_parts_are_the_rnn_part_split():
    _, gen = _models(num_layers=2)
    fine = [
        selected_names(gen, [p]) for p in ("rnn_input", "rnn_recurrent", "rnn_bias", "init_state")
    ]
    assert all(fine) and sum(map(len, fine)) == len(set().union(*map(set, fine)))  # disjoint
    assert set().union(*map(set, fine)) == set(selected_names(gen, ["rnn"]))


@pytest.mark.parametrize("part", ["rnn_input", "rnn_recurrent", "rnn_bias", "init_state"])
def test_a_finer_part_copies_itself_and_nothing_else(part):
    lm, gen = _models()
    before = _state(gen)
    transfer_prefix(gen, "init", [part], lm.state_dict(), LM_VOCAB.index_in(LM_VOCAB))
    moved = set(selected_names(gen, [part]))
    lm_state = lm.state_dict()
    for name, p in gen.named_parameters():
        expected = lm_state[name] if name in moved else before[name]
        assert torch.equal(p, expected), name


@pytest.mark.parametrize("merge", ["concat", "add"])
def test_the_output_part_copies_rows_by_word_and_the_rnn_columns(merge):
    vocab = CAPTION_VOCAB  # green, square: not in the LM
    lm, gen = _models(vocab, merge=merge, **({"post_image_size": 12} if merge == "add" else {}))
    before = _state(gen)
    stats = transfer_prefix(gen, "init", ["output"], lm.state_dict(), vocab.index_in(LM_VOCAB))
    W, b, H = gen.output.weight, gen.output.bias, 12
    for word in ("red", "star", "<eos>"):
        i, j = vocab.stoi[word], LM_VOCAB.stoi[word]
        assert torch.equal(W[i, :H], lm.output.weight[j]) and b[i] == lm.output.bias[j]
    for word in ("green", "square"):
        i = vocab.stoi[word]
        assert torch.equal(W[i], before["output.weight"][i]) and b[i] == before["output.bias"][i]
    assert torch.equal(W[:, H:], before["output.weight"][:, H:])  # the image's columns
    assert torch.equal(gen.prefix.embedding.weight, before["prefix.embedding.weight"])
    rows = len(vocab) - 2
    assert stats.params_transferred == rows * H + rows


def test_unknown_part_is_a_clear_error():
    _, gen = _models()
    with pytest.raises(ValueError, match="known parts: embedding, rnn, rnn_input"):
        transfer_prefix(gen, "init", ["decoder"])
    assert set(PARTS) >= {"embedding", "rnn_input", "rnn_recurrent", "rnn_bias", "output"}


# -- l2_sp ----------------------------------------------------------------------------------


def _l2sp(vocab=LM_VOCAB, alpha=0.3, beta=0.0, parts=("embedding", "rnn")):
    lm, gen = _models(vocab)
    row_index = vocab.index_in(LM_VOCAB)
    transfer_prefix(gen, "l2_sp", parts, lm.state_dict(), row_index)
    term = L2SP(alpha, beta, parts, row_index)
    term.anchor(gen)
    return lm, gen, term


def test_l2_sp_penalty_is_zero_at_the_lm_weights():
    _, gen, term = _l2sp()
    assert term.penalty(gen).item() == 0.0
    with torch.no_grad():
        gen.prefix.rnn.weight_hh_l0.add_(0.5)
    expected = 0.3 / 2 * (0.5**2) * gen.prefix.rnn.weight_hh_l0.numel()
    assert term.penalty(gen).item() == pytest.approx(expected, rel=1e-5)


def test_l2_sp_gradient_is_the_closed_form():
    lm, gen, term = _l2sp(CAPTION_VOCAB, alpha=0.3, beta=0.05)
    with torch.no_grad():
        for p in gen.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    gen.zero_grad()
    term.penalty(gen).backward()
    missing = torch.tensor([CAPTION_VOCAB.stoi[w] for w in ("green", "square")])
    for name, p in gen.named_parameters():
        if name in term.anchors:
            ref, mask = term.anchors[name]
            expected = torch.where(mask, 0.3 * (p - ref), 0.05 * p)
        else:
            expected = 0.05 * p
        torch.testing.assert_close(p.grad, expected, rtol=1e-5, atol=1e-7)
    # the embedding rows the LM lacks are "rest" (pulled towards 0), the others to the LM
    ref, mask = term.anchors["prefix.embedding.weight"]
    assert not mask[missing].any() and mask[[CAPTION_VOCAB.stoi["red"]]].all()


def test_l2_sp_is_added_to_the_loss_in_training():
    _, gen = _models()
    cb = [WeightTransfer("l2_sp", lm_state=_models()[0].state_dict(),
                         row_index=LM_VOCAB.index_in(LM_VOCAB)),
          L2SP(1.0, 0.5, ("embedding", "rnn"), LM_VOCAB.index_in(LM_VOCAB))]  # fmt: skip
    trainer = _fit(gen, cb)
    assert gen.loss_terms == [cb[1]]
    assert trainer.callback_metrics["train/l2_sp"] > 0


# -- aux_lm ---------------------------------------------------------------------------------


def test_aux_gamma_decays_linearly_from_gamma_to_gamma_end():
    assert [gamma_at(e, 5, 0.2, 0.1) for e in range(5)] == pytest.approx(
        [0.2, 0.175, 0.15, 0.125, 0.1]
    )
    assert gamma_at(0, 1, 0.2, 0.1) == 0.2


def test_aux_loss_is_the_lms_own_loss_when_the_prefix_is_the_lms():
    lm, gen = _models()
    transfer_prefix(
        gen, "aux_lm", ["embedding", "rnn"], lm.state_dict(), LM_VOCAB.index_in(LM_VOCAB)
    )
    aux = AuxLM(0.2, 0.1, lm.state_dict(), LM_VOCAB.index_in(LM_VOCAB))
    batch = _batches()[0]
    lm.eval(), gen.eval()
    h, _ = gen.prefix(batch["inputs"])
    lm_loss, _ = lm.batch_loss(batch)
    torch.testing.assert_close(aux.lm_loss(h, batch["targets"]), lm_loss)


def _aux_run(gamma):
    lm, gen = _models()
    row_index = LM_VOCAB.index_in(LM_VOCAB)
    callbacks = [WeightTransfer("init", lm_state=lm.state_dict(), row_index=row_index)]
    if gamma is not None:
        callbacks.append(AuxLM(gamma, gamma, lm.state_dict(), row_index))
    torch.manual_seed(5)
    _fit(gen, callbacks, epochs=2)
    return _state(gen)


def test_aux_loss_with_gamma_zero_is_plain_fine_tuning_and_otherwise_is_not():
    plain, zero, on = _aux_run(None), _aux_run(0.0), _aux_run(0.5)
    assert all(torch.equal(plain[n], zero[n]) for n in plain)
    assert not torch.equal(plain["prefix.rnn.weight_hh_l0"], on["prefix.rnn.weight_hh_l0"])
    assert torch.equal(plain["image.0.weight"], zero["image.0.weight"])


# -- wise_ft --------------------------------------------------------------------------------


def test_wise_ft_endpoints_reproduce_the_two_models_exactly():
    _, gen0 = _models()
    torch.manual_seed(9)
    gen1 = CaptionGenerator(len(LM_VOCAB), feature_size=5, post_image_size=6, **SIZES)
    theta_0, theta_1 = gen0.state_dict(), gen1.state_dict()
    batch = _batches()[0]
    gen0.eval(), gen1.eval()
    out0, out1 = gen0(batch["features"], batch["inputs"]), gen1(batch["features"], batch["inputs"])
    _, model = _models()
    model.eval()
    for alpha, out in ((0.0, out0), (1.0, out1)):
        model.load_state_dict(interpolate(theta_0, theta_1, alpha))
        assert torch.equal(model(batch["features"], batch["inputs"]), out)
    half = interpolate(theta_0, theta_1, 0.5)
    torch.testing.assert_close(half["output.weight"],
                               (theta_0["output.weight"] + theta_1["output.weight"]) / 2)  # fmt: skip
    with pytest.raises(ValueError, match="alpha must be in"):
        interpolate(theta_0, theta_1, 1.5)


def test_wise_ft_keeps_the_alpha_best_on_validation():
    _, gen0 = _models()
    torch.manual_seed(9)
    gen1 = CaptionGenerator(len(LM_VOCAB), feature_size=5, post_image_size=6, **SIZES)
    theta_0, theta_1 = gen0.state_dict(), gen1.state_dict()
    val = _batches(seed=3)
    alphas = [0.0, 0.25, 0.5, 0.75, 1.0]
    alpha, scores = choose_alpha(
        gen0, theta_0, theta_1, alphas, lambda m: {"val/loss": validation_loss(m, val)}
    )
    assert list(scores) == alphas
    assert scores[alpha]["val/loss"] == min(s["val/loss"] for s in scores.values())
    assert validation_loss(gen0, val) == scores[alpha]["val/loss"]  # the best is left in


# -- ulmfit ---------------------------------------------------------------------------------


def test_slanted_triangular_rises_then_falls():
    lrs = [slanted_triangular(t, 100, 0.1, 32) for t in range(101)]
    assert lrs[0] == pytest.approx(1 / 32) and lrs[10] == 1.0 and lrs[100] == pytest.approx(1 / 32)
    assert lrs[:11] == sorted(lrs[:11]) and lrs[10:] == sorted(lrs[10:], reverse=True)


def test_ulmfit_groups_and_their_collapse():
    _, gen = _models()
    head, rnn, emb = group_names(gen, ["embedding", "rnn"])
    assert emb == ["prefix.embedding.weight"] and set(rnn) == set(selected_names(gen, ["rnn"]))
    assert "output.weight" in head and "image.0.weight" in head
    assert ulmfit_groups(["output"]) == ["head"]
    problems = dict(method_problems({"mode": "ulmfit", "parts": ["output"], "lr_factor": 2.6,
                                     "cut_frac": 0.1, "ratio": 32}))  # fmt: skip
    assert "groups collapse" in problems["parts"]


class _Snapshots(Callback):
    def __init__(self):
        self.epochs = []

    def on_train_epoch_end(self, trainer, pl_module):
        self.epochs.append(_state(pl_module))


def test_ulmfit_groups_stay_still_until_their_epoch_and_move_after():
    lm, gen = _models()
    start = None
    snaps = _Snapshots()
    ulmfit = ULMFiT(["embedding", "rnn"], **ULMFiTMethod.defaults())

    class _Start(Callback):
        def on_train_start(self, trainer, pl_module):
            nonlocal start
            start = _state(pl_module)

    row_index = LM_VOCAB.index_in(LM_VOCAB)
    _fit(gen, [WeightTransfer("ulmfit", lm_state=lm.state_dict(), row_index=row_index), ulmfit,
               _Start(), snaps], epochs=3)  # fmt: skip
    head, rnn, emb = ulmfit.groups
    moved = [
        {group: any(not torch.equal(snap[n], prev[n]) for n in names)
         for group, names in (("head", head), ("rnn", rnn), ("embedding", emb))}
        for prev, snap in zip([start, *snaps.epochs], snaps.epochs, strict=False)
    ]  # fmt: skip
    assert moved == [
        {"head": True, "rnn": False, "embedding": False},
        {"head": True, "rnn": True, "embedding": False},
        {"head": True, "rnn": True, "embedding": True},
    ]
    assert all(torch.equal(start[n], lm.state_dict()[n]) for n in rnn + emb)  # copied first
    lrs = [g["initial_lr"] for g in gen.trainer.optimizers[0].param_groups]
    assert lrs == pytest.approx([1e-3, 1e-3 / 2.6, 1e-3 / 2.6**2])  # head, rnn, embedding
