"""A Hugging Face causal LM as caplm's prefix (``lm=hf``, ``arch: hf``) and as a language model.

:class:`HFPrefix` holds the LM's body (``AutoModel``: embedding, positions, blocks, final
norm; no head) with the prefix interface of caplm/models/prefix.py: ``forward(tokens,
state) -> (outputs (B, T, hidden), state)``, ``initial_state(B)``, ``arch``, ``output_size``,
``max_positions``. Its tokens are caplm ids of the tokenizer's :class:`SubwordVocabulary`,
mapped to the tokenizer's ids inside. The state is the tokens fed so far, (1, B, S): each
step runs the body over the whole prefix again (no key/value cache; captions are short), and
its rows are in dim 1 as the beam search wants.

The generator's prefix is built from the folder's config with the architecture's own random
initialisation (``transfer=none`` / ``random_frozen``); ``init``/``frozen``/... copy the LM's
weights into it by parameter name (caplm/models/transfer/callback.py). :class:`HFLanguageModel`
is the LM: the same prefix with the pretrained weights, and its head as ``output`` (over the
tokenizer's ids; :attr:`SubwordVocabulary.output_map` picks the rows of caplm's ids).

``transfer.parts`` of an ``hf`` prefix, found from the model (:meth:`HFPrefix.part_table`):
``embedding`` (token embedding), ``positions`` (learned positions, where the model has them),
``blocks`` (every block and the final norm), ``blocks:I-J``, ``final_norm``, ``rnn`` (the
whole sequence model: positions, blocks, final norm) and ``output`` (the LM head's rows into
the generator's output layer).
"""

from __future__ import annotations

import torch
from torch import nn

from caplm.data.subword import SubwordVocabulary
from caplm.hf import transformers
from caplm.models.common import TokenModel, evaluating, target_logprobs
from caplm.models.language_model import LanguageModel
from caplm.models.transfer.modes import block_range

NORM_NAMES = ("ln_f", "norm", "final_layer_norm", "final_layernorm", "final_norm")
#: The HF settings of ``conf/lm/hf.yaml`` that the prefix takes.
HF_KEYS = ("path", "gradient_checkpointing", "attn_implementation")


def load_config(path: str):
    return transformers().AutoConfig.from_pretrained(str(path), local_files_only=True)


