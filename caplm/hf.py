"""Models of the Hugging Face ecosystem, read from local files only.

caplm never downloads a model: this module forces ``HF_HUB_OFFLINE=1`` and
``TRANSFORMERS_OFFLINE=1`` before ``transformers`` is imported, and every load passes
``local_files_only=True``. A model is named by a local folder (what ``save_pretrained`` or
``huggingface-cli download --local-dir`` writes), or by a hub id already in the local
Hugging Face cache (``~/.cache/huggingface/hub``, ``HF_HOME``); anything else is a clear error
that says how to put the model there.

A model's identity (what caches and job hashes key on) is the digest of its folder's files
(config, weights, tokenizer or preprocessing), so a model replaced at the same path is another
model.
"""

from __future__ import annotations

import os
from pathlib import Path

from caplm.io import file_digests, stable_hash

#: Set before transformers (and huggingface_hub) are imported anywhere through this module.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
#: Files of a model folder that are not part of its identity (docs, git's files).
NOT_IDENTITY = (".md", ".gitattributes", ".lock")


def offline() -> None:
    """Force offline mode for the Hugging Face libraries (idempotent)."""
    os.environ.update(OFFLINE_ENV)


def transformers():
    """The ``transformers`` module, imported offline and quiet (no progress bars)."""
    offline()
    import transformers as tf

    tf.utils.logging.disable_progress_bar()
    tf.utils.logging.set_verbosity_error()
    return tf


def how_to_get(name: str, what: str = "model") -> str:
    return (
        f"On a machine with a network: `huggingface-cli download {name} --local-dir "
        f"/models/{Path(str(name)).name}` (or `AutoModel.from_pretrained('{name}')."
        f"save_pretrained('/models/{Path(str(name)).name}')` with its tokenizer or image "
        f"processor), copy the folder here and point the setting at it. caplm never "
        f"downloads a {what}."
    )


def local_folder(path: str, key: str = "lm.path") -> Path:
    """The local folder of model ``path``: the folder itself, or the snapshot of a hub id in
    the local Hugging Face cache. A clear error when neither holds a ``config.json``."""
    if path is None or str(path).strip() in ("", "???"):
        raise ValueError(f"{key} is not set: name the local folder of a Hugging Face model "
                         f"(e.g. {key}=/models/gpt2). {how_to_get('gpt2')}")  # fmt: skip
    folder = Path(str(path)).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"{key}={path}: the folder has no config.json, so it is not a saved Hugging "
                f"Face model. {how_to_get(folder.name)}"
            )
        return folder.resolve()
    if not folder.is_absolute() and not str(path).startswith("."):
        offline()
        from huggingface_hub import snapshot_download

        try:  # a hub id already in the local cache
            cached = Path(snapshot_download(str(path), local_files_only=True))
            if (cached / "config.json").is_file():
                return cached
        except Exception:  # noqa: BLE001 - any failure means: not in the cache
            pass
    raise FileNotFoundError(
        f"{key}={path}: no such folder, and not in the local Hugging Face cache "
        f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}). {how_to_get(str(path))}"
    )


def folder_identity(folder: Path, memo_path: Path | None = None) -> dict:
    """``config`` (digest of config.json) and ``files`` (digest of every other file that
    defines the model: weights, tokenizer, preprocessing) of a model folder."""
    files = {
        p.relative_to(folder).as_posix(): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(NOT_IDENTITY) and ".cache" not in p.parts
    }
    memo = memo_path or Path(os.environ.get("TMPDIR", "/tmp")) / "caplm-hf-digests.json"
    digests = file_digests(files, memo)
    return {
        "config": digests.get("config.json"),
        "files": stable_hash({k: v for k, v in digests.items() if k != "config.json"}),
    }
