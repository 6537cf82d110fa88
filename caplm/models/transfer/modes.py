"""Transfer modes and methods (``transfer.mode``), the parts that can move
(``transfer.parts``) and the vocabulary policies (``transfer.vocab_policy``).

A mode is a :class:`TransferMode` subclass in its own module of
``caplm/models/transfer/methods/`` (the module's name is the mode's, and so is its config
``conf/transfer/<mode>.yaml``): it declares its config keys (their defaults are in its yaml),
its checks, whether it needs a trained LM, whether the weight transfer freezes the parts, the
callbacks or loss terms it adds to the generator's fit, and, if it has one, a fit of its own.
The registry finds the modules; nothing else names a mode. The study's modes:

- ``none``: no transfer; random initialisation (the baseline).
- ``init``: copied from the LM, then fine-tuned with the rest of the generator.
- ``frozen``: copied and frozen (no gradient, not in the optimiser, unchanged by training).
- ``random_frozen``: nothing copied; the untrained, randomly initialised prefix is frozen
  (the study's control: how much of transfer's effect is just a fixed prefix encoder).

and the methods beyond it (``l2_sp``, ``aux_lm``, ``wise_ft``, ``ulmfit``: see their modules).

Pure Python (no torch): the report names modes without importing the models; the registry
imports the mode modules (which use torch) only when a mode is looked up.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import yaml

from caplm import CONF_DIR

#: The study's modes, in the study's order (the report's gallery shows them first).
STUDY_MODES = ("none", "init", "frozen", "random_frozen")
#: The baseline and the study's control; the report draws them as reference lines.
BASELINE, CONTROL = "none", "random_frozen"
#: ``job/transfer`` of a language model trained and evaluated alone (``python -m caplm.lm``).
LM_ONLY = "lm_only"
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
#: The parts of a Hugging Face prefix (``arch: hf``, caplm/models/hf_prefix.py), as a
#: Transformer's; their parameter names are found from the model (``HFPrefix.part_table``).
HF_PARTS = {name: () for name in ("embedding", "positions", "blocks", "final_norm", "rnn",
                                  "output")}  # fmt: skip
BLOCK_RANGE = re.compile(r"blocks:(\d+)(?:-(\d+))?")
ARCH_PARTS = {"rnn": PARTS, "transformer": TRANSFORMER_PARTS, "hf": HF_PARTS}
ARCH_LABELS = {"rnn": "an RNN", "transformer": "a Transformer", "hf": "a Hugging Face model"}
#: Parts no mode may freeze: the output layer also reads the image (its image columns would
#: stay random for ever).
UNFREEZABLE = ("output",)
VOCAB_POLICIES = ("intersect", "caption")
#: The keys of every ``transfer`` config (a mode's own keys are its class's ``keys``).
TRANSFER_KEYS = ("mode", "parts", "vocab_policy")
#: Where the registry finds the modes.
METHODS_PACKAGE = "caplm.models.transfer.methods"


class TransferMode:
    """One transfer mode or method. Subclass it in ``caplm/models/transfer/methods/<name>.py``
    (one class per module) and write ``conf/transfer/<name>.yaml``: that is all a new method
    takes. Instances hold no state; the job's ``transfer`` config is passed to each hook.
    """

    #: ``transfer.mode``: the module's name and the yaml's.
    name: str = ""
    #: Needs a trained language model: the job trains (or reuses) one, and the weight
    #: transfer copies its weights into ``transfer.parts``.
    uses_lm: bool = True
    #: The weight transfer freezes ``transfer.parts`` when the (first) fit starts.
    freezes: bool = False
    #: Refuses ``transfer.parts=[]`` (a method that would transfer nothing).
    needs_parts: bool = False
    #: Its own config keys beyond ``TRANSFER_KEYS``; their defaults are in its yaml.
    keys: tuple[str, ...] = ()

    def check(self, t) -> list[tuple[str, str]]:
        """``(key, problem)`` for each bad value of this mode's own keys in config ``t``."""
        return []

    def callbacks(self, t, lm_state=None, row_index=None) -> list:
        """The callbacks (loss terms, schedules) this mode adds to the generator's fit, after
        the weight transfer (which copies first): ``lm_state`` is the LM's state dict and
        ``row_index`` the LM id of each generator token (-1 where the LM lacks it)."""
        return []

    def fit(self, run) -> tuple[dict, dict]:
        """Fit the generator; returns the fit's record and this mode's own results. ``run``
        (:class:`caplm.runtime.generator_fit.GeneratorFit`) holds the model, the data, the
        weight transfer (``run.transfer``) and ``run.fit(callbacks, ...)``, one Lightning fit
        with checkpoints and validation. A method with fits of its own overrides this."""
        settings = run.settings
        return run.fit([run.transfer, *self.callbacks(settings, run.lm_state, run.row_index)]), {}

    def problems(self, t) -> list[tuple[str, str]]:
        """``(key, problem)`` for each bad setting of ``transfer`` config ``t`` (a mapping) of
        this mode: its parts, then its own keys."""
        parts, out = list(t.get("parts") or ()), []
        frozen_out = [p for p in parts if p in UNFREEZABLE]
        if frozen_out and self.freezes:
            out.append(("parts", f"transfer={self.name} freezes the transferred parts, and "
                        f"{frozen_out} cannot be frozen (the output layer also reads the image, "
                        "whose weights would stay random); leave it out of transfer.parts"))  # fmt: skip
        if self.needs_parts and not parts:
            out.append(("parts", f"transfer={self.name} transfers nothing with transfer.parts=[]; "
                        "name at least one part or use transfer=none"))  # fmt: skip
        return out + self.check(t)

    def number(self, t, key: str, ok, must: str) -> list[tuple[str, str]]:
        """The problem with ``t[key]`` unless it is a number (not a bool) for which ``ok``."""
        v = t.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not ok(v):
            return [(key, f"transfer.{key}={v!r} for transfer={self.name}; must be {must}")]
        return []

    def non_negative_keys(self, t) -> list[tuple[str, str]]:
        """The problems of this mode's own keys in ``t`` that are not numbers >= 0."""
        return [
            p for key in self.keys for p in self.number(t, key, lambda v: v >= 0, "a number >= 0")
        ]

    @classmethod
    def defaults(cls, conf_dir: Path = CONF_DIR) -> dict:
        """This mode's own keys with their defaults, as its ``conf/transfer/<name>.yaml`` has
        them (benchmarks and tests use them; a job gets them from its composed config)."""
        own = yaml.safe_load((Path(conf_dir) / "transfer" / f"{cls.name}.yaml").read_text())
        return {k: v for k, v in (own or {}).items() if k in cls.keys}


