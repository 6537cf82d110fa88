"""Captions: a grammar with paraphrase variety (word order, synonyms, optional adjectives,
counts and agreement, spatial relations derived from the positions). Every caption it
writes is true of its scene."""

from __future__ import annotations

import random

from caplm.data.shapes.scene import position, relation, side_by_side
from caplm.data.shapes.settings import COUNT_WORDS
from caplm.data.text import tokenize

SYNONYMS = {  # the first word is the usual one; repeats weight the choice
    "circle": ("circle", "circle", "disc"),
    "small": ("small", "small", "little"),
    "large": ("large", "large", "big"),
    "in the middle": ("in the middle", "in the centre"),
}
MIN_WORDS, MAX_WORDS = 4, 20  # caption length in tokens, as the study's generators produce
CAPTION_TRIES = 20


def describe_scene(objects: list[dict], rng: random.Random, count: int) -> list[str]:
    """``count`` captions of the scene, different from each other where the grammar allows."""
    captions: list[str] = []
    for _ in range(count):
        caption = None
        for _ in range(CAPTION_TRIES):
            text = _caption(objects, rng)
            if MIN_WORDS <= len(tokenize(text)) <= MAX_WORDS:
                caption = text
                if text not in captions:
                    break
        # "there is" + a plain list fits the bounds for up to MAX_OBJECTS objects
        captions.append(
            caption or _there(_join([_noun_phrase(g, rng, size=False) for g in _groups(objects)]))
        )
    return captions


def _groups(objects: list[dict]) -> list[list[dict]]:
    """Objects of the same colour and shape together, in scene order ("two red circles")."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for o in objects:
        groups.setdefault((o["colour"], o["shape"]), []).append(o)
    return list(groups.values())


def _caption(objects: list[dict], rng: random.Random) -> str:
    groups = _groups(objects)
    rng.shuffle(groups)  # word order varies: "a red circle and a blue square" or the reverse
    singles = [g[0] for g in groups if len(g) == 1]  # only these can be named in a relation
    pairs = [(a, b) for a in singles for b in singles if a is not b]
    form = rng.choice(["list"] * 3 + ["count"] + (["relation"] * 3 + ["clause"] if pairs else []))

    if form == "clause":  # a sentence about two objects: "the red circle is above the blue star"
        a, b = rng.choice(pairs)
        subject, where = _noun_phrase([a], rng, article=False), _relation_words(a, b, rng)
        return f"the {subject} is {where} the {_noun_phrase([b], rng, article=False)}"
    background = True
    if form == "relation":
        a, b = rng.choice(pairs)
        phrase = f"{_noun_phrase([a], rng)} {_relation_words(a, b, rng)} {_noun_phrase([b], rng)}"
        rest = [_noun_phrase(g, rng) for g in groups if g[0] is not a and g[0] is not b]
        body = _join([phrase, *rest] if rng.random() < 0.5 else [*rest, phrase])
    elif form == "count" and len(objects) == 1:
        body = "a single " + _noun_phrase(groups[0], rng, article=False)
    elif form == "count" and len(groups) > 1:  # one group is already counted: "two red circles"
        things = rng.choice(("shapes", "shapes", "objects"))
        body = f"{COUNT_WORDS[len(objects)]} {things} including {_noun_phrase(rng.choice(groups), rng)}"
    else:  # a list of every object, some with their place in the picture
        parts = []
        place_p = 0.5 if len(objects) == 1 else 0.2
        for group in groups:
            if len(group) > 1 and len({o["size"] for o in group}) > 1 and rng.random() < 0.5:
                # "a large red circle and a small red circle" instead of "two red circles"
                parts += [_noun_phrase([o], rng, size=True) for o in group]
                continue
            part = _noun_phrase(group, rng)
            where = position(group[0]) if len(group) == 1 else None
            if where and rng.random() < place_p:
                part += " " + _synonym(where, rng)
                background = False  # "... on the left on a white background" reads badly
            parts.append(part)
        body = _join(parts)
    return _frame(body, rng, background)


def _noun_phrase(
    group: list[dict], rng: random.Random, article: bool = True, size: bool | None = None
) -> str:
    """E.g. "a large red circle", "an orange star", "two blue squares", "red circle".

    ``size``: True names the size, False leaves it out, None decides at random (only when
    the group's objects share a size, so it is true of all of them).
    """
    first = group[0]
    sizes = {o["size"] for o in group}
    if size is None:
        size = len(sizes) == 1 and rng.random() < 0.5
    words = [_synonym(first["size"], rng)] if size else []
    noun = _synonym(first["shape"], rng)
    words += [first["colour"], noun if len(group) == 1 else plural(noun)]
    if len(group) > 1:
        words.insert(0, COUNT_WORDS[len(group)])
    elif article:
        words.insert(0, "an" if words[0][0] in "aeiou" else "a")
    return " ".join(words)


def _relation_words(a: dict, b: dict, rng: random.Random) -> str:
    where = relation(a, b)
    if where in ("left", "right") and side_by_side(a, b) and rng.random() < 0.3:
        return rng.choice(("next to", "beside"))
    return {"left": "to the left of", "right": "to the right of"}.get(where, where)


def _frame(body: str, rng: random.Random, background: bool) -> str:
    """An opening ("there is", "a picture of", ...) and maybe the background, around ``body``."""
    r = rng.random()
    if r < 0.35:
        text = body
    elif r < 0.6:
        text = _there(body)
    else:
        opening = rng.choice(("an image", "a picture", "a drawing"))
        text = f"{opening} {rng.choice(('of', 'showing', 'with'))} {body}"
    if background and rng.random() < 0.25:
        text += f" on a {rng.choice(('white', 'light', 'plain'))} background"
    return text


def _there(body: str) -> str:
    """ "there is a ..." / "there are two ...": the verb agrees with the first noun phrase."""
    return ("there are " if body.split()[0] in COUNT_WORDS else "there is ") + body


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _synonym(word: str, rng: random.Random) -> str:
    return rng.choice(SYNONYMS.get(word, (word,)))


def plural(noun: str) -> str:
    return noun + ("es" if noun.endswith("s") else "s")
