"""Scenes: objects placed without overlap, and the spatial facts captions may state.

A scene is a list of objects, each a dict with ``shape``, ``colour``, ``size`` ("small" or
"large"), ``x`` and ``y`` (the centre, as fractions of the image side, y pointing down) and
``extent`` (the object's width and height, as a fraction of the image side).
"""

from __future__ import annotations

import random

from caplm.data.shapes.settings import COLOURS, SHAPES, SIZES

MARGIN = 0.03  # space kept between an object and the image border
GAP = 0.05  # space kept between two objects' boxes, so each stays identifiable
REPEAT_P = 0.2  # chance an object repeats the previous one's colour and shape ("two red circles")
PLACE_TRIES = 50


def sample_scene(rng: random.Random, min_objects: int, max_objects: int) -> list[dict]:
    """Objects whose boxes do not overlap; a scene where one does not fit is drawn again."""
    count = rng.randint(min_objects, max_objects)
    while True:
        objects: list[dict] = []
        for _ in range(count):
            if objects and rng.random() < REPEAT_P:
                colour, shape = objects[-1]["colour"], objects[-1]["shape"]
            else:
                colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
            size = rng.choice(list(SIZES))
            extent = round(rng.uniform(*SIZES[size]), 3)
            spot = _place(rng, extent, objects)
            if spot is None:
                break
            x, y = spot
            objects.append(dict(shape=shape, colour=colour, size=size, x=x, y=y, extent=extent))
        else:
            return objects


def _place(rng: random.Random, extent: float, objects: list[dict]) -> tuple[float, float] | None:
    low, high = MARGIN + extent / 2, 1 - MARGIN - extent / 2
    for _ in range(PLACE_TRIES):
        x, y = round(rng.uniform(low, high), 3), round(rng.uniform(low, high), 3)
        if all(_apart(x, y, extent, other) for other in objects):
            return x, y
    return None


def _apart(x: float, y: float, extent: float, other: dict) -> bool:
    reach = (extent + other["extent"]) / 2 + GAP
    return abs(x - other["x"]) >= reach or abs(y - other["y"]) >= reach


def relation(a: dict, b: dict) -> str:
    """Where ``a`` is relative to ``b``: "left", "right", "above" or "below".

    The axis is the one the centres are further apart on. Boxes never overlap, so along that
    axis ``a``'s box lies wholly beyond ``b``'s, with a gap: the relation is clearly true.
    """
    dx, dy = a["x"] - b["x"], a["y"] - b["y"]
    if abs(dx) >= abs(dy):
        return "left" if dx < 0 else "right"
    return "above" if dy < 0 else "below"


def side_by_side(a: dict, b: dict) -> bool:
    """True when the two are roughly in one row, so "next to" reads naturally."""
    return abs(a["y"] - b["y"]) < abs(a["x"] - b["x"]) / 2


def _third(v: float) -> int | None:
    """Which third of the image a centre coordinate is in; None near a boundary."""
    if v < 0.37:
        return 0
    if 0.43 < v < 0.57:
        return 1
    if v > 0.63:
        return 2
    return None


POSITIONS = {  # (column, row) third -> phrase
    (0, 0): "in the top left corner",
    (1, 0): "at the top",
    (2, 0): "in the top right corner",
    (0, 1): "on the left",
    (1, 1): "in the middle",
    (2, 1): "on the right",
    (0, 2): "in the bottom left corner",
    (1, 2): "at the bottom",
    (2, 2): "in the bottom right corner",
}


def position(obj: dict) -> str | None:
    column, row = _third(obj["x"]), _third(obj["y"])
    if column is None or row is None:
        return None
    return POSITIONS[column, row]
