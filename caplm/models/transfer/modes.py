"""The transfer modes (``transfer.mode``), the parts that can move (``transfer.parts``) and
the vocabulary policies (``transfer.vocab_policy``): the one place they are defined.

- ``none``: no transfer; random initialisation (the baseline).
- ``init``: copied from the LM, then fine-tuned with the rest of the generator.
- ``frozen``: copied and frozen (no gradient, not in the optimiser, unchanged by training).
- ``random_frozen``: nothing copied; the untrained, randomly initialised prefix is frozen
  (the study's control: how much of transfer's effect is just a fixed prefix encoder).

Transfer methods beyond the study (``METHODS``; each copies like ``init``, see
:mod:`caplm.models.transfer.methods`), each with its own settings (``MODE_KEYS``):

- ``l2_sp``: fine-tuned with ``alpha/2 ||theta_parts - theta_LM||^2 + beta/2 ||theta_rest||^2``
  added to the loss (Li et al. 2018, "Explicit inductive bias for transfer learning").
- ``aux_lm``: the caption loss plus ``gamma`` times the LM head's loss on the same caption
  prefixes, ``gamma`` going linearly from ``gamma`` to ``gamma_end`` over the epochs.
- ``wise_ft``: a frozen fit (theta_0), then end-to-end fine-tuning from it (theta_1); the
  interpolation ``(1 - a) theta_0 + a theta_1`` best on validation over ``alphas`` is kept
  (Wortsman et al. 2022, "Robust fine-tuning of zero-shot models").
- ``ulmfit``: discriminative learning rates (divided by ``lr_factor`` per group down from the
  head), a slanted triangular schedule and gradual unfreezing, one group per epoch from the
  top (Howard & Ruder 2018, "Universal language model fine-tuning for text classification").

Pure Python (no torch), so the report can name modes without importing the models.
"""

from __future__ import annotations

import re

#: The study's modes.
STUDY_MODES = ("none", "init", "frozen", "random_frozen")
#: Transfer methods beyond the study; they all copy the parts like ``init``.
METHODS = ("l2_sp", "aux_lm", "wise_ft", "ulmfit")
MODES = (*STUDY_MODES, *METHODS)
#: The baseline and the study's control; the report draws them as reference lines.
BASELINE, CONTROL = "none", "random_frozen"
#: Modes that copy a trained LM's weights (the others need no LM).
WITH_LM = ("init", "frozen", *METHODS)
#: Modes that freeze the transferred parts (``wise_ft`` freezes them for its first fit only,
#: ``ulmfit`` until their unfreezing epoch: their freezing is their own, not this).
FREEZING = ("frozen", "random_frozen")
#: What ``transfer.parts`` can name: generator parameter-name prefixes per part. ``rnn`` is
#: the finer ``rnn_input`` + ``rnn_recurrent`` + ``rnn_bias`` + ``init_state`` together;
#: ``output`` is the LM's output layer as the generator's (rows by token string, the columns
#: that read the RNN; the image's columns keep their random initialisation).
PARTS = {
    "embedding": ("prefix.embedding.",),
    "rnn": ("prefix.rnn.", "prefix.init_"),
    "rnn_input": ("prefix.rnn.weight_ih",),
    "rnn_recurrent": ("prefix.rnn.weight_hh",),
    "rnn_bias": ("prefix.rnn.bias_",),
    "init_state": ("prefix.init_",),
    "output": ("output.",),
}
#: The parts of a Transformer prefix (``arch: transformer``, caplm/models/transformer.py).
#: ``embedding`` includes its projection (when embed_size != d_model); ``blocks`` is every
#: block and the final LayerNorm, ``blocks:I-J`` (or ``blocks:I``) blocks I to J alone; ``rnn``
#: is the whole sequence model, as for an RNN: positions, blocks and final LayerNorm (so the
#: default ``[embedding, rnn]`` moves the whole prefix of either family).
TRANSFORMER_PARTS = {
    "embedding": ("prefix.embedding.", "prefix.embed_proj."),
    "rnn": ("prefix.positions.", "prefix.blocks.", "prefix.norm."),
    "positions": ("prefix.positions.",),
    "blocks": ("prefix.blocks.", "prefix.norm."),
    "final_norm": ("prefix.norm.",),
    "output": ("output.",),
}
BLOCK_RANGE = re.compile(r"blocks:(\d+)(?:-(\d+))?")
ARCH_PARTS = {"rnn": PARTS, "transformer": TRANSFORMER_PARTS}
ARCH_LABELS = {"rnn": "an RNN", "transformer": "a Transformer"}
#: Parts no mode may freeze: the output layer also reads the image (its image columns would
#: stay random for ever).
UNFREEZABLE = ("output",)
VOCAB_POLICIES = ("intersect", "caption")
#: The keys of every ``transfer`` config.
TRANSFER_KEYS = ("mode", "parts", "vocab_policy")
#: Each method's own keys (in its ``conf/transfer/<mode>.yaml``), with their defaults.
MODE_KEYS = {
    "l2_sp": {"alpha": 0.01, "beta": 0.0},
    "aux_lm": {"gamma": 0.2, "gamma_end": 0.1},
    "wise_ft": {"alphas": [round(0.1 * i, 1) for i in range(11)], "select": "loss"},
    "ulmfit": {"lr_factor": 2.6, "cut_frac": 0.1, "ratio": 32},
}
#: What ``wise_ft`` can choose its alpha by on validation: ``loss`` (token cross-entropy, one
#: pass per alpha) or ``bleu`` (BLEU-4 of beam-searched captions: dearer).
WISE_FT_SELECT = ("loss", "bleu")
#: ``job/transfer`` of a language model trained and evaluated alone (``python -m caplm.lm``).
LM_ONLY = "lm_only"


