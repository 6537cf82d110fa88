"""Pictures: a scene drawn as an RGB ``uint8`` array on a light, slightly tinted background,
supersampled for smooth edges, with optional Gaussian pixel noise."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from caplm.data.shapes.settings import COLOURS

BACKGROUND = (222, 252)  # each channel drawn from this range: always light, a little tinted
SUPERSAMPLE = 4  # drawn this many times larger and shrunk, which smooths the edges


def render_scene(
    objects: list[dict], image_size: int, rng: np.random.Generator, noise_std: float
) -> np.ndarray:
    """The scene as an RGB uint8 array (image_size, image_size, 3) on a light background."""
    side = image_size * SUPERSAMPLE
    background = tuple(int(c) for c in rng.integers(*BACKGROUND, size=3, endpoint=True))
    image = Image.new("RGB", (side, side), background)
    draw = ImageDraw.Draw(image)
    for o in objects:
        x, y, r = o["x"] * side, o["y"] * side, o["extent"] * side / 2
        fill = COLOURS[o["colour"]]
        if o["shape"] == "circle":
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        elif o["shape"] == "square":
            draw.rectangle((x - r, y - r, x + r, y + r), fill=fill)
        else:
            draw.polygon([(x + r * u, y + r * v) for u, v in OUTLINES[o["shape"]]], fill=fill)
    pixels = np.asarray(image.reduce(SUPERSAMPLE), dtype=np.float32)
    if noise_std > 0:
        pixels = pixels + rng.normal(0.0, noise_std, pixels.shape).astype(np.float32)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def _star(points: int = 5, inner: float = 0.45) -> list[tuple[float, float]]:
    angles = np.pi * np.arange(2 * points) / points
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return [
        (float(r * np.sin(a)), float(-r * np.cos(a))) for r, a in zip(radii, angles, strict=True)
    ]


_ARM = 0.36  # half the width of a cross's arms, as a fraction of its half extent
OUTLINES = {  # polygon corners in units of the half extent, around the centre, y down
    "triangle": [(0, -1), (1, 1), (-1, 1)],
    "diamond": [(0, -1), (1, 0), (0, 1), (-1, 0)],
    "star": _star(),
    "cross": [
        (-_ARM, -1),
        (_ARM, -1),
        (_ARM, -_ARM),
        (1, -_ARM),
        (1, _ARM),
        (_ARM, _ARM),
        (_ARM, 1),
        (-_ARM, 1),
        (-_ARM, _ARM),
        (-1, _ARM),
        (-1, -_ARM),
        (-_ARM, -_ARM),
    ],  # fmt: skip
}
