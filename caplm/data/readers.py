"""Readers for real caption datasets on the user's disk, and the one function that picks a
dataset from the ``data`` config.

Two formats are read:

- Karpathy's split files ``dataset_flickr8k.json`` / ``dataset_flickr30k.json`` /
  ``dataset_coco.json``: ``{"images": [{"split", "filename", "filepath"?, "sentences":
  [{"raw", "tokens"}]}]}``. COCO's extra ``restval`` images join the split named by
  ``restval`` (train, as usual) or are dropped when it is None.
- Flickr8k's own text files: ``Flickr8k.token.txt`` (``<image>#<n><TAB><caption>`` per line)
  and one list of image file names per split (``Flickr_8k.trainImages.txt`` etc.).

Captions are tokenised here by the normaliser ``data.normaliser`` names
(:func:`caplm.data.text.normaliser`; ``karpathy`` takes the JSON's ``tokens`` where given),
and the dataset records it, so its LM corpora use the same one. A caption with no word left after
tokenisation (``""``, ``"...!"``) is counted; ``empty_captions`` (``data.empty_captions``)
says what to do with them: ``skip`` (the default) leaves them out with one warning per file,
``error`` refuses the file. An image left with no caption at all is an error either way.
Every file is read as UTF-8 (:func:`caplm.data.text.read_utf8`). Images are not read until
``load_image`` is called, so a dataset with precomputed features needs no image folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from caplm.data.scenes import ScenesConfig, make_scenes_dataset
from caplm.data.shapes import ShapesConfig, make_shapes_dataset
from caplm.data.text import has_word, normaliser, read_utf8
from caplm.data.types import SPLITS, CaptionDataset, CaptionImage
from caplm.io import stable_hash, to_dict

log = logging.getLogger(__name__)

FORMATS = ("shapes", "scenes", "karpathy_json", "flickr8k_text")
#: What the readers do with captions that have no word after tokenisation.
EMPTY_CAPTIONS = ("skip", "error")
#: The keys a ``data`` config may have: those of every format, then each format's own.
DATA_KEYS = ("name", "format", "normaliser", "features_file", "encoder", "min_word_freq",
             "max_caption_len", "num_workers")  # fmt: skip
FORMAT_KEYS = {
    "shapes": ("shapes", "extra_scenes"),
    "scenes": ("scenes", "extra_scenes"),
    "karpathy_json": ("annotations", "images_dir", "restval", "empty_captions"),
    "flickr8k_text": ("token_file", "split_files", "images_dir", "empty_captions"),
}


def load_caption_dataset(data_cfg, cache_dir: str | Path) -> CaptionDataset:
    """The caption dataset a ``data`` config names (see ``conf/data/*.yaml``)."""
    cfg = to_dict(data_cfg)
    fmt = cfg.get("format")
    rule = cfg.get("normaliser")  # the reader checks it (data.normaliser)
    if fmt == "shapes":
        return make_shapes_dataset(ShapesConfig(**_need(cfg, "shapes", fmt)), cache_dir, rule)
    if fmt == "scenes":
        return make_scenes_dataset(ScenesConfig(**_need(cfg, "scenes", fmt)), cache_dir, rule)
    if fmt == "karpathy_json":
        return read_karpathy_json(
            _need(cfg, "annotations", fmt),
            cfg.get("images_dir"),
            cfg.get("restval", "train"),
            cfg.get("empty_captions", "skip"),
            rule,
        )
    if fmt == "flickr8k_text":
        return read_flickr8k_text(
            _need(cfg, "token_file", fmt),
            _need(cfg, "split_files", fmt),
            cfg.get("images_dir"),
            cfg.get("empty_captions", "skip"),
            rule,
        )
    raise ValueError(f"data.format is {fmt!r}; known formats: {', '.join(FORMATS)}")


def read_karpathy_json(
    path: str | Path,
    images_dir: str | Path | None = None,
    restval: str | None = "train",
    empty_captions: str = "skip",
    normaliser_name: str = "study",
) -> CaptionDataset:
    """A dataset from one of Karpathy's ``dataset_*.json`` split files."""
    path = Path(path)
    normalise = normaliser(normaliser_name)
    given_tokens = normaliser_name == "karpathy"
    if restval is not None and restval not in SPLITS:
        raise ValueError(f"restval is {restval!r}; use one of {', '.join(SPLITS)} or null (drop)")
    empty = _EmptyCaptions(path, empty_captions)
    # the given tokens are dropped as they are parsed where the raw text is what is read:
    # MSCOCO's split file would otherwise hold millions of short strings for a moment
    data = _read_json(
        _existing(path, "annotation file (data.annotations)"),
        object_hook=None if given_tokens else _without_tokens,
    )
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise ValueError(
            f"{path}: expected a JSON object with an 'images' list (Karpathy's dataset_*.json format)"
        )
    splits: dict[str, list[CaptionImage]] = {s: [] for s in SPLITS}
    files: dict[str, str] = {}  # image id -> path under images_dir
    seen: dict[str, str] = {}  # image id -> split, to catch an image listed twice
    no_caption: list[str] = []  # images whose every caption is empty
    for i, entry in enumerate(images):
        where = f"{path}: image {i}"
        for key in ("split", "filename", "sentences"):
            if not isinstance(entry, dict) or key not in entry:
                raise ValueError(
                    f"{where} has no '{key}'; each image needs split, filename, sentences"
                )
        name, split = str(entry["filename"]), entry["split"]
        where = f"{path}: image {i} ({name})"
        if split == "restval":
            split = restval
            if split is None:
                continue
        if split not in SPLITS:
            raise ValueError(
                f"{where} has unknown split {entry['split']!r}; expected train, val, test or restval"
            )
        _check_new(seen, name, split, where)
        sentences = entry["sentences"]
        if not isinstance(sentences, list) or not sentences:
            raise ValueError(f"{where} has no captions ('sentences' must be a non-empty list)")
        raws, tokens = [], []
        for k, s in enumerate(sentences):
            given = s.get("tokens") if isinstance(s, dict) else None
            given = (
                given
                if isinstance(given, list) and all(isinstance(t, str) for t in given)
                else None
            )
            raw = s.get("raw") if isinstance(s, dict) else None
            if raw is None and given is not None:
                raw = " ".join(given)  # some variants keep only the tokens
            if not isinstance(raw, str):
                raise ValueError(f"{where}: caption {k} has neither 'raw' text nor a 'tokens' list")
            raws.append(raw.strip())
            if given_tokens and given is not None:
                tokens.append([t for t in (t.strip() for t in given) if t])
            else:
                tokens.append(normalise(raw))
        image = _image(name, raws, tokens, empty, f"image {i} ({name})")
        if image is None:
            no_caption.append(where)
            continue
        splits[split].append(image)
        files[name] = str(Path(entry.get("filepath") or "") / name)
    empty.finish()
    if no_caption:
        raise ValueError(
            f"{no_caption[0]} has no caption left: none of its captions has a word after "
            "tokenisation" + _others(no_caption) + "; write a caption for it or remove it"
        )
    _check_splits(splits, path)
    return CaptionDataset(
        name=str(data.get("dataset") or path.stem),
        splits=splits,
        key=stable_hash({"karpathy_json": _file_hash(path), "restval": restval}),
        load_image=_image_loader(files, images_dir),
        image_files=_image_files(files, images_dir),
        info={"annotations": str(path), "images_dir": _str(images_dir), **_counts(splits)},
        normaliser=normaliser_name,
    )


def read_flickr8k_text(
    token_file: str | Path,
    split_files: Mapping[str, str | Path],
    images_dir: str | Path | None = None,
    empty_captions: str = "skip",
    normaliser_name: str = "study",
) -> CaptionDataset:
    """Flickr8k from ``Flickr8k.token.txt`` and its split lists (keys train / val / test).

    Images of the token file that no split lists are left out (the official token file has
    one such stray entry).
    """
    token_file = Path(token_file)
    normalise = normaliser(normaliser_name)
    empty = _EmptyCaptions(token_file, empty_captions)
    captions: dict[str, dict[int, tuple[str, list[str]]]] = {}  # image -> n -> raw, tokens
    emptied: dict[str, list[int]] = {}  # image -> lines of its empty captions
    text = read_utf8(_existing(token_file, "Flickr8k token file (data.token_file)"))
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        head, tab, raw = line.partition("\t")
        name, hash_, number = head.strip().rpartition("#")
        if not tab or not hash_ or not name or not number.isdigit():
            raise ValueError(
                f"{token_file}: line {lineno} is not '<image>#<n><TAB><caption>': {line[:80]!r}"
            )
        raw = raw.strip()
        tokens = normalise(raw)
        if not has_word(tokens):
            empty.add(f"line {lineno} ({head.strip()})", raw)
            emptied.setdefault(name, []).append(lineno)
            continue
        captions.setdefault(name, {})[int(number)] = raw, tokens
    empty.finish()
    if set(split_files) - set(SPLITS):
        raise ValueError(
            f"data.split_files has keys {sorted(split_files)}; use {', '.join(SPLITS)} "
            "(Flickr8k's devImages list is the val split)"
        )
    splits: dict[str, list[CaptionImage]] = {s: [] for s in SPLITS}
    seen: dict[str, str] = {}
    for split in SPLITS:
        if split not in split_files:
            raise ValueError(f"data.split_files has no '{split}' list")
        list_file = _existing(Path(split_files[split]), f"{split} split list (data.split_files)")
        for lineno, name in enumerate(read_utf8(list_file).splitlines(), 1):
            name = name.strip()
            if not name:
                continue
            where = f"{list_file}: line {lineno} ({name})"
            _check_new(seen, name, split, where)
            if name not in captions and name in emptied:
                lines = ", ".join(map(str, emptied[name]))
                raise ValueError(
                    f"{where}: image has no caption left: none of its captions in {token_file} "
                    f"(line(s) {lines}) has a word after tokenisation; write a caption for it "
                    "or remove the image from the split list"
                )
            if name not in captions:
                raise ValueError(f"{where}: image has no captions in {token_file}")
            by_number = [captions[name][n] for n in sorted(captions[name])]
            splits[split].append(
                CaptionImage(
                    name, captions=[t for _, t in by_number], raw=[r for r, _ in by_number]
                )
            )
    _check_splits(splits, *[Path(split_files[s]) for s in SPLITS])
    hashes = [_file_hash(token_file), *[_file_hash(Path(split_files[s])) for s in SPLITS]]
    return CaptionDataset(
        name="flickr8k",
        splits=splits,
        key=stable_hash({"flickr8k_text": hashes}),
        load_image=_image_loader({name: name for name in seen}, images_dir),
        image_files=_image_files({name: name for name in seen}, images_dir),
        info={"token_file": str(token_file), "images_dir": _str(images_dir), **_counts(splits)},
        normaliser=normaliser_name,
    )


def read_image(path: str | Path) -> np.ndarray:
    """An image file as an RGB ``uint8`` array (H, W, 3)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.array(img.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: cannot read the image ({err}); replace the file") from err


# -- helpers -------------------------------------------------------------------------------


def _image(
    name: str, raws: list[str], tokens: list[list[str]], empty: _EmptyCaptions, where: str
) -> CaptionImage | None:
    """The image with its captions that have a word (the others go to ``empty``), or None."""
    image = CaptionImage(image_id=name, captions=[], raw=[])
    for k, (raw, words) in enumerate(zip(raws, tokens, strict=True)):
        if not has_word(words):
            empty.add(f"{where} caption {k}", raw)
            continue
        image.captions.append(words)
        image.raw.append(raw)
    return image if image.captions else None


class _EmptyCaptions:
    """The captions of one file with no word after tokenisation: skipped or refused."""

    def __init__(self, path: Path, mode: str):
        if mode not in EMPTY_CAPTIONS:
            raise ValueError(
                f"data.empty_captions is {mode!r}; use skip (leave such captions out, with a "
                "warning) or error (refuse the file)"
            )
        self.path, self.mode, self.found = path, mode, []

    def add(self, where: str, raw: str) -> None:
        self.found.append(f"{where}: {raw!r}")

    def finish(self) -> None:
        """Raise (``error``) or warn once (``skip``) when some captions were empty."""
        if not self.found:
            return
        n = len(self.found)
        examples = "; ".join(self.found[:3]) + ("; ..." if n > 3 else "")
        what = f"{n} caption{'s' if n != 1 else ''} with no word after tokenisation"
        if self.mode == "error":
            raise ValueError(
                f"{self.path}: {what} (e.g. {examples}); write them or remove them, or set "
                "data.empty_captions=skip to leave them out"
            )
        log.warning(
            "%s: skipped %s (e.g. %s); set data.empty_captions=error to refuse them",
            self.path,
            what,
            examples,
        )


def _others(items: list) -> str:
    return f" (and {len(items) - 1} other image(s))" if len(items) > 1 else ""


def _read_json(path: Path, object_hook=None):
    try:
        return json.loads(read_utf8(path), object_hook=object_hook)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); fix it or download it again") from err


def _without_tokens(obj: dict) -> dict:
    """A caption object without its 'tokens' list where it has its 'raw' text."""
    if isinstance(obj.get("raw"), str):
        obj.pop("tokens", None)
    return obj


def _check_new(seen: dict[str, str], name: str, split: str, where: str) -> None:
    if name in seen:
        twice = "twice in split" if seen[name] == split else f"in splits {seen[name]} and"
        raise ValueError(
            f"{where}: image is listed {twice} {split}; each image belongs to one split"
        )
    seen[name] = split


def _check_splits(splits: dict[str, list[CaptionImage]], *files: Path) -> None:
    for split, images in splits.items():
        if not images:
            names = ", ".join(str(f) for f in files)
            raise ValueError(f"{names}: split '{split}' has no images; every split needs some")


def _image_files(files: dict[str, str], images_dir) -> dict[str, Path]:
    return {} if images_dir is None else {i: Path(images_dir) / f for i, f in files.items()}


def _image_loader(files: dict[str, str], images_dir):
    """``load_image(image_id)`` reading ``images_dir/<file>``, or None without images_dir."""
    if images_dir is None:
        return None
    images_dir = Path(images_dir)

    def load_image(image_id: str) -> np.ndarray:
        if image_id not in files:
            raise ValueError(f"no image {image_id!r} in this dataset")
        path = images_dir / files[image_id]
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: image file not found; data.images_dir is {images_dir}, "
                "point it at the folder that holds the dataset's images"
            )
        return read_image(path)

    return load_image


def _existing(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found; download it or fix the path")
    return path


def _need(cfg: dict, key: str, fmt: str):
    if cfg.get(key) is None:
        raise ValueError(f"data.format is {fmt!r} but data.{key} is not set")
    return cfg[key]


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _counts(splits: dict[str, list[CaptionImage]]) -> dict:
    return {
        "num_images": {s: len(v) for s, v in splits.items()},
        "num_captions": {s: sum(len(i.captions) for i in v) for s, v in splits.items()},
    }


def _str(path) -> str | None:
    return None if path is None else str(path)
