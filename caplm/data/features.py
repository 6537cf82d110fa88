"""Image features for a caption dataset: one float32 row per image, per split, in the
dataset's order. A row is a vector (arrays (N, F)) or a set of region vectors (arrays
(N, R, D): ``data.encoder.regions``, or a features file of that shape).

They come either from a precomputed file (``data.features_file``, keyed by image file
name) or from the configured image encoder, computed once and cached at
``<cache_dir>/features/<hash of dataset key, encoder identity and, for images read from disk,
the image files' content>.npz``; a lock makes parallel
jobs that need the same features wait for one of them instead of all encoding. Each cached
file holds its manifest (array ``manifest``, JSON): its key, what it was made from (the
dataset's key, the encoder with its settings, the images' content hash) and the SHA-256 of
each array; one made for other images or by another encoder, or whose values changed, is
named in a warning, moved aside and encoded again.

Every value must be finite: a row with NaN or inf (from the file, from a float64 value too
large for float32, or from the encoder) is refused when loaded, with the row and its image,
rather than found by the metrics after training.

A features file (``.h5`` or ``.npy``) larger than :data:`IN_MEMORY_MAX_BYTES` is not read
into memory: the train split stays on disk as :class:`DiskRows`, whose rows the data loader
reads batch by batch (an MSCOCO-size file of VGG features is 2 GB), and only the val and test
splits (which beam search and retrieval use whole) are read in.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from filelock import FileLock
from tqdm import tqdm

from caplm import available_cores, torch_threads
from caplm.data.encoders import ImageEncoder, build_encoder
from caplm.data.text import read_utf8
from caplm.data.types import CaptionDataset
from caplm.io import (
    Mismatch,
    atomic_write,
    build_lock,
    file_digests,
    move_aside,
    remove_stale_temporaries,
    stable_hash,
    to_dict,
)

log = logging.getLogger(__name__)
#: Where the content hashes of input files (images, annotations, ...) are remembered, under
#: the cache folder.
FINGERPRINTS = "file_hashes.json"

FEATURE_FILES = (
    ".npz with arrays 'features' (N, F) or (N, R, D) and 'ids' (N,) | "
    ".npy (N, F) or (N, R, D) with its ids one per line in <same stem>.ids.txt | "
    ".h5 with datasets 'features' and 'ids'"
)
#: Features files (.h5, .npy) above this size keep their train split on disk (DiskRows).
IN_MEMORY_MAX_BYTES = 2**30
#: Rows read at a time where a whole file or split is scanned (the finiteness check, np.asarray).
SCAN_ROWS = 4096
FINITE_FIX = (
    "every feature value must be a finite number: recompute the features of those images "
    "(or remove their rows if the dataset does not use them)"
)


def load_features(
    data_cfg, dataset: CaptionDataset, cache_dir: str | Path
) -> dict[str, np.ndarray]:
    """split -> float32 array (N_split, F) or (N_split, R, D), row i for
    ``dataset.splits[split][i]``."""
    cfg = to_dict(data_cfg)
    if cfg.get("features_file"):
        path = Path(cfg["features_file"])
        ids, features = read_feature_file(path, on_disk=_too_large(path))
        log.info("features from %s: %d images x %s values", path, len(features),
                 " x ".join(map(str, features.shape[1:])))  # fmt: skip
        aligned = align_features(path, ids, features, dataset)
        if isinstance(features, DiskRows):
            log.info(
                "%s is %.1f GB: the train split's rows are read from it batch by batch",
                path,
                path.stat().st_size / 1e9,
            )
            aligned = {s: f if s == "train" else np.asarray(f) for s, f in aligned.items()}
        return aligned
    if not cfg.get("encoder"):
        raise ValueError("data.features_file is not set and data.encoder is missing; set one")
    return encode_dataset(dataset, build_encoder(cfg["encoder"]), cache_dir)


def encode_dataset(
    dataset: CaptionDataset, encoder: ImageEncoder, cache_dir: str | Path
) -> dict[str, np.ndarray]:
    """Features of every image of ``dataset`` by ``encoder``, cached under ``cache_dir``."""
    source = [dataset.key, encoder.identity()]
    if dataset.image_files:  # images on disk: their content, not their paths, keys the cache
        source.append(images_fingerprint(dataset.image_files, Path(cache_dir) / FINGERPRINTS))
    key = stable_hash(source)
    path = Path(cache_dir) / "features" / f"{key}.npz"
    cached, damage = _cached(path, dataset, key)  # complete (atomic): no lock, as read-only caches
    if cached is not None:
        return cached
    with build_lock(path, f"the features of {dataset.name}", damaged=damage):
        cached, _ = _cached(path, dataset, key, move_bad=True)  # built meanwhile by another job?
        if cached is not None:
            return cached
        remove_stale_temporaries(path.parent, path.name)  # no live writer: we hold the lock
        if dataset.load_image is None:
            raise ValueError(
                f"dataset {dataset.name} has no images to encode (data.images_dir is not set); "
                "set data.images_dir, or data.features_file to precomputed features"
            )
        start = time.perf_counter()
        name = encoder.identity()["name"]
        with _every_core():  # parallel jobs have a thread each: those waiting lend theirs
            train = _Images(dataset.load_image, dataset.image_ids("train"))
            if getattr(encoder, "train_epochs", 0):
                log.info("training %s on %d train images", name, len(train))
            encoder.fit(train)  # unsupervised; the training split only
            features = {}
            total = sum(len(images) for images in dataset.splits.values())
            # a bar on a terminal; in a log file each redraw would be a line of its own
            on_terminal = sys.stderr.isatty()
            if not on_terminal:
                log.info("encoding %d images (%s)", total, name)
            with tqdm(
                total=total, desc=f"encoding images ({name})", unit="img", disable=not on_terminal
            ) as bar:
                for split in dataset.splits:
                    images = _Images(dataset.load_image, dataset.image_ids(split))
                    shape = getattr(encoder, "feature_shape", (encoder.feature_size,))
                    rows = [np.zeros((0, *shape), dtype=np.float32)]
                    for i in range(0, len(images), encoder.batch_size):
                        rows.append(encoder.encode(images[i : i + encoder.batch_size]))
                        bar.update(len(rows[-1]))
                    features[split] = np.concatenate(rows)
                    _check_finite(
                        features[split],
                        dataset.image_ids(split),
                        f"the features that encoder {name} computed for the {split} split of "
                        f"dataset {dataset.name}",
                        f"nothing was cached at {path}; check those images (data.images_dir) and "
                        "the encoder's settings (data.encoder; a trained encoder may have diverged: "
                        "try fewer train_epochs)",
                    )
        seconds = time.perf_counter() - start
        arrays = {
            **features,
            **{f"{s}_ids": np.array(dataset.image_ids(s), dtype=str) for s in features},
        }
        manifest = {"key": key, "source": source, "arrays": _digests(arrays)}
        arrays[MANIFEST] = np.array(json.dumps(manifest, default=str))
        atomic_write(path, lambda p: _savez(p, arrays))
        log.info(
            "encoded %d images with %s in %.1f s (%.1f ms/image); cached at %s",
            total,
            name,
            seconds,
            1000 * seconds / max(total, 1),
            path,
        )
        return features


@contextlib.contextmanager
def _every_core():
    """Encodes on one machine take turns, each on all the cores this process may use (a job of
    a parallel sweep runs on cores / jobs threads, and the jobs waiting for the features
    would leave theirs idle)."""
    lock = FileLock(str(Path(tempfile.gettempdir()) / f"caplm-encode-{os.getuid()}.lock"))
    with lock, torch_threads(available_cores()):
        yield


def images_fingerprint(files: dict[str, Path], memo_path: Path) -> str:
    """A hash of the content of every image file (image id -> path); see ``file_digests``."""
    return stable_hash(file_digests(files, memo_path))


def read_feature_file(
    path: str | Path, on_disk: bool = False
) -> tuple[list[str], np.ndarray | DiskRows]:
    """Image ids and their feature rows (float32; (N, F), or (N, R, D): R region vectors of D
    values per image) from a precomputed features file; with
    ``on_disk`` (.h5 and .npy only), rows that stay in the file, read when indexed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: features file (data.features_file) not found")
    suffix = path.suffix.lower()
    with contextlib.ExitStack() as open_files:  # an .h5 file stays open for the checks
        if suffix == ".npz":
            try:
                z = np.load(path, allow_pickle=False)
            except (ValueError, OSError, zipfile.BadZipFile) as err:
                raise ValueError(f"{path}: cannot read it as .npz ({err})") from err
            with z:
                _has(path, z.files, "arrays")
                try:
                    features, ids = z["features"], z["ids"]
                except ValueError as err:  # object arrays need pickle, which we do not load
                    raise ValueError(
                        f"{path}: cannot read its arrays ({err}); save ids as a string array, "
                        "np.array(ids, dtype=str), and features as numbers"
                    ) from err
        elif suffix == ".npy":
            ids_file = path.with_suffix(".ids.txt")
            if not ids_file.is_file():
                raise FileNotFoundError(
                    f"{ids_file}: the image ids for {path} are missing; a .npy features file "
                    "needs its ids, one per line in row order, in <same stem>.ids.txt next to it"
                )
            try:
                features = np.load(path, allow_pickle=False, mmap_mode="r" if on_disk else None)
            except (ValueError, OSError) as err:
                raise ValueError(f"{path}: cannot read it as .npy ({err})") from err
            ids = [line.strip() for line in read_utf8(ids_file).splitlines() if line.strip()]
        elif suffix in (".h5", ".hdf5"):
            import h5py

            f = open_files.enter_context(h5py.File(path, "r"))
            _has(path, list(f.keys()), "datasets")
            features, ids = (f["features"] if on_disk else f["features"][()]), f["ids"][()]
        else:
            raise ValueError(
                f"{path}: unsupported features file type '{suffix}'; use {FEATURE_FILES}"
            )
        ids = [x.decode() if isinstance(x, bytes) else str(x) for x in np.asarray(ids).reshape(-1)]
        shape = tuple(features.shape)
        if (
            len(shape) not in (2, 3)
            or 0 in shape[1:]
            or not np.issubdtype(features.dtype, np.number)
        ):
            raise ValueError(
                f"{path}: features must be a numeric array of shape (images, values) or "
                f"(images, regions, values per region), none of its sizes 0 but the images'; "
                f"got {features.dtype} {shape}"
            )
        if len(ids) != len(features):
            raise ValueError(
                f"{path}: {len(ids)} image ids but {len(features)} feature rows; they must match"
            )
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            dup = next(x for x in ids if x in seen or seen.add(x))
            raise ValueError(
                f"{path}: image id {dup!r} appears more than once; keep one row per image"
            )
        if on_disk and suffix != ".npz":
            for start in range(0, len(features), SCAN_ROWS):  # in blocks: little memory
                block = np.asarray(features[start : start + SCAN_ROWS])
                with np.errstate(over="ignore"):
                    converted = block.astype(np.float32, copy=False)
                _check_finite(converted, ids[start : start + SCAN_ROWS], str(path), FINITE_FIX,
                              original=block, first_row=start)  # fmt: skip
            return ids, DiskRows(path, np.arange(len(ids)), features.shape[1:])
    with np.errstate(over="ignore"):  # a value too large for float32 is reported just below
        converted = features.astype(np.float32, copy=False)
    _check_finite(converted, ids, str(path), FINITE_FIX, original=features)
    return ids, converted