def job_mode(cfg) -> str:
    """A job config's transfer mode, or LM_ONLY for an LM-only job (no ``transfer`` group)."""
    return cfg["transfer"]["mode"] if "transfer" in cfg else LM_ONLY


def job_uses_lm(cfg) -> bool:
    """Whether a job config trains or reuses a language model."""
    mode = job_mode(cfg)
    return mode == LM_ONLY or uses_lm(mode)


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"transfer.mode={mode!r} is unknown; choose one of {', '.join(MODES)}")


def uses_lm(mode: str) -> bool:
    """Whether a transfer mode needs a trained language model."""
    check_mode(mode)
    return mode in WITH_LM


def freezes(mode: str) -> bool:
    check_mode(mode)
    return mode in FREEZING


def copy_mode(mode: str) -> str:
    """The mode the weight-transfer callback applies for ``mode``: ``frozen`` for
    ``wise_ft`` (its first fit, theta_0, has the parts frozen), else ``mode`` itself."""
    check_mode(mode)
    return "frozen" if mode == "wise_ft" else mode


def block_range(part: str) -> tuple[int, int] | None:
    """``blocks:I-J`` -> (I, J), ``blocks:I`` -> (I, I); None for any other part."""
    m = BLOCK_RANGE.fullmatch(part) if isinstance(part, str) else None
    return None if m is None else (int(m[1]), int(m[2] or m[1]))


def part_name(part: str) -> str:
    """The part a name selects: ``blocks`` for ``blocks:0-1``, else the part itself."""
    return "blocks" if block_range(part) is not None else part


def check_parts(parts) -> None:
    """Every part is one of some architecture's (the prefix's own are checked on transfer)."""
    known = dict.fromkeys([*PARTS, *TRANSFORMER_PARTS])
    unknown = [p for p in parts if p not in known and block_range(p) is None]
    if unknown:
        raise ValueError(f"transfer.parts has {sorted(map(str, unknown))}; known parts: "
                         f"{', '.join(known)}, blocks:I-J (a Transformer's blocks I to J)")  # fmt: skip
    for p in parts:
        lo, hi = block_range(p) or (0, 0)
        if lo > hi:
            raise ValueError(f"transfer.parts: {p} is an empty range; write blocks:{hi}-{lo}")


def part_prefixes(part: str, arch: str = "rnn", num_layers: int | None = None) -> tuple[str, ...]:
    """The generator parameter-name prefixes ``part`` selects in a prefix of family ``arch``
    with ``num_layers`` layers (blocks)."""
    check_parts([part])
    if arch not in ARCH_PARTS:
        raise ValueError(f"unknown prefix architecture {arch!r}; known: {', '.join(ARCH_PARTS)}")
    blocks = block_range(part)
    if arch == "transformer" and blocks is not None:
        lo, hi = blocks
        if num_layers is not None and hi >= num_layers:
            raise ValueError(f"transfer.parts: {part} names block {hi}, but the Transformer "
                             f"has {num_layers} block(s), 0 to {num_layers - 1}")  # fmt: skip
        return tuple(f"prefix.blocks.{i}." for i in range(lo, hi + 1))
    table, other = ARCH_PARTS[arch], "transformer" if arch == "rnn" else "rnn"
    if part_name(part) not in table:
        raise ValueError(
            f"transfer.parts: {part!r} is a part of {ARCH_LABELS[other]} prefix, not of "
            f"{ARCH_LABELS[arch]} one (arch: {arch}), whose parts are {', '.join(table)}"
            f"{', blocks:I-J' if arch == 'transformer' else ''}"
        )
    return table[part]


