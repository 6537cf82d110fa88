"""The caption generator: the merge architecture.

The caption prefix goes through the prefix encoder (embedding + RNN, or a Transformer:
``arch``), which never sees the image; the image feature vector goes through its own dense layer; the two meet only after
the RNN, at every time step, and feed the softmax over the vocabulary::

    logits_t = output(merge(prefix(tokens)_t, image(features)))

``merge`` is ``concat`` ([h_t; img], as the study) or ``add`` (h_t + img, which needs
``post_image_size == rnn_size``; ``rnn_size`` is the prefix's output size, a Transformer's
d_model). Because the prefix is image-free, it has the same shape as a language model's and
an LM's prefix can be copied into it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from caplm.data.text import PAD_ID, UNK_ID
from caplm.models.beam_search import SearchRules, beam_search, beam_search_n_best
from caplm.models.common import (
    TokenModel,
    check_choice,
    check_sizes,
    check_training_args,
    evaluating,
    init_parameters,
    take_rows,
    target_logprobs,
)
from caplm.models.hf_prefix import hf_prefix
from caplm.models.prefix import PrefixConfig, make_prefix
from caplm.models.transfer.methods.lora import add_lora

MERGES = ("concat", "add")
#: ``model.architecture``: where words and picture meet (caplm/models/architectures.py);
#: this module's generator is ``merge``, the study's.
ARCHITECTURE = "merge"
IMAGE_ACTIVATIONS = {"relu": nn.ReLU, "none": nn.Identity}
#: The generation rules ``generate`` takes as overrides; their defaults are constructor args.
RULES = ("min_len", "max_len", "forbid_unk", "no_repeat", "no_repeat_ngram")
#: The keys of a ``generation`` config: the beam width and the rules.
GENERATION_KEYS = ("beam_width", *RULES)
#: caption_image_logprobs works in blocks of at most this many floats per intermediate.
CHUNK_ELEMENTS = 2**23


class CaptionGenerator(TokenModel):
    #: The ``architecture`` values this class builds (subclasses: their own).
    architectures = (ARCHITECTURE,)

    def __init__(
        self,
        vocab_size: int,
        feature_size: int,
        embed_size: int = 256,
        rnn_size: int = 256,
        rnn_type: str = "gru",
        num_layers: int = 1,
        post_image_size: int = 256,
        image_activation: str = "relu",
        merge: str = "concat",
        embed_dropout: float = 0.1,
        rnn_dropout: float = 0.1,
        image_dropout: float = 0.1,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        init: str = "xavier_normal",
        beam_width: int = 4,
        min_len: int = 5,
        max_len: int = 20,
        forbid_unk: bool = True,
        no_repeat: bool = True,
        no_repeat_ngram: int = 0,
        arch: str = "rnn",
        n_heads: int | None = None,
        ff_size: int | None = None,
        max_positions: int | None = None,
        positions: str | None = None,
        block_dropout: float | None = None,
        architecture: str = ARCHITECTURE,
        regions: int | None = None,
        hf_path: str | None = None,
        gradient_checkpointing: bool = False,
        lora: dict | None = None,
    ):
        super().__init__()
        check_training_args(optimizer, lr, weight_decay, init)
        check_choice("merge", merge, MERGES)
        check_choice("image_activation", image_activation, IMAGE_ACTIVATIONS)
        if merge == "add" and post_image_size != rnn_size:
            raise ValueError(
                f"merge='add' adds the image vector to the prefix output, so post_image_size "
                f"({post_image_size}) must equal rnn_size ({rnn_size}); use merge='concat' "
                f"or make them equal"
            )
        if not 0.0 <= image_dropout < 1.0:
            raise ValueError(f"image_dropout must be in [0, 1), got {image_dropout!r}")
        _check_rules(beam_width, min_len, max_len)
        if (
            not isinstance(no_repeat_ngram, int)
            or isinstance(no_repeat_ngram, bool)
            or no_repeat_ngram < 0
        ):
            raise ValueError(
                f"no_repeat_ngram must be an integer >= 0 (0: off), got {no_repeat_ngram!r}"
            )
        check_choice("architecture", architecture, type(self).architectures)
        if regions is not None:
            check_sizes({"regions": regions})
        self.save_hyperparameters()
        if arch == "hf":  # a Hugging Face LM's body (lm=hf: caplm/models/hf_prefix.py)
            self.prefix = hf_prefix(vocab_size, hf_path, gradient_checkpointing)
        else:
            self.prefix = make_prefix(vocab_size, PrefixConfig.of(self.hparams))
        _check_positions(self.prefix, max_len)
        # Region features (B, R, D) reach merge's image layer flattened (B, R * D).
        self.image = nn.Sequential(
            nn.Linear(feature_size * self.image_inputs, post_image_size),
            IMAGE_ACTIVATIONS[image_activation](),
            nn.Dropout(image_dropout),
        )
        H = self.prefix.output_size
        merged_size = H + post_image_size if merge == "concat" else H
        self.output = nn.Linear(merged_size, vocab_size)
        init_parameters(self, init)
        if lora:  # a checkpoint of a transfer=lora fit (caplm/models/transfer/methods/lora.py)
            add_lora(self, lora)

    @property
    def image_inputs(self) -> int:
        """The vectors an image's features hold: ``regions``, or 1 (a flat vector)."""
        return self.hparams.regions or 1

    def check_features(self, features: torch.Tensor) -> torch.Tensor:
        """``features`` if their shape is the one this generator was built for, ``(B,
        feature_size)`` or ``(B, regions, feature_size)``; else a ValueError saying both."""
        hp = self.hparams
        want = (hp.feature_size,) if hp.regions is None else (hp.regions, hp.feature_size)
        if tuple(features.shape[1:]) != want:
            raise ValueError(
                f"image features of shape {tuple(features.shape[1:])} per image, but the "
                f"caption generator was built for {want} (feature_size, and regions: "
                "data.encoder.regions or a features file's (N, R, D)); use the features it was "
                "trained on"
            )
        return features

    def _merge(self, h: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        """h (..., H) and img (..., P), broadcast over the leading dims."""
        if self.hparams.merge == "add":
            return h + img
        img = img.expand(*h.shape[:-1], img.size(-1))
        return torch.cat([h, img], dim=-1)

    def forward(self, features: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """features (B, F) (or (B, R, D)), inputs (B, T) -> next-token logits (B, T, V)."""
        h, _ = self.prefix(inputs)
        return self.output(self._merge(h, self._image_vector(features)[:, None, :]))

    def real_logits(self, batch: dict, rows: torch.Tensor | None) -> torch.Tensor:
        h, _ = self.prefix(batch["inputs"])
        img = self._image_vector(batch["features"])[:, None, :].expand(-1, h.size(1), -1)
        return self.output(self._merge(take_rows(h, rows), take_rows(img, rows)))

    def _image_vector(self, features: torch.Tensor) -> torch.Tensor:
        """The image layer's vector (B, post_image_size) of features (B, F) or (B, R, D)."""
        return self.image(self.check_features(features).flatten(1))

    def token_logprobs(
        self, features: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """Natural-log probability of each target token (B, T), 0 where the target is pad.

        Runs in eval mode without gradients (the module's mode is restored after)."""
        with evaluating(self):
            logits = self(features.to(self.device), inputs.to(self.device))
            return target_logprobs(logits, targets.to(self.device))

    def generate(
        self, features: torch.Tensor, beam_width: int | None = None, **rule_overrides
    ) -> tuple[list[list[int]], torch.Tensor]:
        """The best caption for each image by batched beam search, and its log-probability.

        features (B, F) -> (word ids of each caption, without ``<bos>``/``<eos>``; total
        log-probability (B,), the ``<eos>`` step included). ``beam_width`` and the rules
        (``min_len``, ``max_len``, ``forbid_unk``, ``no_repeat``, ``no_repeat_ngram``) default to the
        constructor's values; ``<pad>`` and ``<bos>`` are never generated. Runs in eval mode
        without gradients. See :func:`caplm.models.beam_search.beam_search`.
        """
        with evaluating(self):
            args = self._search_args(features.to(self.device), beam_width, rule_overrides)
            if args["batch_size"] == 0:
                return [], torch.zeros(0, device=self.device)
            return beam_search(**args)

    def generate_n_best(
        self,
        features: torch.Tensor,
        n_best: int,
        beam_width: int | None = None,
        **rule_overrides,
    ) -> list[list[tuple[list[int], float]]]:
        """The ``n_best`` best distinct captions of each image, best first, with their total
        log-probabilities: per image ``[(word ids, logprob), ...]``, the first being
        :meth:`generate`'s caption. ``n_best`` is at most the beam width. The same arguments
        and rules as :meth:`generate`; see :func:`caplm.models.beam_search.beam_search_n_best`.
        """
        with evaluating(self):
            args = self._search_args(features.to(self.device), beam_width, rule_overrides)
            if args["batch_size"] == 0:
                return []
            return beam_search_n_best(**args, n_best=n_best)

    def _search_args(self, features: torch.Tensor, beam_width: int | None, overrides: dict):
        """The beam search's arguments for ``features`` (on the device) under the
        constructor's generation settings with ``overrides`` (checked here)."""
        unknown = set(overrides) - set(RULES)
        if unknown:
            raise TypeError(f"unknown generation rule(s) {sorted(unknown)}; known: {RULES}")
        rules = {name: overrides.get(name, self.hparams[name]) for name in RULES}
        width = self.hparams.beam_width if beam_width is None else beam_width
        _check_rules(width, rules["min_len"], rules["max_len"])
        _check_positions(self.prefix, rules["max_len"])

        step, state = self._search_start(self.check_features(features))
        return dict(
            step_fn=step,
            init_state=state,
            batch_size=features.size(0),
            rules=SearchRules(
                beam_width=width,
                max_len=rules["max_len"],
                min_len=rules["min_len"],
                forbid=(PAD_ID, UNK_ID) if rules["forbid_unk"] else (PAD_ID,),
                no_repeat=rules["no_repeat"],
                no_repeat_ngram=rules["no_repeat_ngram"],
            ),
        )

    def _search_start(self, features: torch.Tensor):
        """The beam search's ``step_fn`` and its initial state for ``features`` (B, ...).

        The prefix's state (an RNN's hidden state, a Transformer's key/value cache) and the
        image's part of the logits (the same at every step: computed once per image) ride in
        the search state (rows in dim 1), so the search keeps each beam next to its own state
        and image."""
        W_h, _ = self._output_parts()

        def step(prev: torch.Tensor, state: tuple[torch.Tensor, ...]):
            *prefix_state, image_logits = state
            out, prefix_state = self.prefix(prev[:, None], unpack_state(prefix_state))
            logits = F.linear(out[:, 0], W_h) + image_logits[0]
            return logits.log_softmax(-1), (*pack_state(prefix_state), image_logits)

        B = features.size(0)
        return step, (*pack_state(self.prefix.initial_state(B)), self._image_logits(features)[None])

    def caption_image_logprobs(
        self, features: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """Total log-probability of each caption given each image: (N captions, M images).

        For image retrieval (rank every image for a caption). Brute force would run the
        network N x M times; instead, since the RNN never sees the image, its outputs are
        computed once per caption, and the output layer splits as
        ``logits = W_h h_t + (W_i img_j + b)`` (concat: W = [W_h, W_i]; add: W_h = W_i = W).
        So ``log p(y_t | h_t, img_j) = a[t, y_t] + c[j, y_t] - log sum_v exp(a[t, v] +
        c[j, v])`` with a = W_h h_t and c = W_i img_j + b, and the log-sum-exp for every
        (step, image) pair is one matrix product of exponentials. Runs in eval mode, in
        blocks of at most ``CHUNK_ELEMENTS`` floats.
        """
        with evaluating(self):
            features, inputs = features.to(self.device), inputs.to(self.device)
            targets = targets.to(self.device)
            W_h, _ = self._output_parts()
            c = self._image_logits(features)  # (M, V)
            N, T = targets.shape
            V = c.size(1)
            out = torch.zeros(N, c.size(0), dtype=c.dtype, device=c.device)
            per_chunk = max(1, CHUNK_ELEMENTS // (T * V))  # captions per block
            for lo in range(0, N, per_chunk):
                sl = slice(lo, lo + per_chunk)
                out[sl] = self._caption_block(self.prefix(inputs[sl])[0], targets[sl], W_h, c)
            return out

    def pair_logprobs(
        self, features: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """Total log-probability of each caption given each image, (N captions, M images),
        by running the whole generator on every (caption, image) pair, batched: exact for
        any architecture (merge's cheaper :meth:`caption_image_logprobs` relies on its
        image-free prefix and split output layer). Runs in eval mode, in blocks of at most
        ``CHUNK_ELEMENTS`` logits."""
        with evaluating(self):
            features, inputs = features.to(self.device), inputs.to(self.device)
            targets = targets.to(self.device)
            (N, T), M = targets.shape, features.size(0)
            out = torch.zeros(N, M, device=self.device)
            pairs = max(1, CHUNK_ELEMENTS // (T * self.hparams.vocab_size))  # per forward
            per_images = min(M, pairs)
            per_captions = max(1, pairs // max(1, per_images))
            for lo in range(0, N, per_captions):
                c = slice(lo, lo + per_captions)
                n = len(targets[c])
                for mlo in range(0, M, per_images):
                    m = slice(mlo, mlo + per_images)
                    k = len(features[m])
                    pair_features = features[m].repeat(n, *[1] * (features.dim() - 1))
                    logits = self(pair_features, inputs[c].repeat_interleave(k, 0))
                    logp = target_logprobs(logits, targets[c].repeat_interleave(k, 0))
                    out[c, m] = logp.sum(1).view(n, k)
            return out

    def _output_parts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The output layer's weights split as ``logits = W_h h + (W_i img + b)``: concat,
        W = [W_h, W_i]; add, W_h = W_i = W. The image's term is the same at every step."""
        W, H = self.output.weight, self.prefix.output_size
        return (W[:, :H], W[:, H:]) if self.hparams.merge == "concat" else (W, W)

    def _image_logits(self, features: torch.Tensor) -> torch.Tensor:
        """The image's term of the logits, ``W_i img + b``: (B, V) for features (B, F)."""
        return F.linear(self._image_vector(features), self._output_parts()[1], self.output.bias)

    def _caption_block(
        self, h: torch.Tensor, targets: torch.Tensor, W_h: torch.Tensor, c: torch.Tensor
    ) -> torch.Tensor:
        """log p(caption | image) (n, M) for a block of captions: RNN outputs h (n, T, H)."""
        real = targets != PAD_ID
        which = real.nonzero()[:, 0]  # caption of each real (non-pad) target position
        a = F.linear(h[real], W_h)  # (K, V): one row per real target position
        y = targets[real]
        # sum_t a[t, y_t] + sum_t c[j, y_t]: the second term via per-caption word counts.
        counts = torch.zeros(h.size(0), c.size(1), dtype=c.dtype, device=c.device)
        counts.index_put_((which, y), torch.ones_like(y, dtype=c.dtype), accumulate=True)
        result = torch.zeros(h.size(0), dtype=c.dtype, device=c.device)
        result.index_add_(0, which, a.gather(1, y[:, None])[:, 0])
        result = result[:, None] + counts @ c.T
        if a.size(0) == 0:
            return result
        # log sum_v exp(a_v + c_v) = log(exp(a - max a) @ exp(c - max c).T) + max a + max c.
        # Every term of that sum is at least exp(-(range of a) - (range of c)); float32 keeps
        # it clear of underflow while that exponent stays above -80, else use float64.
        a_max, c_max = a.max(1, keepdim=True).values, c.max(1, keepdim=True).values
        a_range = (a_max - a.min(1, keepdim=True).values).max()
        c_range = (c_max - c.min(1, keepdim=True).values).max()
        dtype = torch.float32 if a_range + c_range < 80 else torch.float64
        ea, ec = (a - a_max).to(dtype).exp(), (c - c_max).to(dtype).exp()
        lse = torch.zeros_like(result)
        per_chunk = max(1, CHUNK_ELEMENTS // max(1, a.size(0)))  # images per block
        for lo in range(0, c.size(0), per_chunk):
            sl = slice(lo, lo + per_chunk)
            block = (ea @ ec[sl].T).log().to(c.dtype) + a_max + c_max[sl].T  # (K, m)
            lse[:, sl].index_add_(0, which, block)
        return result - lse


def pack_state(state) -> tuple:
    """A prefix state as a tuple of tensors (an LSTM's is one already)."""
    return state if isinstance(state, tuple) else (state,)


def unpack_state(tensors):
    """The prefix state from :func:`pack_state`'s tensors."""
    return tuple(tensors) if len(tensors) > 1 else tensors[0]


def _check_positions(prefix, max_len: int) -> None:
    """A caption of ``max_len`` words is decoded from ``max_len + 1`` positions (<bos> on)."""
    limit = prefix.max_positions
    if limit is not None and max_len + 1 > limit:
        raise ValueError(
            f"generation max_len={max_len} needs {max_len + 1} positions (<bos> and the words) "
            f"but the Transformer prefix has max_positions={limit}; raise lm.max_positions or "
            "lower generation.max_len"
        )


def _check_rules(beam_width: int, min_len: int, max_len: int) -> None:
    if not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"beam_width must be a positive integer, got {beam_width!r}")
    if not 0 <= min_len <= max_len:
        raise ValueError(f"need 0 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