class Registry:
    """The transfer modes: one :class:`TransferMode` subclass per module of ``package``, found
    when first asked for (so importing this module loads no torch)."""

    def __init__(self, package: str = METHODS_PACKAGE):
        self.package = package
        self._modes: dict[str, TransferMode] | None = None

    def modes(self) -> dict[str, TransferMode]:
        if self._modes is None:
            found = {}
            for info in pkgutil.iter_modules(importlib.import_module(self.package).__path__):
                module = importlib.import_module(f"{self.package}.{info.name}")
                classes = [c for c in vars(module).values() if isinstance(c, type)
                           and issubclass(c, TransferMode) and c.__module__ == module.__name__]  # fmt: skip
                if len(classes) != 1 or classes[0].name != info.name:
                    raise TypeError(
                        f"{module.__file__} must define one TransferMode subclass whose name is "
                        f"{info.name!r} (its module's); it defines {[c.name for c in classes]}"
                    )
                found[info.name] = classes[0]()
            first = [m for m in STUDY_MODES if m in found]
            self._modes = {m: found[m] for m in [*first, *sorted(set(found) - set(first))]}
        return self._modes

    def names(self) -> tuple[str, ...]:
        return tuple(self.modes())

    def get(self, name) -> TransferMode:
        modes = self.modes()
        if name not in modes:
            raise ValueError(f"transfer.mode={name!r} is unknown; choose one of {', '.join(modes)}")
        return modes[name]


#: The modes of ``caplm/models/transfer/methods/`` (a test swaps in a registry of its own).
REGISTRY = Registry()


def get_mode(mode) -> TransferMode:
    """The registered mode named ``mode`` (a mode passes through); unknown names are refused."""
    return mode if isinstance(mode, TransferMode) else REGISTRY.get(mode)


def mode_names() -> tuple[str, ...]:
    """Every registered mode: the study's first, then the others by name."""
    return REGISTRY.names()


def check_mode(mode: str) -> None:
    get_mode(mode)


def uses_lm(mode: str) -> bool:
    """Whether a transfer mode needs a trained language model."""
    return get_mode(mode).uses_lm


def job_mode(cfg) -> str:
    """A job config's transfer mode, or LM_ONLY for an LM-only job (no ``transfer`` group)."""
    return cfg["transfer"]["mode"] if "transfer" in cfg else LM_ONLY


def job_uses_lm(cfg) -> bool:
    """Whether a job config trains or reuses a language model."""
    mode = job_mode(cfg)
    return mode == LM_ONLY or uses_lm(mode)


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
    if arch == "hf" and part_name(part) in table:  # names from the model itself, on transfer
        return table[part_name(part)]
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
    known = isinstance(mode, str) and mode in REGISTRY.modes()
    return (*TRANSFER_KEYS, *(REGISTRY.get(mode).keys if known else ()))


def method_problems(t) -> list[tuple[str, str]]:
    """``(key, problem)`` for each bad setting of a ``transfer`` config ``t`` (a mapping):
    the combination of mode and parts, and the mode's own keys."""
    try:
        check_parts(list(t.get("parts") or ()))
    except ValueError:
        return []  # reported by check_parts
    mode = t.get("mode")
    if not isinstance(mode, str) or mode not in REGISTRY.modes():
        return []  # reported by check_mode
    return REGISTRY.get(mode).problems(t)


def check_vocab_policy(policy: str) -> None:
    if policy not in VOCAB_POLICIES:
        raise ValueError(
            f"transfer.vocab_policy={policy!r} is unknown; choose one of "
            f"{', '.join(VOCAB_POLICIES)}"
        )