def check_arch_parts(parts, arch: str, num_layers: int | None = None) -> None:
    """Every part is one of a prefix of family ``arch`` with ``num_layers`` layers (a job checks
    this before it trains an LM; the transfer itself checks the prefix it is given)."""
    for part in parts:
        part_prefixes(part, arch, num_layers if arch == "transformer" else None)


def mode_keys(mode: str) -> tuple[str, ...]:
    """The keys a ``transfer`` config of ``mode`` may hold."""
    return (*TRANSFER_KEYS, *(MODE_KEYS.get(mode, ()) if isinstance(mode, str) else ()))


def freezes_parts(mode: str) -> bool:
    """Whether ``mode`` freezes the transferred parts at some point of its training."""
    check_mode(mode)
    return mode in (*FREEZING, "wise_ft", "ulmfit")


def method_problems(t) -> list[tuple[str, str]]:
    """``(key, problem)`` for each bad setting of a ``transfer`` config ``t`` (a mapping):
    the combination of mode and parts, and each method's own keys."""
    mode, parts = t.get("mode"), list(t.get("parts") or ())
    try:
        check_parts(parts)
    except ValueError:
        return []  # reported by check_parts
    if mode not in MODES:
        return []  # reported by check_mode
    out = []
    frozen_out = [p for p in parts if p in UNFREEZABLE]
    if frozen_out and mode in (*FREEZING, "wise_ft"):
        out.append(("parts", f"transfer={mode} freezes the transferred parts, and "
                    f"{frozen_out} cannot be frozen (the output layer also reads the image, "
                    "whose weights would stay random); leave it out of transfer.parts"))  # fmt: skip
    if mode in METHODS and not parts:
        out.append(("parts", f"transfer={mode} transfers nothing with transfer.parts=[]; "
                    "name at least one part or use transfer=none"))  # fmt: skip

    def number(key, ok, must):
        v = t.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not ok(v):
            out.append((key, f"transfer.{key}={v!r} for transfer={mode}; must be {must}"))

    if mode == "l2_sp":
        for key in ("alpha", "beta"):
            number(key, lambda v: v >= 0, "a number >= 0")
    elif mode == "aux_lm":
        for key in ("gamma", "gamma_end"):
            number(key, lambda v: v >= 0, "a number >= 0")
    elif mode == "wise_ft":
        alphas = t.get("alphas")
        if (
            not isinstance(alphas, list | tuple)
            or not alphas
            or any(isinstance(a, bool) or not isinstance(a, int | float) for a in alphas)
            or any(not 0 <= a <= 1 for a in alphas)
        ):
            out.append(("alphas", f"transfer.alphas={alphas!r}; must be a non-empty list of "
                        "numbers in [0, 1] (0: the frozen fit, 1: the fine-tuned one)"))  # fmt: skip
        if t.get("select") not in WISE_FT_SELECT:
            out.append(("select", f"transfer.select={t.get('select')!r}; choose one of "
                        f"{', '.join(WISE_FT_SELECT)}"))  # fmt: skip
    elif mode == "ulmfit":
        number("lr_factor", lambda v: v >= 1, "a number >= 1")
        number("cut_frac", lambda v: 0 < v < 1, "a number in (0, 1)")
        number("ratio", lambda v: v >= 1, "a number >= 1")
        groups = ulmfit_groups(parts)
        if len(groups) < 2:
            out.append(("parts", f"transfer=ulmfit with transfer.parts={parts} has one layer "
                        f"group ({groups[0]}): its groups collapse, so there is nothing to "
                        "unfreeze gradually; transfer the embedding and/or an RNN part"))  # fmt: skip
    return out


#: ulmfit's layer groups, top (trained from the first epoch) to bottom, and the parts in each
#: below the head; the head is everything else (the image layer, the output layer, and the
#: parts not transferred). ``rnn`` is the sequence model, an RNN's or a Transformer's blocks
#: (``blocks:I-J`` included); a Transformer's positions go with its embedding unless ``rnn``
#: names them.
ULMFIT_GROUPS = {
    "rnn": ("rnn", "rnn_input", "rnn_recurrent", "rnn_bias", "init_state", "blocks", "final_norm"),
    "embedding": ("embedding", "positions"),
}


def ulmfit_groups(parts) -> list[str]:
    """ulmfit's layer groups for ``transfer.parts``, top first: ``head``, then ``rnn`` and
    ``embedding`` where some of their parts are transferred."""
    names = {part_name(p) for p in parts}
    return ["head", *(g for g, members in ULMFIT_GROUPS.items() if set(members) & names)]


def check_vocab_policy(policy: str) -> None:
    if policy not in VOCAB_POLICIES:
        raise ValueError(
            f"transfer.vocab_policy={policy!r} is unknown; choose one of "
            f"{', '.join(VOCAB_POLICIES)}"
        )
