"""The language-model stage of a job with ``lm=hf``: a pretrained causal LM read from
``lm.path`` (never trained or downloaded by caplm), its subword vocabulary, and its measures
on the caption sets (per-word perplexity beside per-token, so they compare with word-level
LMs'). The corpus group is not used: the LM was trained elsewhere.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from caplm.data.subword import SubwordVocabulary
from caplm.data.types import CaptionDataset
from caplm.evaluation.evaluate import evaluate_lm
from caplm.hf import folder_identity, local_folder
from caplm.io import stable_hash
from caplm.models.hf_prefix import HFLanguageModel, load_config
from caplm.models.transfer.modes import block_range
from caplm.results import lm_key
from caplm.runtime.lm_cache import CachedLM

log = logging.getLogger(__name__)

ARCH = "hf"
#: The keys of ``conf/lm/hf.yaml`` (embed_size, rnn_size, num_layers: null, for model's
#: interpolations; the model's own sizes come from its folder).
HF_LM_KEYS = ("name", "arch", "path", "gradient_checkpointing", "embed_size", "rnn_size",
              "num_layers", "fit")  # fmt: skip
NOT_USED_CORPUS = "not_applicable: a pretrained LM read from lm.path; caplm does not train it"


def is_hf(node) -> bool:
    """Whether an ``lm`` or ``model`` config node is a Hugging Face model."""
    return node is not None and node.get("arch") == ARCH


def model_folder(cfg: DictConfig) -> Path:
    return local_folder(cfg.lm.get("path"), "lm.path")


def subword_vocabulary(cfg: DictConfig) -> SubwordVocabulary:
    """The generator's vocabulary under ``lm=hf``: the LM tokenizer's subwords, captions split
    into words by the dataset's normaliser."""
    return SubwordVocabulary.from_folder(model_folder(cfg), cfg.data.normaliser)


def model_identity(cfg: DictConfig) -> dict:
    """What a job's hash keys on for the HF model: its folder's config and files' digests."""
    return folder_identity(model_folder(cfg), Path(cfg.paths.cache_dir) / "fingerprints.json")


def generator_args(cfg: DictConfig) -> dict:
    """The CaptionGenerator arguments an ``hf`` prefix needs beyond ``model``'s own."""
    return {
        "hf_path": str(model_folder(cfg)),
        "gradient_checkpointing": bool(cfg.lm.get("gradient_checkpointing", False)),
    }


def hf_language_model(cfg: DictConfig, dataset: CaptionDataset) -> tuple[CachedLM, dict]:
    folder = model_folder(cfg)
    vocab = SubwordVocabulary.from_folder(folder, cfg.data.normaliser)
    model = HFLanguageModel(str(folder), vocab)
    key = stable_hash({"hf": model_identity(cfg)})
    params = sum(p.numel() for p in model.parameters())
    log.info("LM %s: %s (%d parameters, %d subwords), read from %s", key,
             model.prefix.body.config.model_type, params, len(vocab), folder)  # fmt: skip
    info = {"key": key, "vocab_size": len(vocab), "params": params, "epochs": 0}
    results = {
        lm_key("cache_key"): key,
        lm_key("trained_here"): False,
        lm_key("arch"): ARCH,
        lm_key("hf_model_type"): model.prefix.body.config.model_type,
        lm_key("vocab_size"): len(vocab),
        lm_key("params"): params,
        lm_key("corpus"): NOT_USED_CORPUS,
    }
    texts = {"capval": dataset.sentences("val"), "captest": dataset.sentences("test")}
    results.update(
        evaluate_lm(model, vocab, texts, dataset.sentences("train"), cfg.eval.lm_samples, cfg.seed)
    )
    return CachedLM(key, folder, model, vocab, info, trained_here=False), results


NOT_APPLICABLE_SCORES = (
    "not_applicable: the transferability scores read a word-level LM's features; lm=hf "
    "models are not scored"
)


def check_hf_parts(parts, path: str) -> None:
    """``blocks:I-J`` within the model's blocks (read from its config, before it loads)."""
    layers = load_config(local_folder(path, "lm.path")).num_hidden_layers
    for part in parts:
        lo, hi = block_range(part) or (0, 0)
        if hi >= layers:
            raise ValueError(f"transfer.parts: {part} names block {hi}, but the model at "
                             f"{path} has {layers} block(s), 0 to {layers - 1}")  # fmt: skip
