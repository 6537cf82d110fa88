"""``model=par_inject`` and ``model=init_inject``: the image goes into the RNN (Tanti, Gatt &
Camilleri 2018, "Where to put the image in an image caption generator").

- ``par_inject``: the image vector is part of the RNN's input at every step, beside the word:
  the RNN reads [word_t; img]. Its input weights are the word columns W_x (the shape of a
  language model's, ``prefix.rnn.weight_ih_l0``) and the image columns W_img
  (``prefix.image_input``, new), so ``W_ih [x; img] = W_x x + W_img img``; the RNN starts from
  a learned state, as the LM's.
- ``init_inject``: the image sets the RNN's initial state, ``h_0 = tanh(W_s img + b_s)`` (every
  layer's; an LSTM's cell state starts at 0); the RNN reads the words alone.

In both the output layer reads the RNN's state alone: ``logits_t = output(h_t)``. The image
vector is merge's image layer (dense, activation, dropout) of the features (region features
flattened). Transfer from a language model (``transfer.parts``): the embedding, the RNN's
recurrent weights and biases and the word columns of its input weights move as into merge;
the image columns (par) and the image-to-state layer (init) are new. init_inject has no
learned initial state, so ``init_state`` cannot move into it (the log says so). The prefix
sees the image, so an LM's transferability scores do not apply (recorded with that reason).

Beam search computes each image's vector (par) or initial state (init) once.
"""

from __future__ import annotations

import torch
from torch import nn

from caplm.models.caption_generator import CaptionGenerator, pack_state, unpack_state
from caplm.models.common import init_parameters, take_rows
from caplm.models.prefix import PrefixEncoder, State

INJECTS = {"par_inject": "par", "init_inject": "init"}
GATES = {"gru": 3, "lstm": 4}


class InjectPrefix(PrefixEncoder):
    """The RNN prefix with the image injected: ``par`` (the image vector beside every word)
    or ``init`` (no learned initial state: the generator gives it, from the image)."""

    def __init__(self, *args, inject: str, image_size: int):
        super().__init__(*args)
        self.inject = inject
        if inject == "par":
            k = self.output_size**-0.5  # nn.GRU's and nn.LSTM's own init of their weights
            self.image_input = nn.Parameter(
                torch.empty(GATES[self.rnn_type] * self.output_size, image_size).uniform_(-k, k)
            )
        else:
            del self.init_h
            if self.rnn_type == "lstm":
                del self.init_c

    def initial_state(self, batch_size: int) -> State:
        if self.inject == "init":
            raise ValueError("init_inject's initial state comes from the image")
        return super().initial_state(batch_size)

    def forward(
        self, tokens: torch.Tensor, state: State | None = None, image: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, State]:
        """tokens (B, T), the state, and for ``par`` the image vectors (B, P) -> outputs
        (B, T, rnn_size) after dropout, and the final state."""
        if self.inject == "init":
            if state is None:
                raise ValueError("init_inject's prefix needs the initial state from the image")
            return super().forward(tokens, state)
        if image is None:
            raise ValueError("par_inject's prefix needs the image vector at every step")
        if state is None:
            state = self.initial_state(tokens.size(0))
        x = self.embed_dropout(self.embedding(tokens))
        x = torch.cat([x, image[:, None, :].expand(-1, x.size(1), -1).to(x.dtype)], -1)
        rnn = self.rnn
        weights = [w for layer in rnn.all_weights for w in layer]
        weights[0] = torch.cat([weights[0], self.image_input], 1)  # W_ih = [W_x, W_img]
        dropout = rnn.dropout if self.training else 0.0
        # The RNN of nn.GRU / nn.LSTM with layer 0's input weights widened by the image's
        # columns (torch's own kernel: nn.GRU.forward calls the same).
        if self.rnn_type == "gru":
            out, h = torch._VF.gru(x, state, weights, True, rnn.num_layers, dropout,
                                   self.training, False, True)  # fmt: skip
            return self.rnn_dropout(out), h
        out, h, c = torch._VF.lstm(x, state, weights, True, rnn.num_layers, dropout,
                                   self.training, False, True)  # fmt: skip
        return self.rnn_dropout(out), (h, c)


