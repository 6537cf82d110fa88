"""Small helpers shared by every part: atomic writes, JSON, stable content hashes, and
configs as plain containers.

A killed process must never leave a truncated file that a later run would trust, so every
result, cache entry and checkpoint is written to a temporary file in the same folder and
renamed into place (rename is atomic on POSIX file systems; a temporary file elsewhere would
be copied, not renamed, onto another file system). What a kill leaves behind is only such a
temporary file (``.<name>.<random>.tmp``), removed by :func:`remove_stale_temporaries` when
the entry is next built under its lock.

Every file caplm reads back is checked against what was recorded when it was written: its
size and SHA-256 (:func:`file_record`, :func:`check_files`) in a manifest written last (an
LM entry's ``info.json``, a fit's ``fit_done.json``, a features file's own ``manifest``).
A file that does not match is :class:`Mismatch` (one of ``UNREADABLE``): named in a
warning, moved aside and rebuilt, as a truncated one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock

log = logging.getLogger(__name__)

#: What reading a truncated, emptied or corrupted file raises (JSON, torch, numpy, zip).
UNREADABLE = (OSError, EOFError, ValueError, RuntimeError, KeyError, pickle.UnpicklingError,
              zipfile.BadZipFile)  # fmt: skip


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once, at import: setting it back and forth is not thread-safe


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # as open() would make it (mkstemp's is 0600)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    return path


def _temporaries(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f".{name}.*.tmp")) if folder.is_dir() else []


def remove_stale_temporaries(folder: str | Path, name: str = "*") -> list[Path]:
    """Remove the temporary files that :func:`atomic_write` left in ``folder`` for ``name``
    (``*``: any file) when its writer was killed. Call it only while holding the lock that
    guards writing there (a live writer's temporary file is then impossible)."""
    removed = []
    for tmp in _temporaries(Path(folder), name):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed.append(tmp)
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted write in %s: %s",
                 len(removed), folder, ", ".join(t.name for t in removed))  # fmt: skip
    return removed


class Mismatch(ValueError):
    """A file that is not the one its manifest recorded (size, content or key differ)."""


def sha256_of(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def file_record(path: str | Path) -> dict:
    """What a manifest records of a file just written: ``{"size", "sha256"}``."""
    return {"size": Path(path).stat().st_size, "sha256": sha256_of(path)}


def check_files(folder: str | Path, recorded: dict[str, dict]) -> None:
    """Raise :class:`Mismatch` naming the first file of ``folder`` whose size or content is
    not what ``recorded`` (name -> :func:`file_record`) says, and how it differs."""
    for name, want in recorded.items():
        path = Path(folder) / name
        if not path.is_file():
            raise Mismatch(f"{path} is missing")
        size = path.stat().st_size
        if size != want["size"]:
            how = "truncated or replaced" if size < want["size"] else "replaced or appended to"
            raise Mismatch(f"{path} is {size} bytes, {want['size']} when written ({how})")
        if sha256_of(path) != want["sha256"]:
            raise Mismatch(
                f"{path} is not the file written there (same size, other content: "
                "damaged, or copied from another entry)"
            )


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"
    return atomic_write(path, lambda p: p.write_text(text))


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text))


def read_json(path: str | Path) -> Any:
    """Read JSON, with an error that names the file when it is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); delete it or re-create it") from err


def stable_hash(obj: Any, length: int = 16) -> str:
    """A hash of a JSON-able object that does not depend on dict order or the process."""
    text = json.dumps(obj, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def to_dict(cfg: Any) -> Any:
    """An omegaconf node as plain dicts/lists with interpolations resolved; anything else
    (a plain mapping, a scalar) is returned as it is (a mapping as a new dict)."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(cfg, DictConfig | ListConfig):
        return OmegaConf.to_container(cfg, resolve=True)
    if isinstance(cfg, dict):
        return dict(cfg)
    return cfg


def move_aside(path: str | Path, reason: object) -> Path:
    """Rename a bad file or folder to ``<name>.bad-<UTC time>`` beside it (never delete what
    might be evidence or a colleague's work), log where it went and why, return the new path."""
    path = Path(path)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    aside = path.with_name(f"{path.name}.bad-{stamp}")
    os.replace(path, aside)
    log.warning("%s cannot be used (%s); moved aside to %s", path, reason, aside.name)
    return aside


def build_lock(path: str | Path, what: str, damaged: object = None) -> FileLock:
    """The lock that guards building ``path`` (``<path>.lock``), its folder created. Taken
    only when something must be built, so a complete read-only cache is used as it is; where
    the folder cannot be written, a PermissionError says what cannot be built where, and
    why it must be built: ``damaged`` (the reason the existing one cannot be used), if any."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(path.parent, os.W_OK):
            raise PermissionError(f"{path.parent} is not writable")
    except OSError as err:
        why = f"the one there cannot be used ({damaged}), and " if damaged else ""
        raise PermissionError(
            f"cannot build {what} at {path}: {why}{err}. Point the cache at a writable folder "
            "(paths.cache_dir, or CAPLM_DATA_DIR), or build it there once where it can be written"
        ) from err
    return FileLock(f"{path}.lock")


def file_digests(files: dict[str, Path], memo_path: Path) -> dict[str, str]:
    """name -> sha256 of each file's content (``missing`` for a file that is not there).

    Each digest is remembered in ``memo_path`` by the file's resolved path, size and
    modification time, so a file is read again only when it changed. A damaged memo costs
    only hashing again; one that cannot be written (a read-only cache) is not kept.
    """
    try:
        memo = read_json(memo_path) if memo_path.is_file() else {}
    except ValueError:
        memo = {}
    digests, changed = {}, False
    for name, file in sorted(files.items()):
        try:
            st = Path(file).stat()
        except OSError:
            digests[name] = "missing"
            continue
        where, stamp = str(Path(file).resolve()), [st.st_size, st.st_mtime_ns]
        if memo.get(where, [None])[:2] != stamp:
            memo[where] = [*stamp, hashlib.sha256(Path(file).read_bytes()).hexdigest()]
            changed = True
        digests[name] = memo[where][2]
    if changed:
        try:
            write_json(memo_path, memo)
        except OSError:
            pass
    return digests


def safe_name(name: str) -> str:
    """``name`` as a file name: characters other than letters, digits and ``-_.`` become ``_``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
