"""The composed config: its resolvers (registered on import), the keys that do not change a
job's results, and ``check_config``, which checks every group before a job does any work.

Hydra merges the group files into one config without a schema, so a misspelled key in a
file (``beam_widht: 4``) would be silently ignored and a bad value (``eval.spice=of``) found
only when it is read, maybe after an hour of training. ``check_config`` runs first in every
job and fails in a second with every problem found, each naming the key, the group's file,
and what is allowed. The allowed keys and values come from the modules that use them
(constructor signatures, ``*_KEYS`` tuples and the modules' own argument checks).
"""

from __future__ import annotations

import difflib
import inspect
import os

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from caplm import CONF_DIR, PROJECT_ROOT, available_cores, data_dir
from caplm.data import dedup
from caplm.data.corpora import CORPUS_KEYS, SOURCE_KEYS, SOURCES
from caplm.data.encoders import ENCODER_KEYS, ENCODERS, OWN_KEYS
from caplm.data.readers import DATA_KEYS, EMPTY_CAPTIONS, FORMAT_KEYS, FORMATS
from caplm.data.text import NORMALISERS
from caplm.evaluation.coco import SPICE_MODES
from caplm.evaluation.evaluate import EVAL_KEYS
from caplm.evaluation.transfer_scores import TRANSFERABILITY_KEYS
from caplm.hf import local_folder
from caplm.io import stable_hash, to_dict
from caplm.models import robust
from caplm.models.architectures import constructor_names, generator_class
from caplm.models.caption_generator import ARCHITECTURE, GENERATION_KEYS, CaptionGenerator
from caplm.models.common import constructor_args
from caplm.models.language_model import LanguageModel
from caplm.models.transfer.modes import (
    check_mode,
    check_parts,
    check_vocab_policy,
    method_problems,
    mode_keys,
)
from caplm.runtime import devices
from caplm.runtime.hf_lm import HF_LM_KEYS, is_hf, model_folder
from caplm.runtime.training import CAPLM_TRAINER_KEYS, FIT_KEYS, MONITOR, MONITORS

#: Folder names stay under the 255 bytes of common file systems.
MAX_DIRNAME = 240
MAX_VALUE = 40
#: Config keys that do not change a job's results (left out of its identity and folder name).
NOT_RESULTS = (
    "paths",
    "logger",
    "trainer",
    "hydra",
    "task_name",
    "skip_completed",
    "threads",
    "jobs_per_gpu",
    "transferability",
)  # scores of the LM, computed beside the job: see its config
TOP_KEYS = ("seed", "task_name", "skip_completed", "threads", "jobs_per_gpu")
GROUPS = ("paths", "data", "corpus", "lm", "model", "generation", "transfer", "trainer",
          "logger", "eval", "transferability", "hydra")  # fmt: skip
PATHS_KEYS = ("root_dir", "data_dir", "cache_dir", "lm_cache_dir", "output_dir", "multirun_dir")
#: Trainer arguments that caplm sets itself from the lm/model ``fit`` settings.
TRAINER_SET_BY_CAPLM = ("max_epochs", "gradient_clip_val", "logger", "callbacks",
                        "default_root_dir")  # fmt: skip


class ConfigError(ValueError):
    """A config that would fail later; the message lists every problem found."""


