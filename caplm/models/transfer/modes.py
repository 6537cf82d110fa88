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


def check_parts(parts) -> None:
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"transfer.parts has {sorted(unknown)}; known parts: {', '.join(PARTS)}")


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
    if mode not in MODES or set(parts) - set(PARTS):
        return []  # reported by check_mode / check_parts
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
#: parts not transferred).
ULMFIT_GROUPS = {
    "rnn": ("rnn", "rnn_input", "rnn_recurrent", "rnn_bias", "init_state"),
    "embedding": ("embedding",),
}


def ulmfit_groups(parts) -> list[str]:
    """ulmfit's layer groups for ``transfer.parts``, top first: ``head``, then ``rnn`` and
    ``embedding`` where some of their parts are transferred."""
    return ["head", *(g for g, members in ULMFIT_GROUPS.items() if set(members) & set(parts))]


def check_vocab_policy(policy: str) -> None:
    if policy not in VOCAB_POLICIES:
        raise ValueError(
            f"transfer.vocab_policy={policy!r} is unknown; choose one of "
            f"{', '.join(VOCAB_POLICIES)}"
        )
