"""Pictures: a scene drawn as an RGB ``uint8`` array, flat-coloured icons on white.

Each icon is drawn as a mask in its own box (holes, such as a ring's, stay white and never
touch a neighbour), supersampled for smooth edges; optional Gaussian pixel noise.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from caplm.data.scenes.lexicon import COLOURS

BACKGROUND = (255, 255, 255)
SUPERSAMPLE = 4  # drawn this many times larger and shrunk, which smooths the edges


def _star(points: int = 5, inner: float = 0.45) -> list[tuple[float, float]]:
    out = []
    for k in range(2 * points):
        r, a = (1.0 if k % 2 == 0 else inner), math.pi * k / points
        out.append((r * math.sin(a), -r * math.cos(a)))
    return out


def _heart(steps: int = 64) -> list[tuple[float, float]]:
    out = []
    for k in range(steps):
        t = 2 * math.pi * k / steps
        x = 16 * math.sin(t) ** 3
        y = -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t))
        out.append((x / 16.5, (y - 2.5) / 14.5))
    return out


_ARM = 0.36  # half the width of a cross's arms
_PETALS = [(0.55 * math.cos(math.pi * k / 3), 0.55 * math.sin(math.pi * k / 3)) for k in range(6)]
#: category -> primitives in units of the half extent around the centre (y down):
#: (shape, coordinates, filled); filled False cuts a hole.
ICONS = {
    "circle": [("ellipse", (0, 0, 1, 1), True)],
    "ring": [("ellipse", (0, 0, 1, 1), True), ("ellipse", (0, 0, 0.55, 0.55), False)],
    "square": [("polygon", [(-0.92, -0.92), (0.92, -0.92), (0.92, 0.92), (-0.92, 0.92)], True)],
    "triangle": [("polygon", [(0, -1), (1, 0.9), (-1, 0.9)], True)],
    "diamond": [("polygon", [(0, -1), (0.72, 0), (0, 1), (-0.72, 0)], True)],
    "star": [("polygon", _star(), True)],
    "heart": [("polygon", _heart(), True)],
    "moon": [("ellipse", (0, 0, 1, 1), True), ("ellipse", (0.4, 0, 0.82, 0.82), False)],
    "cross": [
        (
            "polygon",
            [
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
            ],
            True,
        )
    ],  # fmt: skip
    "arrow": [
        (
            "polygon",
            [
                (0, -1),
                (0.8, -0.2),
                (0.22, -0.2),
                (0.22, 1),
                (-0.22, 1),
                (-0.22, -0.2),
                (-0.8, -0.2),
            ],
            True,
        )
    ],  # fmt: skip
    "house": [
        (
            "polygon",
            [
                (0, -1),
                (1, -0.15),
                (0.78, -0.15),
                (0.78, 1),
                (-0.78, 1),
                (-0.78, -0.15),
                (-1, -0.15),
            ],
            True,
        ),
        ("polygon", [(-0.2, 0.35), (0.2, 0.35), (0.2, 1), (-0.2, 1)], False),
    ],  # fmt: skip
    "tree": [
        ("polygon", [(0, -1), (0.55, -0.35), (-0.55, -0.35)], True),  # three tiers
        ("polygon", [(0, -0.65), (0.75, 0.15), (-0.75, 0.15)], True),
        ("polygon", [(0, -0.25), (0.95, 0.62), (-0.95, 0.62)], True),
        ("polygon", [(-0.15, 0.6), (0.15, 0.6), (0.15, 1), (-0.15, 1)], True),
    ],
    "drop": [
        ("ellipse", (0, 0.32, 0.66, 0.66), True),
        ("polygon", [(0, -1), (0.6, 0.05), (-0.6, 0.05)], True),
    ],
    "bolt": [
        (
            "polygon",
            [
                (0.05, -1),
                (0.55, -1),
                (0.1, -0.15),
                (0.5, -0.15),
                (-0.45, 1),
                (-0.15, 0.1),
                (-0.55, 0.1),
            ],
            True,
        )
    ],  # fmt: skip
    "flower": [
        *[("ellipse", (u, v, 0.45, 0.45), True) for u, v in _PETALS],
        ("ellipse", (0, 0, 0.5, 0.5), True),
        ("ellipse", (0, 0, 0.2, 0.2), False),
    ],
    "fish": [
        ("ellipse", (-0.2, 0, 0.75, 0.5), True),
        ("polygon", [(0.4, 0), (1, -0.55), (1, 0.55)], True),
        ("ellipse", (-0.6, -0.1, 0.09, 0.09), False),
    ],
}
#: A point (in units of the half extent) that every icon of the category covers.
INSIDE = {"circle": (0, 0), "ring": (0.78, 0), "square": (0, 0), "triangle": (0, 0.3),
          "diamond": (0, 0), "star": (0, 0), "heart": (0, 0.2), "moon": (-0.72, 0),
          "cross": (0, 0), "arrow": (0, 0.3), "house": (-0.45, 0.2), "tree": (0, 0),
          "drop": (0, 0.3), "bolt": (0, 0), "flower": (0.55, 0), "fish": (-0.1, 0)}  # fmt: skip


def _mask(category: str, half: float) -> Image.Image:
    """The icon's mask (255 inside) in a square of side ``2 * half`` pixels."""
    side = max(1, round(2 * half))
    mask = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(mask)
    scale = side / 2

    def px(u: float, v: float) -> tuple[float, float]:
        return ((u + 1) * scale, (v + 1) * scale)

    for shape, coords, filled in ICONS[category]:
        value = 255 if filled else 0
        if shape == "ellipse":
            u, v, ru, rv = coords
            draw.ellipse((*px(u - ru, v - rv), *px(u + ru, v + rv)), fill=value)
        else:
            draw.polygon([px(u, v) for u, v in coords], fill=value)
    return mask


def render_scene(
    objects: list[dict], image_size: int, rng: np.random.Generator | None = None,
    noise_std: float = 0.0,
) -> np.ndarray:  # fmt: skip
    """The scene as an RGB uint8 array (image_size, image_size, 3) on white."""
    side = image_size * SUPERSAMPLE
    image = Image.new("RGB", (side, side), BACKGROUND)
    for o in objects:
        half = o["extent"] * side / 2
        mask = _mask(o["category"], half)
        x0, y0 = round(o["x"] * side - mask.width / 2), round(o["y"] * side - mask.height / 2)
        image.paste(COLOURS[o["colour"]], (x0, y0, x0 + mask.width, y0 + mask.height), mask)
    pixels = np.asarray(image.reduce(SUPERSAMPLE), dtype=np.float32)
    if noise_std > 0:
        if rng is None:
            raise ValueError("noise_std > 0 needs a random generator")
        pixels = pixels + rng.normal(0.0, noise_std, pixels.shape).astype(np.float32)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