def job_dirname(overrides) -> str:
    """A job's folder name from its command-line/sweep overrides: ``corpus=captions,seed=2``.

    Settings that do not change a job's results (devices, loggers, paths; ``NOT_RESULTS``)
    are left out, so a re-run with other such settings finds the same folder. ``/`` (config
    groups such as ``data/encoder=small_cnn``, paths in values) becomes ``.``. No overrides:
    ``default``. A name longer than ``MAX_DIRNAME`` is shortened without dropping any
    override: the seed first, keys by their last part (``num_train=100``), values over
    ``MAX_VALUE`` characters by their head and a hash, then ``-`` and a hash of the whole
    name, so distinct jobs keep distinct folders. Only when even that is too long (dozens of
    overrides) are the last ones counted instead of named (``,+3more-<hash>``); the seed,
    first, never is. The job's full overrides are in its ``job.json`` and
    ``.hydra/overrides.yaml``.
    """
    kept = {}
    for item in overrides:
        key, _, value = str(item).lstrip("+~").partition("=")
        if key.split(".")[0].split("/")[0] not in (*NOT_RESULTS, "experiment"):
            kept[key] = value
    name = _dirname(
        sorted(kept.items(), key=lambda kv: f"{kv[0]}={kv[1]}")
    )  # as the overrides read
    if len(name) <= MAX_DIRNAME:
        return name
    last = {k: k.replace("/", ".").split(".")[-1] for k in kept}
    short = [
        (last[k] if list(last.values()).count(last[k]) == 1 else k, _short_value(v))
        for k, v in sorted(kept.items(), key=lambda kv: (kv[0] != "seed", kv[0]))
    ]
    digest = stable_hash(name, 8)
    for named in range(len(short), 0, -1):  # too many to name them all: count the rest
        rest = len(short) - named
        candidate = _dirname(short[:named]) + (f",+{rest}more" if rest else "") + f"-{digest}"
        if len(candidate) <= MAX_DIRNAME:
            return candidate
    return f"{_dirname(short[:1])[: MAX_DIRNAME - 9]}-{digest}"  # one huge override


def _dirname(items) -> str:
    return ",".join(f"{k}={v}" for k, v in items).replace("/", ".") or "default"


def _short_value(value: str) -> str:
    if len(value) <= MAX_VALUE:
        return value
    return f"{value[: MAX_VALUE - 9]}~{stable_hash(value, 8)}"


def num_gpus() -> int:
    """GPUs visible here (at least 1, so a launcher's pool is never empty)."""
    return max(1, torch.cuda.device_count())


