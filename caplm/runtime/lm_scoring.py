"""Transferability scores of language models with no caption generator trained (what
``python -m caplm.transferability`` runs): the LMs a sweep's jobs used (:func:`score_sweep`), or
every LM of the cache for one caption dataset (:func:`score_cache`). See the entry point's
usage for the details."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf, open_dict
from tqdm import tqdm

from caplm.data.corpora import IN_DOMAIN
from caplm.data.features import load_features
from caplm.data.readers import load_caption_dataset
from caplm.data.text import Vocabulary
from caplm.evaluation.transfer_scores import scores_or_reason
from caplm.io import read_json, stable_hash, to_dict, write_json, write_text
from caplm.results import (
    COMPLETE,
    CONFIG_FILE,
    RESULTS_FILE,
    STATUS,
    column,
    lm_key,
)
from caplm.runtime import lm_cache
from caplm.runtime.config import compose_checked

log = logging.getLogger("caplm.transferability")

#: What the entry point prints for ``--help`` and with a usage error.
USAGE = """usage: python -m caplm.transferability SWEEP_DIR [OVERRIDE ...]
       python -m caplm.transferability --cache [OVERRIDE ...]"""

CSV = "transferability.csv"


class UsageError(Exception):
    """Bad input the user must fix; main() prints it and exits 2."""


class CaptionData:
    """Caption datasets, their features and vocabularies, loaded once per data config."""

    def __init__(self, cache_dir: str | Path):
        self.cache_dir, self.loaded = Path(cache_dir), {}

    def get(self, data_cfg):
        key = stable_hash(to_dict(data_cfg))
        if key not in self.loaded:
            dataset = load_caption_dataset(data_cfg, self.cache_dir)
            features = load_features(data_cfg, dataset, self.cache_dir)
            vocab = Vocabulary.build(dataset.sentences("train"), data_cfg.min_word_freq)
            self.loaded[key] = (dataset, features, vocab)
        return self.loaded[key]


def score(lm_path: Path, data_cfg, data: CaptionData, scoring) -> dict:
    """The transferability results of the LM cached at ``lm_path`` for ``data_cfg``."""
    lm = lm_cache.load_entry(lm_path)
    dataset, features, vocab = data.get(data_cfg)
    return scores_or_reason(
        lm.model, lm.vocab, dataset, features, vocab, scoring, data_cfg.max_caption_len
    )


def sweep_jobs(sweep_dir: Path) -> tuple[list[tuple[Path, dict, object]], list[str]]:
    """(job dir, results, job config) of each complete job with an LM, and what was passed."""
    jobs, passed = [], []
    for path in sorted(sweep_dir.rglob(RESULTS_FILE)):
        job = path.parent
        results = read_json(path)
        if not isinstance(results, dict) or results.get(STATUS) != COMPLETE:
            continue
        if not (job / "lm.json").is_file():
            continue  # no LM (none, random_frozen) or reused from an identical job
        config = job / CONFIG_FILE
        if not config.is_file():
            passed.append(f"{job}: no {config.relative_to(job)} (not run by Hydra): skipped")
            continue
        cfg = OmegaConf.load(config)
        with open_dict(cfg):
            cfg.paths.output_dir = str(job)  # Hydra's ${hydra:...} cannot resolve here
        jobs.append((job, results, cfg))
    return jobs, passed


def score_sweep(sweep_dir: Path, overrides: list[str]) -> pd.DataFrame:
    """Score every LM of a sweep's jobs; add the scores to their results; one row per LM."""
    if not sweep_dir.is_dir():
        raise UsageError(f"{sweep_dir}: no such directory")
    jobs, passed = sweep_jobs(sweep_dir)
    for line in passed:
        log.warning(line)
    if not jobs:
        raise UsageError(
            f"{sweep_dir}: no complete job that used a language model (a folder with "
            f"{RESULTS_FILE}, lm.json and .hydra/config.yaml); nothing to score"
        )
    scoring = compose_checked(overrides).transferability
    groups: dict[tuple, list] = {}
    for job, results, cfg in jobs:
        lm_path = Path(read_json(job / "lm.json")["path"])
        groups.setdefault((str(lm_path), stable_hash(to_dict(cfg.data))), []).append(
            (job, results, cfg)
        )
    data = CaptionData(jobs[0][2].paths.cache_dir)
    rows = []
    for (lm_path, _), members in tqdm(groups.items(), desc="scoring LMs", unit="LM"):
        cfg = members[0][2]
        scores = score(Path(lm_path), cfg.data, data, scoring)
        for job, results, job_cfg in members:
            results.update(scores)
            results.setdefault(lm_key("in_domain"), IN_DOMAIN.get(job_cfg.corpus.source))
            write_json(job / RESULTS_FILE, results)
        first = members[0][1]
        rows.append(
            {
                "lm": Path(lm_path).name,
                **{column(k): first.get(k) for k in _CELL_KEYS},
                "jobs": len(members),
                **{k.split("/", 1)[1]: v for k, v in scores.items()},
            }
        )
    table = pd.DataFrame(rows)
    write_text(sweep_dir / CSV, table.to_csv(index=False))
    return table


_CELL_KEYS = ("job/data", "job/corpus", "job/size_exponent", "job/seed")


def score_cache(overrides: list[str]) -> tuple[pd.DataFrame, Path]:
    """Score every LM of the cache for the composed data; one row per LM."""
    cfg = compose_checked(overrides)
    entries = lm_cache.entries(cfg.paths.lm_cache_dir)
    if not entries:
        raise UsageError(f"{cfg.paths.lm_cache_dir}: no complete LM in the cache; nothing to score")
    data = CaptionData(cfg.paths.cache_dir)
    rows = []
    for path in tqdm(entries, desc="scoring LMs", unit="LM"):
        info = read_json(path / lm_cache.INFO_FILE)
        scores = score(path, cfg.data, data, cfg.transferability)
        rows.append(
            {
                "lm": path.name,
                "corpus": info.get("corpus_name"),
                "corpus_size": info.get("corpus_size"),
                "seed": info.get("identity", {}).get("seed"),
                **{k.split("/", 1)[1]: v for k, v in scores.items()},
            }
        )
    table = pd.DataFrame(rows)
    out = (
        Path(cfg.paths.cache_dir)
        / "transferability"
        / (f"{cfg.data.name}-{stable_hash([to_dict(cfg.data), to_dict(cfg.transferability)])}.csv")
    )
    write_text(out, table.to_csv(index=False))
    return table, out
