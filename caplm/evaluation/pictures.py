"""Pictures of a job's first test images, saved in its folder for the report's gallery.

``eval.pictures`` test images (in the order of the job's test captions) are written as PNG
files, THUMBNAIL pixels on the longer side (small pictures enlarged by whole pixels, larger
ones shrunk), under ``test_pictures/``; each one's caption entry gains ``picture``, its path
relative to the job folder. The report reads only these files, never the dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from caplm.io import atomic_write, safe_name

log = logging.getLogger(__name__)

PICTURES_DIR = "test_pictures"
THUMBNAIL = 160  # pixels, the longer side of each picture


def thumbnail(image: np.ndarray, size: int = THUMBNAIL) -> Image.Image:
    """An RGB ``uint8`` image scaled to ``size`` pixels on its longer side."""
    picture = Image.fromarray(np.asarray(image, dtype=np.uint8))
    scale = size / max(picture.size)
    shape = tuple(max(1, round(side * scale)) for side in picture.size)
    return picture.resize(shape, Image.NEAREST if scale > 1 else Image.LANCZOS)


#: Why a job saves no pictures, by what it lacks.
NO_IMAGES = "the dataset has no images (data.images_dir)"
FEATURES_ONLY = "a features-only job (data.features_file) has no pictures to show"


def picture_source(data_cfg, dataset) -> tuple[Callable[[str], np.ndarray] | None, str]:
    """Where a job's pictures come from, and why there are none when there are none: a job on
    a features file reads no images (``data.images_dir`` is not read then), so it has none."""
    if data_cfg.get("features_file"):
        return None, FEATURES_ONLY
    return dataset.load_image, NO_IMAGES


def save_pictures(
    captions: list[dict],
    load_image: Callable[[str], np.ndarray] | None,
    job_dir: Path,
    count: int,
    none_because: str = NO_IMAGES,
) -> int:
    """Save the first ``count`` captions' images; return how many were saved. No images
    (said once, ``none_because``) or an unreadable image is logged, not raised: the pictures
    are for looking, the job's results do not depend on them."""
    if count <= 0 or not captions:
        return 0
    if load_image is None:
        log.info("no test pictures for the report: %s", none_because)
        return 0
    saved = 0
    for entry in captions[:count]:
        name = Path(PICTURES_DIR) / f"{safe_name(entry['image_id'])}.png"
        try:
            picture = thumbnail(load_image(entry["image_id"]))
        except (OSError, ValueError, KeyError) as err:
            log.warning("no test picture of %s: %s", entry["image_id"], err)
            continue
        atomic_write(job_dir / name, lambda tmp, p=picture: p.save(tmp, format="PNG"))
        entry["picture"] = name.as_posix()
        saved += 1
    return saved