def cpu_jobs(gib_per_job: float) -> int:
    """Jobs to run side by side on this machine's CPUs: one per core this process may use,
    and no more than its memory holds at ``gib_per_job`` GiB each (at least 1)."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return max(1, min(available_cores(), int(memory // float(gib_per_job))))


def gpu_jobs(jobs_per_gpu: int | None, gib_per_job: float) -> int:
    """``hydra/launcher=gpus``'s jobs at once: ``jobs_per_gpu`` on every visible GPU (None:
    as many as the GPU's memory holds at ``gib_per_job`` GiB, one job per CPU core at most;
    see ``devices.default_jobs_per_gpu``)."""
    if jobs_per_gpu is None:
        jobs_per_gpu = devices.default_jobs_per_gpu(
            devices.gpu_memory_gib(), gib_per_job, num_gpus(), available_cores()
        )
    return num_gpus() * int(jobs_per_gpu)


def register_resolvers() -> None:
    for name, fn in {
        "caplm_root": lambda: str(PROJECT_ROOT),
        "caplm_data_dir": lambda: str(data_dir()),
        "job_dirname": job_dirname,
        "num_gpus": num_gpus,
        "cpu_jobs": cpu_jobs,
        "gpu_jobs": gpu_jobs,
    }.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


register_resolvers()


def compose_checked(overrides: list[str]) -> DictConfig:
    """``conf/train.yaml`` composed with ``overrides`` outside a Hydra run (the tools that read
    a job's settings without running one: ``caplm.probe``, ``caplm.transferability``), checked."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    GlobalHydra.instance().clear()
    check_config(cfg)
    return cfg


# -- checking -------------------------------------------------------------------------------


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError listing every unknown key and bad value of the composed config."""
    problems = Problems()
    problems.keys("", cfg, (*TOP_KEYS, *GROUPS), "conf/train.yaml")
    _check_top(cfg, problems)
    _check_paths(cfg, problems)
    _check_data(cfg, problems)
    _check_corpus(cfg, problems)
    _check_models(cfg, problems)
    if "transfer" in cfg:  # an LM-only job (conf/train_lm.yaml) has no generator groups
        _check_transfer(cfg, problems)
    _check_trainer(cfg, problems)
    _check_eval(cfg, problems)
    if "transferability" in cfg:
        _check_transferability(cfg, problems)
    if problems:
        raise ConfigError(
            f"{len(problems)} problem(s) in the config:\n" + "\n".join(f"- {p}" for p in problems)
        )


class Problems(list):
    """Problems found so far, each a sentence naming the key and where it was set."""

    def add(self, key: str, message: str) -> None:
        self.append(f"{key}: {message} (set in {source(key)}, an experiment or the command line)")

    def keys(self, where: str, node, allowed, file: str | None = None) -> None:
        """Every key of ``node`` must be in ``allowed``."""
        if not isinstance(node, DictConfig | dict):
            self.append(f"{where or 'the config'}: expected a mapping of settings, got {node!r}")
            return
        for key in node:
            if key not in allowed:
                near = difflib.get_close_matches(str(key), [str(a) for a in allowed], n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                full = f"{where}.{key}" if where else str(key)
                self.append(
                    f"{full}: unknown setting (in {file or source(full)}){hint} "
                    f"Known: {', '.join(sorted(map(str, allowed)))}"
                )

    def value(self, key: str, value, ok: bool, must: str) -> None:
        if not ok:
            self.add(key, f"is {value!r}; must be {must}")

    def one_of(self, key: str, value, choices) -> None:
        self.value(key, value, value in choices, f"one of {', '.join(choices)}")

    def known(self, key: str, value, choices, what: str) -> bool:
        """Whether ``value`` names one of ``choices`` (the ``what``: formats, encoders, ...)."""
        if value not in choices:
            self.add(key, f"is {value!r}; known {what}: {', '.join(choices)}")
        return value in choices


def source(key: str) -> str:
    """The group file a key comes from, e.g. ``conf/model/merge.yaml`` for ``model.lr``."""
    group = key.split(".")[0]
    if group == "data" and key.startswith("data.encoder."):
        group = "data/encoder"
    choice = _choices().get(group)
    if choice:
        return f"conf/{group}/{choice}.yaml"
    return "conf/train.yaml" if group in TOP_KEYS else f"conf/{group}/"


def _choices() -> dict:

    if not HydraConfig.initialized():
        return {}
    return dict(HydraConfig.get().runtime.choices)


def _int(v, low: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_top(cfg, p: Problems) -> None:
    p.value("seed", cfg.get("seed"), _int(cfg.get("seed")), "an integer >= 0")
    p.value("skip_completed", cfg.get("skip_completed"),
            isinstance(cfg.get("skip_completed"), bool), "true or false")  # fmt: skip
    threads = cfg.get("threads")
    p.value("threads", threads, threads is None or _int(threads, 1), "null or an integer >= 1")
    per_gpu = cfg.get("jobs_per_gpu")
    p.value("jobs_per_gpu", per_gpu, per_gpu is None or _int(per_gpu, 1), "null or an integer >= 1")


def _check_paths(cfg, p: Problems) -> None:
    if "paths" in cfg:
        p.keys("paths", cfg.paths, PATHS_KEYS)


def _check_data(cfg, p: Problems) -> None:
    data = cfg.data
    fmt = data.get("format")
    if not p.known("data.format", fmt, FORMATS, "formats"):
        return
    p.keys("data", data, (*DATA_KEYS, *FORMAT_KEYS[fmt]))
    p.value("data.min_word_freq", data.get("min_word_freq"), _int(data.get("min_word_freq"), 1),
            "an integer >= 1")  # fmt: skip
    p.value("data.max_caption_len", data.get("max_caption_len"),
            _int(data.get("max_caption_len"), 1), "an integer >= 1")  # fmt: skip
    p.value("data.num_workers", data.get("num_workers"), _int(data.get("num_workers")),
            "an integer >= 0")  # fmt: skip
    p.known("data.normaliser", data.get("normaliser"), NORMALISERS, "normalisers")
    if "empty_captions" in data:
        p.one_of("data.empty_captions", data.empty_captions, EMPTY_CAPTIONS)
    encoder = data.get("encoder")
    if encoder is not None and not data.get("features_file"):
        name = encoder.get("name")
        if p.known("data.encoder.name", name, ENCODERS, "encoders"):
            p.keys("data.encoder", encoder, (*ENCODER_KEYS, *OWN_KEYS[name]))
        if name == "hf":  # a local folder, or a clear error saying how to put it there
            try:
                local_folder(encoder.get("path"), "data.encoder.path")
            except (ValueError, FileNotFoundError) as err:
                p.append(str(err))


def _check_corpus(cfg, p: Problems) -> None:
    corpus = cfg.corpus
    src = corpus.get("source")
    if not p.known("corpus.source", src, SOURCES, "sources"):
        return
    p.keys("corpus", corpus, (*CORPUS_KEYS, *SOURCE_KEYS[src]))
    e = corpus.get("size_exponent")
    p.value("corpus.size_exponent", e, e is None or _number(e), "a number or null (the pool)")
    top = corpus.get("max_size_exponent")
    p.value("corpus.max_size_exponent", top, top is None or _number(top), "a number or null")
    p.value("corpus.min_word_freq", corpus.get("min_word_freq"),
            _int(corpus.get("min_word_freq"), 1), "an integer >= 1")  # fmt: skip
    try:
        near = corpus.get("dedup_near")
        dedup.check(corpus.get("dedup", "none"), to_dict(near) if near is not None else None)
    except ValueError as err:
        p.add("corpus.dedup", str(err))
    if isinstance(corpus.get("dedup_near"), DictConfig):
        p.keys("corpus.dedup_near", corpus.dedup_near, dedup.NEAR_KEYS)


def _check_fit(where: str, fit, p: Problems) -> None:
    p.keys(where, fit, FIT_KEYS)
    if not isinstance(fit, DictConfig):
        return
    checks = {
        "batch_size": (lambda v: _int(v, 1), "an integer >= 1"),
        "max_len": (lambda v: _int(v, 1), "an integer >= 1"),
        "max_epochs": (_int, "an integer >= 0"),
        "early_stopping": (lambda v: isinstance(v, bool), "true or false"),
        "patience": (lambda v: v is None or _int(v), "null or an integer >= 0"),
        "gradient_clip_val": (lambda v: v is None or (_number(v) and v > 0), "null or > 0"),
        "monitor": (
            lambda v: v in MONITORS and not (where == "lm.fit" and v != MONITOR),
            "val/loss" if where == "lm.fit" else f"one of {', '.join(MONITORS)}",
        ),
    }
    for key, (ok, must) in checks.items():
        if key in fit:
            p.value(f"{where}.{key}", fit[key], ok(fit[key]), must)
    if "robust" in fit:
        if where != "lm.fit":
            p.add(f"{where}.robust", "robust training is the language model's (lm.fit.robust)")
        else:
            _check_perturbations(f"{where}.robust", fit.robust, p)
    if "max_epochs" not in fit:
        p.add(f"{where}.max_epochs", "is missing")


def _check_perturbations(where: str, node, p: Problems) -> None:
    """An ``lm.fit.robust`` / ``eval.lm_perturbed`` node: known kinds, strengths in range."""
    if not isinstance(node, DictConfig):
        p.add(where, f"is {node!r}; must be a mapping of {', '.join(robust.KINDS)}")
        return
    p.keys(where, node, robust.KINDS)
    for kind in robust.KINDS:
        value = node.get(kind, 0.0)
        if not _number(value):
            p.add(f"{where}.{kind}", f"is {value!r}; must be a number")
            continue
        try:
            robust.strengths({kind: value})
        except ValueError as err:
            p.add(f"{where}.{kind}", str(err))


def _check_models(cfg, p: Problems) -> None:
    """Unknown keys, then a model built from the settings (its constructor checks choices and
    ranges), in a forked RNG so that nothing the job draws later changes."""

    builds = {"lm": (LanguageModel, ("name", "fit"), {})}
    if "model" in cfg:
        p.keys("generation", cfg.generation, GENERATION_KEYS)
        try:
            generator = generator_class(cfg.model)
        except ValueError as err:
            p.add("model.architecture", str(err))
            generator = CaptionGenerator
        builds["model"] = (generator, ("fit",), {"feature_size": 4, "regions": None})
    if "lm" in cfg and is_hf(cfg.lm):  # its sizes are the model folder's (caplm/runtime/hf_lm.py)
        p.keys("lm", cfg.lm, HF_LM_KEYS, "conf/lm/hf.yaml")
        try:
            model_folder(cfg)
        except (ValueError, FileNotFoundError) as err:
            p.append(str(err))
        builds = {}
        if "model" in cfg and cfg.model.get("merge") == "add":
            p.add("model.merge", "is 'add', but lm=hf's hidden size is the model's; use concat")
    for group, (cls, extra, args) in builds.items():
        if group not in cfg:
            continue
        node = cfg[group]
        params = constructor_names(cls) if group == "model" else (
            [n for n in inspect.signature(cls.__init__).parameters if n != "self"])  # fmt: skip
        own = [n for n in params if n not in ("vocab_size", *args, *GENERATION_KEYS)]
        p.keys(group, node, (*own, *extra))
        _check_fit(f"{group}.fit", node.get("fit"), p)
        if group == "model":
            kwargs = {k: v for k, v in to_dict(node).items() if k in own}
            kwargs.update(args, **to_dict(cfg.generation))
            kwargs["architecture"] = node.get("architecture") or ARCHITECTURE
        else:
            kwargs = {**constructor_args(cls, to_dict(node)), **args}
        try:
            with torch.random.fork_rng(devices=[]):
                cls(vocab_size=8, **kwargs)
        except (ValueError, TypeError) as err:
            where = "generation" if any(k in str(err) for k in GENERATION_KEYS) else group
            p.append(f"{where}: {err} (set in {source(where + '.')}, an experiment or the "
                     "command line)")  # fmt: skip


def _check_transfer(cfg, p: Problems) -> None:
    t = cfg.transfer
    p.keys("transfer", t, mode_keys(t.get("mode")))  # each method has its own keys
    for check, key in ((check_mode, "mode"), (check_parts, "parts"),
                       (check_vocab_policy, "vocab_policy")):  # fmt: skip
        try:
            check(t.get(key))
        except (ValueError, TypeError) as err:
            p.add(f"transfer.{key}", str(err))
    for key, problem in method_problems(to_dict(t)):
        p.add(f"transfer.{key}", problem)


def _check_trainer(cfg, p: Problems) -> None:
    allowed = [n for n in inspect.signature(L.Trainer.__init__).parameters if n != "self"]
    allowed = [n for n in allowed if n not in TRAINER_SET_BY_CAPLM] + list(CAPLM_TRAINER_KEYS)
    p.keys("trainer", cfg.trainer, allowed)
    compiling = cfg.trainer.get("compile", False)
    p.value("trainer.compile", compiling, isinstance(compiling, bool | str),
            "true, false or a torch.compile backend name")  # fmt: skip


def _check_eval(cfg, p: Problems) -> None:
    ev = cfg.eval
    p.keys("eval", ev, EVAL_KEYS)
    p.one_of("eval.spice", ev.get("spice"), SPICE_MODES)
    for key in ("meteor", "retrieval"):
        p.value(f"eval.{key}", ev.get(key), isinstance(ev.get(key), bool), "true or false")
    for key in ("lm_samples", "show", "pictures"):
        p.value(f"eval.{key}", ev.get(key), _int(ev.get(key)), "an integer >= 0")
    if "lm_perturbed" in ev:
        _check_perturbations("eval.lm_perturbed", ev.lm_perturbed, p)


def _check_transferability(cfg, p: Problems) -> None:
    t = cfg.transferability
    p.keys("transferability", t, TRANSFERABILITY_KEYS)
    p.value("transferability.enabled", t.get("enabled"), isinstance(t.get("enabled"), bool),
            "true or false")  # fmt: skip
    for key in ("positions", "samples"):
        value = t.get(key)
        p.value(f"transferability.{key}", value, _int(value, low=1), "an integer >= 1")
    for key in ("image_components", "seed"):
        p.value(f"transferability.{key}", t.get(key), _int(t.get(key)), "an integer >= 0")