def align_features(
    path: str | Path, ids: list[str], features: np.ndarray, dataset: CaptionDataset
) -> dict[str, np.ndarray]:
    """The rows of ``features`` (one per id) in the order of each split of ``dataset`` (of
    DiskRows: views, nothing read)."""
    row = {image_id: i for i, image_id in enumerate(ids)}
    missing = [x for s in dataset.splits for x in dataset.image_ids(s) if x not in row]
    if missing:
        others = f" (and {len(missing) - 1} others)" if len(missing) > 1 else ""
        raise ValueError(
            f"{path} has no features for image {missing[0]}{others}; it needs one row per image "
            "of the dataset, keyed by image file name"
        )
    pick = features.select if isinstance(features, DiskRows) else features.__getitem__
    return {s: pick([row[x] for x in dataset.image_ids(s)]) for s in dataset.splits}


class DiskRows:
    """Feature rows (vectors, or sets of region vectors) that stay in their file (.h5 dataset
    'features', or .npy memory-mapped), read as float32 when indexed: ``rows[[3, 1]]`` reads two rows; ``np.asarray(rows)`` reads them all (in
    blocks). Indexing with a list or slice gives the array of those rows; ``select`` gives
    another DiskRows (a view: nothing read). The file is opened once per process, so data
    loader workers forked after the first read open their own."""

    def __init__(self, path: str | Path, file_rows: np.ndarray, row_shape):
        self.path, self.file_rows = Path(path), np.asarray(file_rows, dtype=np.int64)
        self.row_shape = tuple(int(n) for n in np.atleast_1d(row_shape))
        self._open: tuple[int, object, object] | None = None  # (pid, file, array)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.file_rows), *self.row_shape)

    def __len__(self) -> int:
        return len(self.file_rows)

    def select(self, index) -> DiskRows:
        return DiskRows(self.path, self.file_rows[index], self.row_shape)

    def __getitem__(self, index) -> np.ndarray:
        rows = self.file_rows[index]
        if rows.ndim == 0:
            return self[[int(index)]][0]
        wanted, where = np.unique(rows, return_inverse=True)  # h5py reads increasing rows
        read = np.asarray(self._array()[wanted], dtype=np.float32)
        return read[where.reshape(-1)]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.empty(self.shape, dtype=np.float32)
        for i in range(0, len(self), SCAN_ROWS):
            out[i : i + SCAN_ROWS] = self[i : i + SCAN_ROWS]
        return out if dtype is None else out.astype(dtype, copy=False)

    def _array(self):
        if self._open is None or self._open[0] != os.getpid():
            if self.path.suffix.lower() == ".npy":
                handle = None
                array = np.load(self.path, mmap_mode="r", allow_pickle=False)
            else:
                import h5py

                handle = h5py.File(self.path, "r")
                array = handle["features"]
            self._open = (os.getpid(), handle, array)
        return self._open[2]

    def __getstate__(self):  # pickled (spawned workers): without the open file
        return {**self.__dict__, "_open": None}