class HFPrefix(nn.Module):
    arch = "hf"
    own_init = True  # caplm's init_parameters leaves it at its architecture's own

    def __init__(
        self,
        vocab: SubwordVocabulary,
        path: str,
        gradient_checkpointing: bool = False,
        body: nn.Module | None = None,
    ):
        super().__init__()
        if body is None:
            body = transformers().AutoModel.from_config(load_config(path))
        self.body = body
        config = body.config
        self.output_size = config.hidden_size
        self.max_positions = getattr(config, "max_position_embeddings", None) or getattr(
            config, "n_positions", None
        )
        self.register_buffer("input_map", vocab.input_map.clone(), persistent=False)
        if len(vocab.input_map) and int(vocab.input_map.max()) >= config.vocab_size:
            raise ValueError(f"{path}: the tokenizer has ids up to {int(vocab.input_map.max())} "
                             f"but the model's embedding has {config.vocab_size} rows")  # fmt: skip
        if gradient_checkpointing:
            body.gradient_checkpointing_enable()
        self._parts = _find_parts(body, config)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        return torch.zeros(1, batch_size, 0, dtype=torch.long, device=self.input_map.device)

    def forward(self, tokens: torch.Tensor, state: torch.Tensor | None = None):
        """tokens (B, T) caplm ids after the tokens in ``state`` (1, B, S) -> outputs
        (B, T, hidden) and the new state (1, B, S + T)."""
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be (batch, time), got shape {tuple(tokens.shape)}")
        ids = self.input_map[tokens]
        start = 0 if state is None else state.size(-1)
        if start:
            ids = torch.cat([state[0], ids], 1)
        W = self.max_positions
        if W is not None and ids.size(1) > W:
            if start:
                raise ValueError(f"decoding reached position {ids.size(1) - 1} but the model "
                                 f"has max_positions={W}; lower generation.max_len")  # fmt: skip
            return self._windowed(ids), ids[None]
        out = self.body(input_ids=ids, use_cache=False).last_hidden_state
        return out[:, -tokens.size(1) :], ids[None]

    def _windowed(self, ids: torch.Tensor) -> torch.Tensor:
        """Text longer than max_positions W (evaluation scores whole sentences): the first W
        outputs from one window, then each next W / 2 from the window of W tokens ending with
        them (as the Transformer prefix's ``_windowed``)."""
        W, T = self.max_positions, ids.size(1)
        stride = max(1, W // 2)
        outs = [self.body(input_ids=ids[:, :W], use_cache=False).last_hidden_state]
        for lo in range(W, T, stride):
            hi = min(lo + stride, T)
            out = self.body(input_ids=ids[:, hi - W : hi], use_cache=False).last_hidden_state
            outs.append(out[:, lo - hi :])
        return torch.cat(outs, 1)

    @property
    def num_layers(self) -> int:
        return self._parts["layers"]

    def part_table(self) -> dict[str, tuple[str, ...]]:
        """Part name -> generator parameter-name prefixes (``prefix.body.``...)."""
        p = {k: tuple(f"prefix.body.{n}." for n in v) for k, v in self._parts["names"].items()}
        return {
            "embedding": p["embedding"],
            "positions": p["positions"],
            "blocks": p["blocks"] + p["final_norm"],
            "final_norm": p["final_norm"],
            "rnn": p["positions"] + p["blocks"] + p["final_norm"],
            "output": ("output.",),
        }

    def part_prefixes(self, part: str) -> tuple[str, ...]:
        blocks = block_range(part)
        if blocks is not None:
            lo, hi = blocks
            if hi >= self.num_layers:
                raise ValueError(f"transfer.parts: {part} names block {hi}, but the model has "
                                 f"{self.num_layers} block(s), 0 to {self.num_layers - 1}")  # fmt: skip
            name = self._parts["names"]["blocks"][0]
            return tuple(f"prefix.body.{name}.{i}." for i in range(lo, hi + 1))
        table = self.part_table()
        if part not in table:
            raise ValueError(f"transfer.parts: {part!r} is not a part of a Hugging Face prefix "
                             f"(arch: hf), whose parts are {', '.join(table)}, blocks:I-J")  # fmt: skip
        return table[part]


def _find_parts(body: nn.Module, config) -> dict:
    """The names of the body's embedding, blocks, final norm and other parameterised
    children (learned positions), found from the model itself."""
    children = dict(body.named_children())
    emb = body.get_input_embeddings()
    embedding = [n for n, m in children.items() if m is emb]
    layers = config.num_hidden_layers
    blocks = [n for n, m in children.items() if isinstance(m, nn.ModuleList) and len(m) == layers]
    norm = [n for n in children if n in NORM_NAMES]
    if len(embedding) != 1 or len(blocks) != 1 or len(norm) != 1:
        raise ValueError(
            f"cannot find the embedding, blocks and final norm of {type(body).__name__} "
            f"(children: {', '.join(children)}); caplm knows models whose body has one "
            f"embedding, one list of {layers} blocks and a final norm named {NORM_NAMES}"
        )
    named = {*embedding, *blocks, *norm}
    positions = [n for n, m in children.items()
                 if n not in named and any(True for _ in m.parameters())]  # fmt: skip
    return {
        "layers": layers,
        "names": {
            "embedding": tuple(embedding),
            "blocks": tuple(blocks),
            "final_norm": tuple(norm),
            "positions": tuple(positions),
        },  # fmt: skip
    }


class SubwordHead(nn.Module):
    """An LM head over the tokenizer's ids (``weight`` (V_tok, hidden), ``bias``) giving logits
    over caplm's ids: the row of each id by ``output_map``, -inf where there is none."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, output_map: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone())
        self.bias = nn.Parameter(
            torch.zeros(len(weight)) if bias is None else bias.detach().clone()
        )
        self.register_buffer("rows", output_map.clamp(min=0), persistent=False)
        self.register_buffer("missing", output_map < 0, persistent=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        logits = nn.functional.linear(h, self.weight[self.rows], self.bias[self.rows])
        return logits.masked_fill(self.missing, float("-inf"))


class HFLanguageModel(TokenModel):
    """A pretrained causal LM in caplm's LM interface (``prefix``, ``output``,
    ``token_logprobs``, ``sample``): evaluated as caplm's LMs are, and its weights the source
    of the transfer. Not trained by caplm."""

    def __init__(self, folder: str, vocab: SubwordVocabulary, gradient_checkpointing=False):
        super().__init__()
        causal = transformers().AutoModelForCausalLM.from_pretrained(
            str(folder), local_files_only=True, dtype=torch.float32
        )
        self.prefix = HFPrefix(vocab, folder, gradient_checkpointing, body=causal.base_model)
        head = causal.get_output_embeddings()
        self.output = SubwordHead(head.weight, getattr(head, "bias", None), vocab.output_map)
        self.eval()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.output(self.prefix(inputs)[0])

    def token_logprobs(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with evaluating(self):
            return target_logprobs(self(inputs.to(self.device)), targets.to(self.device))

    def sample(self, num: int, max_len: int = 20, temperature: float = 1.0, generator=None):
        return LanguageModel.sample(self, num, max_len, temperature, generator)


def hf_prefix(vocab_size: int, path: str | None, gradient_checkpointing: bool = False):
    """The generator's prefix for the model at ``path`` (its architecture, random weights),
    fed caplm ids of its tokenizer's vocabulary, which must have ``vocab_size`` ids."""
    if not path:
        raise ValueError("arch: hf needs hf_path, the model's local folder (lm.path)")
    vocab = SubwordVocabulary.from_folder(path, "keep_punct")  # the id maps only
    if len(vocab) != vocab_size:
        raise ValueError(f"vocab_size={vocab_size}, but the tokenizer at {path} gives "
                         f"{len(vocab)} ids (its subwords + caplm's 4 special tokens)")  # fmt: skip
    return HFPrefix(vocab, path, gradient_checkpointing)
