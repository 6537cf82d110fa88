"""Pictures of where model=merge_attention looked: for a job's first test captions, each word
of the generated caption beside the picture with that step's attention over its regions.

One PNG per caption under ``attention_pictures/``: a row of tiles, one per word (and the
final ``<eos>``), each the picture with its G x G regions shaded by the attention weight of the
step that chose that word (bright: attended; dark: not), the word written beneath. The
caption's entry gains ``attention_picture``, its path relative to the job folder (the report's
gallery shows it). Regions that are not a square grid (a features file's) are drawn as a bar of
R cells under the picture.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from caplm.data.batching import pad_batch
from caplm.data.text import Vocabulary
from caplm.io import atomic_write, safe_name

log = logging.getLogger(__name__)

ATTENTION_DIR = "attention_pictures"
TILE = 96  # pixels, each word's picture
LABEL = 16  # pixels of text under each tile


def attention_tiles(image: np.ndarray, weights: np.ndarray, words: list[str]) -> Image.Image:
    """image (H, W, 3) uint8, weights (len(words), R): one tile per word, side by side."""
    R = weights.shape[1]
    grid = int(round(R**0.5))
    picture = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
    base = np.asarray(picture.resize((TILE, TILE), Image.BILINEAR), dtype=np.float32)
    bar = 0 if grid * grid == R else 12
    strip = Image.new("RGB", (TILE * len(words), TILE + bar + LABEL), "white")
    draw = ImageDraw.Draw(strip)
    for k, (w, word) in enumerate(zip(weights, words, strict=True)):
        shade = w / max(float(w.max()), 1e-12)
        if bar:
            tile, cells = base, np.repeat(shade, -(-TILE // R))[:TILE]
            strip.paste(Image.fromarray((255 * np.tile(cells, (bar, 1))).astype(np.uint8)),
                        (k * TILE, TILE))  # fmt: skip
        else:
            cell = shade.reshape(grid, grid)
            mask = (
                np.asarray(
                    Image.fromarray((255 * cell).astype(np.uint8)).resize(
                        (TILE, TILE), Image.NEAREST
                    ),
                    dtype=np.float32,
                )[:, :, None]
                / 255.0
            )
            tile = base * (0.2 + 0.8 * mask)
        strip.paste(Image.fromarray(tile.clip(0, 255).astype(np.uint8)), (k * TILE, 0))
        draw.text((k * TILE + 3, TILE + bar + 2), word, fill="black")
    return strip


def save_attention_pictures(
    model,
    features: torch.Tensor,
    image_ids: list[str],
    captions: list[dict],
    vocab: Vocabulary,
    load_image: Callable[[str], np.ndarray] | None,
    job_dir: Path,
    count: int,
) -> int:
    """Save the attention pictures of the first ``count`` captions (``features`` row i is
    image ``image_ids[i]``); return how many were saved. Logged, never raised."""
    if count <= 0 or load_image is None or not hasattr(model, "attention_weights"):
        return 0
    row = {image_id: i for i, image_id in enumerate(image_ids)}
    saved = 0
    for entry in captions[:count]:
        words = entry["caption"].split()
        batch = pad_batch([torch.tensor(vocab.encode(words), dtype=torch.long)])
        i = row[entry["image_id"]]
        weights = model.attention_weights(features[i : i + 1], batch["inputs"])[0]
        name = Path(ATTENTION_DIR) / f"{safe_name(entry['image_id'])}.png"
        try:
            strip = attention_tiles(
                load_image(entry["image_id"]), weights.cpu().numpy(), [*words, "<eos>"]
            )
        except (OSError, ValueError, KeyError) as err:
            log.warning("no attention picture of %s: %s", entry["image_id"], err)
            continue
        atomic_write(job_dir / name, lambda tmp, p=strip: p.save(tmp, format="PNG"))
        entry["attention_picture"] = name.as_posix()
        saved += 1
    return saved