def _too_large(path: Path) -> bool:
    return (
        path.suffix.lower() in (".h5", ".hdf5", ".npy")
        and path.is_file()
        and path.stat().st_size > IN_MEMORY_MAX_BYTES
    )


# -- helpers -------------------------------------------------------------------------------


class _Images(Sequence):
    """The images of ``ids``, read from disk when indexed (a dataset need not fit in memory)."""

    def __init__(self, load: Callable[[str], np.ndarray], ids: list[str]):
        self.load, self.ids = load, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.load(x) for x in self.ids[i]]
        return self.load(self.ids[i])


#: The array of a cached features file that holds its manifest.
MANIFEST = "manifest"


def _digests(arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """name -> SHA-256 of each array's dtype, shape and bytes."""
    return {
        name: hashlib.sha256(f"{a.dtype.str}{a.shape}".encode() + a.tobytes()).hexdigest()
        for name, a in sorted(arrays.items())
    }


def _cached(path: Path, dataset: CaptionDataset, key: str, move_bad: bool = False):
    """The cached features at ``path`` (or None) and why a bad file cannot be used. A bad
    cache file is moved aside when ``move_bad`` (under the lock: the images are then encoded
    again)."""
    if not path.is_file():
        return None, None
    try:
        features = _read_cache(path, dataset, key)
    except ValueError as err:
        if move_bad:
            move_aside(path, f"{err}; encoding the images again")
        return None, str(err)
    log.info("features of %s from the cache %s", dataset.name, path)
    return features, None


def _read_cache(path: Path, dataset: CaptionDataset, key: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"{path}: unreadable feature cache ({err}); delete it and run again"
        ) from err
    manifest = _manifest(path, arrays.pop(MANIFEST, None), key)  # None: cached before them
    try:
        features = {s: arrays[s] for s in dataset.splits}
        same = all(arrays[f"{s}_ids"].tolist() == dataset.image_ids(s) for s in dataset.splits)
    except KeyError as err:
        raise ValueError(f"{path}: feature cache without array {err}") from err
    if not same:
        raise ValueError(f"{path}: feature cache does not match dataset {dataset.name}; delete it")
    for split in dataset.splits:
        _check_finite(
            features[split],
            dataset.image_ids(split),
            f"{path} (feature cache, {split} split)",
            "delete the cache file and run again",
        )
    digests = manifest["arrays"] if manifest else {}
    changed = sorted(n for n, d in _digests(arrays).items() if digests and digests.get(n) != d)
    changed += sorted(set(digests) - set(arrays))
    if changed:
        raise Mismatch(
            f"{path}: array(s) {', '.join(changed)} are not those written there (damaged or "
            "replaced)"
        )
    return features


def _manifest(path: Path, stored, key: str) -> dict | None:
    """The manifest of a cached features file (None for a file cached before manifests);
    Mismatch when it is unreadable or names other features (another encoder, images...)."""
    if stored is None:
        return None
    try:
        manifest = json.loads(str(stored))
        made_for, _ = manifest["key"], manifest["arrays"]
    except (ValueError, KeyError, TypeError) as err:
        raise Mismatch(f"{path}: its manifest is unreadable ({err})") from err
    if made_for != key:
        raise Mismatch(
            f"{path} holds the features {made_for} (made from {manifest.get('source')}), not "
            f"{key}: copied from another entry"
        )
    return manifest


def _check_finite(
    features: np.ndarray,
    ids: Sequence[str],
    where: str,
    fix: str,
    original: np.ndarray | None = None,
    first_row: int | None = None,
) -> None:
    """Raise when a row of ``features`` (row i for image ``ids[i]``) holds NaN or inf; with
    ``first_row``, ``features`` is the block of a file's rows from that row on."""
    finite = np.concatenate(  # in blocks, so the check needs little memory beside the features
        [np.ones(0, bool)]
        + [
            np.isfinite(features[i : i + SCAN_ROWS]).reshape(-1, _row_values(features)).all(1)
            for i in range(0, len(features), SCAN_ROWS)
        ]
    )
    if finite.all():
        return
    bad = np.flatnonzero(~finite)
    i = int(bad[0])
    row = np.asarray(features[i])
    kinds = [k for k, n in (("NaN", np.isnan(row).sum()), ("inf", np.isinf(row).sum())) if n]
    how = " and ".join(kinds)
    if original is not None and original.dtype != features.dtype and np.isfinite(original[i]).all():
        how = f"values too large for float32 (|x| > {np.finfo(np.float32).max:.3g}), so inf"
    span = "" if first_row is None else f" (rows {first_row}-{first_row + len(features) - 1})"
    raise ValueError(
        f"{where}: {len(bad)} of {len(features)} feature rows{span} are not finite; the first is "
        f"row {i + (first_row or 0)} (image {ids[i]!r}), which holds {how}; {fix}"
    )


def _row_values(features) -> int:
    """The values of one row of a features array (F, or R x D)."""
    return int(np.prod(features.shape[1:], dtype=np.int64))


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:  # a file object: np.savez would append .npz to a name
        np.savez(f, **arrays)


def _has(path: Path, names: list[str], what: str) -> None:
    missing = [k for k in ("features", "ids") if k not in names]
    if missing:
        raise ValueError(
            f"{path}: no {' or '.join(repr(m) for m in missing)} among its {what} {sorted(names)}; "
            f"expected {FEATURE_FILES}"
        )
