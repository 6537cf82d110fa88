"""Robust language models: perturbed inputs in training, and perplexity under perturbation.

Three perturbations, each with one strength (``lm.fit.robust`` in training, ``eval.lm_perturbed``
at test time; 0 is off):

- ``word_dropout`` p: each input word (not ``<bos>``, not padding) becomes ``<unk>`` with
  probability p; the targets stay the true words.
- ``noise`` sigma: Gaussian noise on each input word embedding e, scaled to its norm:
  e + sigma ||e|| z / sqrt(d), z ~ N(0, I_d), so the noise's norm is about sigma ||e||.
- ``adversarial`` epsilon: the fast gradient method of Miyato, Dai & Goodfellow (2017): the
  embeddings E of a sentence move by r = epsilon ||E|| g / ||g||, g the gradient of the loss
  with respect to E (norms over the sentence's real positions, as their per-sequence
  normalisation); training minimises the clean loss plus the loss at E + r (r held constant).
  Miyato et al. normalise the embeddings so that a model cannot escape a fixed-size step by
  growing them; scaling the step by the sentence's own embedding norm does the same job here.

The embeddings are the prefix's word embedding output (``prefix.embedding``: the GRU's input,
the Transformer's before its projection and positions), perturbed by a forward hook, so both
LM families take the same code. A robust LM is saved, cached and transferred as any other:
only how its weights were trained differs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from caplm.data.text import BOS_ID, PAD_ID, UNK_ID
from caplm.models.common import target_logprobs
from caplm.results import PERTURBATIONS

#: The perturbations, in the order results and reports list them.
KINDS = PERTURBATIONS
#: What each strength may be (checked with the config): p < 1, the others any size.
LIMITS = {"word_dropout": (0.0, 1.0), "noise": (0.0, None), "adversarial": (0.0, None)}


def strengths(node: Mapping | None) -> dict[str, float]:
    """The strengths of an ``lm.fit.robust`` / ``eval.lm_perturbed`` node (absent: 0)."""
    node = dict(node or {})
    unknown = sorted(set(node) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown perturbation(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
    out = {kind: float(node.get(kind) or 0.0) for kind in KINDS}
    for kind, value in out.items():
        low, high = LIMITS[kind]
        if value < low or (high is not None and value >= high):
            bound = f"in [0, {high:g})" if high is not None else ">= 0"
            raise ValueError(f"{kind} must be {bound}, got {value!r}")
    return out


def is_off(node: Mapping | None) -> bool:
    """Whether no perturbation is on (every strength 0)."""
    return not any(strengths(node).values())


def drop_off(cfg: dict, path: tuple[str, ...]) -> dict:
    """``cfg`` without the node at ``path`` when it turns nothing on, so configs from before
    these settings existed (and their cache keys, job hashes) stay as they were."""
    *parents, name = path
    node = cfg
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and name in node and is_off(node[name]):
        node.pop(name)
    return cfg


# -- the perturbations ------------------------------------------------------------------------


def drop_words(inputs: torch.Tensor, p: float, generator: torch.Generator | None = None):
    """``inputs`` (B, T) with each word (not ``<bos>``, not ``<pad>``) replaced by ``<unk>``
    with probability ``p``."""
    if not p:
        return inputs
    draw = torch.rand(inputs.shape, generator=generator, device=_where(generator, inputs))
    hit = (draw.to(inputs.device) < p) & (inputs != PAD_ID) & (inputs != BOS_ID)
    return inputs.masked_fill(hit, UNK_ID)


def add_noise(emb: torch.Tensor, sigma: float, generator: torch.Generator | None = None):
    """``emb`` (..., d) plus Gaussian noise of norm about ``sigma`` x each vector's norm."""
    if not sigma:
        return emb
    z = torch.randn(emb.shape, generator=generator, device=_where(generator, emb))
    z = z.to(device=emb.device, dtype=emb.dtype)
    scale = sigma * emb.detach().norm(dim=-1, keepdim=True) / emb.size(-1) ** 0.5
    return emb + scale * z


def adversarial_step(grad: torch.Tensor, emb: torch.Tensor, real: torch.Tensor, epsilon: float):
    """The fast gradient step r (B, T, d) for embeddings ``emb`` with loss gradient ``grad``:
    per sentence, epsilon ||E|| g / ||g|| over its real positions (``real`` (B, T)); 0 for a
    sentence whose gradient is 0. Detached: the step is a constant of the loss it feeds."""
    mask = real[..., None].to(grad.dtype)
    g, e = grad.detach() * mask, emb.detach() * mask
    g_norm = g.flatten(1).norm(dim=1).clamp_min(torch.finfo(g.dtype).tiny)
    e_norm = e.flatten(1).norm(dim=1)
    return (epsilon * e_norm / g_norm)[:, None, None] * g


