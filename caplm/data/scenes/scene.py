"""Scenes: objects in the cells of a 3 x 3 grid, and every fact a caption may state about them.

A scene is a list of objects, each a dict with ``category``, ``colour``, ``size`` ("small",
"medium" or "large"), ``col`` and ``row`` (its grid cell, 0-2 from the left and from the top),
``x`` and ``y`` (its centre, as fractions of the image side, y pointing down) and ``extent``
(its box's side, as a fraction of the image side). At most one object sits in a cell and a
box never leaves its cell (with a gap to the cell's border), so boxes never overlap and
"left of", "above" and the rest are unambiguous: they are read off the cells.

The predicates here (``holds``, ``between``, ``arranged``, ``in_region``, ``matches``) are
the one definition of what is true; the grammar writes only what they allow, and the caption
checker (``truth``) judges generated captions by them.
"""

from __future__ import annotations

import random
from itertools import pairwise

from caplm.data.scenes.lexicon import (
    CATEGORIES,
    COLOURS,
    GRID,
    REGIONS,
    SIZE_ORDER,
    SIZES,
)

GAP = 0.02  # space kept between a box and its cell's border (so 0.04 between two boxes)
REPEAT_P = 0.25  # chance an object repeats the previous one's category and colour
RELATION_TYPES = ("left", "right", "above", "below", "directly_above", "directly_below",
                  "beside", "level", "aligned", "near", "far", "diagonal", "larger", "smaller",
                  "same_size", "same_colour", "diff_colour")  # fmt: skip
ARRANGEMENT_TYPES = ("row", "row_adjacent", "column", "diagonal", "same_colour", "diff_colour",
                     "same_size", "diff_size", "same_kind", "diff_kind")  # fmt: skip


def sample_scene(rng: random.Random, min_objects: int, max_objects: int) -> list[dict]:
    """``min_objects``-``max_objects`` objects in distinct cells, in reading order."""
    count = rng.randint(min_objects, max_objects)
    cells = sorted(rng.sample(range(GRID * GRID), count))
    objects: list[dict] = []
    colours, sizes = list(COLOURS), list(SIZES)
    for cell in cells:
        if objects and rng.random() < REPEAT_P:
            category, colour = objects[-1]["category"], objects[-1]["colour"]
        else:
            category, colour = rng.choice(CATEGORIES), rng.choice(colours)
        size = rng.choice(sizes)
        extent = round(rng.uniform(*SIZES[size]), 3)
        row, col = divmod(cell, GRID)
        room = max(0.0, (1 / GRID - extent) / 2 - GAP)  # how far the centre may move
        x = round((col + 0.5) / GRID + rng.uniform(-room, room), 3)
        y = round((row + 0.5) / GRID + rng.uniform(-room, room), 3)
        objects.append(dict(category=category, colour=colour, size=size, col=col, row=row,
                            x=x, y=y, extent=extent))  # fmt: skip
    return objects


# --------------------------------------------------------------------------- facts
def holds(relation: str, a: dict, b: dict) -> bool:
    """Whether ``a`` stands in ``relation`` to ``b`` (see ``RELATION_TYPES``).

    "left": a's column is left of b's and they are no further apart vertically than
    horizontally ("above" likewise); "directly_above": same column; "beside": same row,
    neighbouring columns; "level"/"aligned": same row/column; "near": neighbouring cells
    (diagonals too); "far": two cells apart; "diagonal": on one diagonal; "larger" and
    "smaller" compare the size classes.
    """
    if a is b:
        return False
    dc, dr = b["col"] - a["col"], b["row"] - a["row"]  # > 0: b is right of / below a
    if relation == "left":
        return dc > 0 and abs(dr) <= dc
    if relation == "right":
        return dc < 0 and abs(dr) <= -dc
    if relation == "above":
        return dr > 0 and abs(dc) <= dr
    if relation == "below":
        return dr < 0 and abs(dc) <= -dr
    if relation == "directly_above":
        return dc == 0 and dr > 0
    if relation == "directly_below":
        return dc == 0 and dr < 0
    if relation == "beside":
        return dr == 0 and abs(dc) == 1
    if relation == "level":
        return dr == 0
    if relation == "aligned":
        return dc == 0
    if relation == "near":
        return max(abs(dc), abs(dr)) == 1
    if relation == "far":
        return max(abs(dc), abs(dr)) == 2
    if relation == "diagonal":
        return abs(dc) == abs(dr) != 0
    if relation == "larger":
        return SIZE_ORDER[a["size"]] > SIZE_ORDER[b["size"]]
    if relation == "smaller":
        return SIZE_ORDER[a["size"]] < SIZE_ORDER[b["size"]]
    if relation == "same_size":
        return a["size"] == b["size"]
    if relation == "same_colour":
        return a["colour"] == b["colour"]
    if relation == "diff_colour":
        return a["colour"] != b["colour"]
    if relation == "left_to_right":  # a sequence "from left to right"
        return dc > 0
    if relation == "top_to_bottom":
        return dr > 0
    raise ValueError(f"unknown relation {relation!r}")


def between(a: dict, b: dict, c: dict) -> bool:
    """``a`` between ``b`` and ``c``: the three in one row (or column), ``a`` in the middle."""
    if len({id(a), id(b), id(c)}) < 3:
        return False
    if a["row"] == b["row"] == c["row"]:
        return min(b["col"], c["col"]) < a["col"] < max(b["col"], c["col"])
    if a["col"] == b["col"] == c["col"]:
        return min(b["row"], c["row"]) < a["row"] < max(b["row"], c["row"])
    return False


def arranged(arrangement: str, objects: list[dict]) -> bool:
    """Whether a set of (at least two) objects has the property (``ARRANGEMENT_TYPES``)."""
    if len(objects) < 2:
        return False
    cols, rows = [o["col"] for o in objects], [o["row"] for o in objects]
    if arrangement == "row":
        return len(set(rows)) == 1
    if arrangement == "row_adjacent":
        return len(set(rows)) == 1 and max(cols) - min(cols) == len(objects) - 1
    if arrangement == "column":
        return len(set(cols)) == 1
    if arrangement == "diagonal":
        ordered = sorted(objects, key=lambda o: o["col"])
        steps = {(b["col"] - a["col"], b["row"] - a["row"]) for a, b in pairwise(ordered)}
        signs = {dr > 0 for _, dr in steps}
        return all(dc == abs(dr) != 0 for dc, dr in steps) and len(signs) == 1
    key = {"colour": "colour", "size": "size", "kind": "category"}[arrangement.split("_", 1)[1]]
    values = [o[key] for o in objects]
    if arrangement.startswith("same_"):
        return len(set(values)) == 1
    return len(set(values)) == len(values)  # "different": no two alike


def in_region(obj: dict, region: str) -> bool:
    col, row = REGIONS[region]
    return (col is None or obj["col"] == col) and (row is None or obj["row"] == row)


def regions(obj: dict) -> list[str]:
    """Every region the object is in (e.g. "top_left", "top", "left")."""
    return [r for r in REGIONS if in_region(obj, r)]


def matches(
    objects: list[dict],
    category: str | None = None,
    colour: str | None = None,
    size: str | None = None,
    region: str | None = None,
) -> list[dict]:
    """The objects that have every attribute given (None: any)."""
    return [
        o
        for o in objects
        if (category is None or o["category"] == category)
        and (colour is None or o["colour"] == colour)
        and (size is None or o["size"] == size)
        and (region is None or in_region(o, region))
    ]
