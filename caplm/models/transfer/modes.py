"""The transfer modes (``transfer.mode``), the parts that can move (``transfer.parts``) and
the vocabulary policies (``transfer.vocab_policy``): the one place they are defined.

- ``none``: no transfer; random initialisation (the baseline).
- ``init``: copied from the LM, then fine-tuned with the rest of the generator.
- ``frozen``: copied and frozen (no gradient, not in the optimiser, unchanged by training).
- ``random_frozen``: nothing copied; the untrained, randomly initialised prefix is frozen
  (the study's control: how much of transfer's effect is just a fixed prefix encoder).

Pure Python (no torch), so the report can name modes without importing the models.
"""

from __future__ import annotations

MODES = ("none", "init", "frozen", "random_frozen")
#: The baseline and the study's control; the report draws them as reference lines.
BASELINE, CONTROL = "none", "random_frozen"
#: Modes that copy a trained LM's weights (the others need no LM).
WITH_LM = ("init", "frozen")
#: Modes that freeze the transferred parts.
FREEZING = ("frozen", "random_frozen")
#: What ``transfer.parts`` can name: generator parameter-name prefixes per part.
PARTS = {"embedding": ("prefix.embedding.",), "rnn": ("prefix.rnn.", "prefix.init_")}
VOCAB_POLICIES = ("intersect", "caption")
#: The keys of a ``transfer`` config.
TRANSFER_KEYS = ("mode", "parts", "vocab_policy")
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


def check_parts(parts) -> None:
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"transfer.parts has {sorted(unknown)}; known parts: {', '.join(PARTS)}")


def check_vocab_policy(policy: str) -> None:
    if policy not in VOCAB_POLICIES:
        raise ValueError(
            f"transfer.vocab_policy={policy!r} is unknown; choose one of "
            f"{', '.join(VOCAB_POLICIES)}"
        )