def _where(generator, tensor):
    return generator.device if generator is not None else tensor.device


class EmbeddingHook:
    """A forward hook on a prefix's word embedding: adds noise (``noise``), a fixed step
    (``delta``), and keeps the output it returns (``captured``, for its gradient)."""

    def __init__(self):
        self.noise, self.generator = 0.0, None
        self.delta: torch.Tensor | None = None
        self.captured: torch.Tensor | None = None

    def __call__(self, module, args, output):
        output = add_noise(output, self.noise, self.generator)
        if self.delta is not None:
            if self.delta.shape != output.shape:
                raise ValueError(
                    f"an adversarial step of shape {tuple(self.delta.shape)} for embeddings of "
                    f"shape {tuple(output.shape)}: a Transformer scores text longer than "
                    "max_positions in windows, which an embedding step cannot follow; raise "
                    "lm.max_positions"
                )
            output = output + self.delta
        self.captured = output
        return output


@contextmanager
def hooked(model) -> Iterator[EmbeddingHook]:
    """``model.prefix.embedding`` perturbed by an :class:`EmbeddingHook` inside the block."""
    hook = EmbeddingHook()
    handle = model.prefix.embedding.register_forward_hook(hook)
    try:
        yield hook
    finally:
        handle.remove()


# -- training ---------------------------------------------------------------------------------


class RobustTraining:
    """The training step of an LM with perturbed inputs (``LanguageModel.robust``): word
    dropout and noise on every batch; with ``adversarial``, the loss is the perturbed batch's
    plus that of its fast-gradient step (logged as ``train/loss`` and ``train/adv_loss``)."""

    def __init__(self, node: Mapping):
        self.strengths = strengths(node)

    def training_step(self, model, batch: dict) -> torch.Tensor:
        s = self.strengths
        inputs, targets = drop_words(batch["inputs"], s["word_dropout"]), batch["targets"]
        real = targets != PAD_ID
        size = targets.size(0)
        with hooked(model) as hook:
            hook.noise = s["noise"]
            loss = _loss(model, inputs, targets, real)
            model.log("train/loss", loss, prog_bar=True, batch_size=size)
            if not s["adversarial"]:
                return loss
            emb = hook.captured
            (grad,) = torch.autograd.grad(loss, emb, retain_graph=True)
            hook.delta = adversarial_step(grad, emb, inputs != PAD_ID, s["adversarial"])
            adv = _loss(model, inputs, targets, real)
        model.log("train/adv_loss", adv.detach(), batch_size=size)
        return loss + adv


def _loss(model, inputs, targets, real) -> torch.Tensor:
    return F.cross_entropy(model.output(model.prefix(inputs)[0][real]), targets[real])


# -- perplexity under perturbation ------------------------------------------------------------


def perturbed_scorer(model, kind: str, strength: float, seed: int):
    """``score(inputs, targets) -> (B, T)`` token log-probabilities of ``model`` (in eval
    mode: no dropout) with its inputs perturbed by ``kind`` at ``strength``; the random draws
    come from a generator seeded by ``seed``, so a measure is repeatable. The adversarial step
    is each sentence's own (the gradient of its summed token loss)."""
    if kind not in KINDS:
        raise ValueError(f"unknown perturbation {kind!r}; known: {', '.join(KINDS)}")
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    device = next(model.parameters()).device

    def score(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        inputs, targets = inputs.to(device), targets.to(device)
        if kind == "word_dropout":
            return model.token_logprobs(drop_words(inputs, strength, gen), targets)
        was_training = model.training
        model.eval()
        try:
            with hooked(model) as hook:
                if kind == "noise":
                    hook.noise, hook.generator = strength, gen
                    with torch.no_grad():
                        return _logprobs(model, inputs, targets)
                with torch.enable_grad():
                    lp = _logprobs(model, inputs, targets)
                    (grad,) = torch.autograd.grad(-lp.sum(), hook.captured)
                hook.delta = adversarial_step(grad, hook.captured, inputs != PAD_ID, strength)
                with torch.no_grad():
                    return _logprobs(model, inputs, targets)
        finally:
            model.train(was_training)

    return score


def _logprobs(model, inputs, targets) -> torch.Tensor:
    return target_logprobs(model(inputs), targets)