class InjectGenerator(CaptionGenerator):
    """par_inject / init_inject (``architecture``); see the module's doc."""

    architectures = tuple(INJECTS)

    def __init__(self, vocab_size: int, feature_size: int, **kwargs):
        super().__init__(vocab_size, feature_size, **kwargs)
        hp = self.hparams
        if hp.arch != "rnn":
            raise ValueError(
                f"model={hp.architecture} injects the image into an RNN, but the prefix is "
                f"arch={hp.arch}; use an RNN language model (lm=small/medium/large) or "
                "model=merge / merge_attention for a Transformer"
            )
        self.inject = INJECTS[hp.architecture]
        P, H, layers = hp.post_image_size, hp.rnn_size, hp.num_layers
        self.prefix = InjectPrefix(
            vocab_size, hp.embed_size, H, hp.rnn_type, layers, hp.embed_dropout,
            hp.rnn_dropout, inject=self.inject, image_size=P,
        )  # fmt: skip
        if self.inject == "init":
            self.image_state = nn.Linear(P, layers * H)
        self.output = nn.Linear(H, vocab_size)  # reads h_t alone
        init_parameters(self, hp.init)

    @property
    def untransferable(self) -> dict[str, str]:
        """Language-model parameters this generator has no place for, with the reason."""
        if self.inject != "init":
            return {}
        why = "init_inject's RNN starts from the image, not from a learned state"
        return {n: why for n in ("prefix.init_h", "prefix.init_c")}

    @property
    def new_in_prefix(self) -> tuple[str, ...]:
        """The prefix's parameters a language model has no counterpart of."""
        return ("prefix.image_input (the image columns of the RNN's input weights)",) if (
            self.inject == "par") else ()  # fmt: skip

    def _start(self, features: torch.Tensor) -> tuple[State | None, torch.Tensor | None]:
        """The RNN's initial state (init: from the image; par: the learned one) and the
        image vector the RNN reads (par; None for init)."""
        img = self._image_vector(features)
        B = img.size(0)
        if self.inject == "par":
            return self.prefix.initial_state(B), img
        h = torch.tanh(self.image_state(img)).view(B, self.hparams.num_layers, -1)
        h = h.transpose(0, 1).contiguous()
        return ((h, torch.zeros_like(h)) if self.prefix.rnn_type == "lstm" else h), None

    def _states(self, features: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        state, img = self._start(features)
        return self.prefix(inputs, state, img)[0]

    def forward(self, features: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        return self.output(self._states(features, inputs))

    def real_logits(self, batch: dict, rows: torch.Tensor | None) -> torch.Tensor:
        return self.output(take_rows(self._states(batch["features"], batch["inputs"]), rows))

    def _search_start(self, features: torch.Tensor):
        """The image's vector (par) or initial state (init), computed once per image."""
        state, img = self._start(features)
        if self.inject == "init":

            def step(prev, state):
                out, state = self.prefix(prev[:, None], unpack_state(state))
                return self.output(out[:, 0]).log_softmax(-1), pack_state(state)

            return step, pack_state(state)

        def par_step(prev, state):
            *rnn_state, img = state
            out, rnn_state = self.prefix(prev[:, None], unpack_state(rnn_state), img[0])
            return self.output(out[:, 0]).log_softmax(-1), (*pack_state(rnn_state), img)

        return par_step, (*pack_state(state), img[None])

    def caption_image_logprobs(self, features, inputs, targets) -> torch.Tensor:
        """Exact batched scoring of every (caption, image) pair: the RNN sees the image, so
        it runs once per pair (:meth:`CaptionGenerator.pair_logprobs`)."""
        return self.pair_logprobs(features, inputs, targets)
