"""What the language model and the caption generator share: the next-token loss, the logged
metrics, the optimiser and the weight init.

Batches are dicts with ``inputs`` (B, T) starting with ``<bos>`` and ``targets`` (B, T), the
inputs shifted left and ending with ``<eos>``, both padded with ``<pad>`` (plus
``features`` (B, F) for the generator).

Logged keys: ``train/loss`` every step; ``val/loss``, ``val/pplx``, ``test/loss``,
``test/pplx`` once per epoch. The losses are token means of the natural-log cross-entropy
over real (non-pad) targets; over an epoch every *token* weighs the same (not every batch),
and the perplexity is ``exp`` of that epoch loss.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from caplm.data.text import PAD_ID

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}
INITS = ("xavier_normal", "default")


def check_choice(name: str, value: object, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; known: {', '.join(sorted(choices))}")


def check_sizes(sizes: dict) -> None:
    """Each ``{name: size}`` is a positive integer (a bool is not one)."""
    for name, size in sizes.items():
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"{name} must be a positive integer, got {size!r}")


def check_dropouts(rates: dict) -> None:
    """Each ``{name: probability}`` is in [0, 1)."""
    for name, p in rates.items():
        if not 0.0 <= p < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {p!r}")


def check_training_args(optimizer: str, lr: float, weight_decay: float, init: str) -> None:
    """Fail at construction, not at the first training step."""
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_choice("init", init, INITS)
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")


def init_parameters(module: nn.Module, init: str) -> None:
    """``xavier_normal``: every weight matrix xavier-normal and every bias zero, as the study;
    ``default``: leave PyTorch's init. Learned initial RNN states stay at zero and LayerNorms
    (the Transformer's) at the identity (weight 1, bias 0) either way."""
    check_choice("init", init, INITS)
    if init == "default":
        return
    norms = {id(p) for m in module.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
    # a Hugging Face body keeps its architecture's own initialisation (caplm/models/hf_prefix.py)
    norms |= {id(p) for m in module.modules() if getattr(m, "own_init", False)
              for p in m.parameters()}  # fmt: skip
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.rsplit(".", 1)[-1] in ("init_h", "init_c") or id(p) in norms:
                continue
            if p.dim() >= 2:
                nn.init.xavier_normal_(p)
            else:
                nn.init.zeros_(p)
        for m in module.modules():  # the pad row of an embedding must stay zero
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                m.weight[m.padding_idx].zero_()


@contextmanager
def evaluating(module: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) and no gradients inside; the module's mode is restored after."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        module.train(was_training)


def target_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) at each position (B, T) from logits (B, T, V); 0 where the target is pad."""
    logp = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return logp.masked_fill(targets == PAD_ID, 0.0)


def real_rows(targets: torch.Tensor) -> torch.Tensor:
    """Flat positions (into ``targets.flatten()``) of the real (non-pad) targets, in order."""
    return (targets != PAD_ID).flatten().nonzero()[:, 0]


def take_rows(x: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """``x`` (B, T, ...) at the flat positions ``rows`` (K, ...); None: every one (B * T, ...).

    ``index_select``, not a boolean mask: the same values, and its backward (an index_add)
    is cheaper on the CPU than a mask's (an accumulating index_put)."""
    x = x.flatten(0, 1)
    return x if rows is None else x.index_select(0, rows)


class TokenModel(L.LightningModule):
    """Base of both models: subclasses define ``real_logits(batch, rows) -> (N, V)`` and call
    ``save_hyperparameters()`` with ``optimizer``, ``lr`` and ``weight_decay`` among them."""

    def __init__(self):
        super().__init__()
        # Weighted by token counts, so the epoch mean is exactly token-weighted.
        self.val_nll = MeanMetric()
        self.test_nll = MeanMetric()
        # Set by a transfer method (caplm.models.transfer): terms added to the training loss,
        # each ``term(module, batch) -> (name, value)`` (logged as ``train/<name>``), and an
        # optimiser of its own, ``factory(module)`` -> what configure_optimizers returns.
        self.loss_terms: list = []
        self.optimizer_factory = None

    def real_logits(self, batch: dict, rows: torch.Tensor | None) -> torch.Tensor:
        """Next-token logits (N, V) at the flat positions ``rows`` of the (B, T) batch
        (:func:`real_rows`: the real targets, so the output layer, most of a step's work when
        the vocabulary is large, never runs on padding); None: at every position (B * T, V)."""
        raise NotImplementedError

    def batch_loss(
        self, batch: dict, sync_free: bool | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token-mean cross-entropy over non-pad targets, and the number of those tokens.

        On the CPU the output layer runs on the real positions only. On an accelerator
        (``sync_free``; None: when the batch is not on the CPU) it runs on every position and
        the pad targets are ignored: the same loss (to float rounding) without a host
        synchronisation (picking the real rows needs their count on the host, which waits
        for the device)."""
        targets = batch["targets"]
        n = (targets != PAD_ID).sum()
        if targets.device.type != "cpu" if sync_free is None else sync_free:
            logits = self.real_logits(batch, None)
            return F.cross_entropy(logits, targets.flatten(), ignore_index=PAD_ID), n
        rows = real_rows(targets)
        return F.cross_entropy(self.real_logits(batch, rows), take_rows(targets, rows)), n

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, _ = self.batch_loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["targets"].size(0))
        for term in self.loss_terms:  # train/loss stays the task's loss alone
            name, value = term(self, batch)
            self.log(f"train/{name}", value.detach(), batch_size=batch["targets"].size(0))
            loss = loss + value
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, n = self.batch_loss(batch)
        self.val_nll.update(loss.detach(), weight=n)
        return loss

    def test_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, n = self.batch_loss(batch)
        self.test_nll.update(loss.detach(), weight=n)
        return loss

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val", self.val_nll)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test", self.test_nll)

    def _log_epoch(self, stage: str, nll: MeanMetric) -> None:
        if not nll.update_called:
            return
        loss = nll.compute()  # synced across processes under DDP
        nll.reset()
        self.log(f"{stage}/loss", loss, prog_bar=True)
        self.log(f"{stage}/pplx", loss.exp(), prog_bar=stage == "val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The optimiser named by ``hparams.optimizer`` over the trainable parameters only
        (a frozen, transferred prefix is not handed to it, so nothing can move it)."""
        if self.optimizer_factory is not None:
            return self.optimizer_factory(self)
        hp = self.hparams
        check_choice("optimizer", hp.optimizer, OPTIMIZERS)
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            raise ValueError("every parameter is frozen (requires_grad=False): nothing to train")
        return OPTIMIZERS[hp.optimizer](params, lr=hp.lr, weight_decay=hp.weight_decay)


def constructor_args(cls, cfg) -> dict:
    """The entries of a config (lm / model) that ``cls``'s constructor takes.

    The rest of such a config drives training (epochs, batch size, patience, ...)."""
    import inspect

    names = inspect.signature(cls.__init__).parameters
    return {k: cfg[k] for k in names if k != "self" and k in cfg}
