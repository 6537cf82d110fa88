"""Captions of a scene, true by construction.

A caption is a *body* (what is said about the objects) in a *frame* (an opening such as
"there is", "a simple drawing of", "in this picture we can see", and maybe an always-true
ending such as "on a white background"). Bodies:

- ``list``: noun phrases of some or all objects ("a large crimson star and two blue rings"),
  maybe with a place, a total count ("four shapes namely ..."), or "and nothing else";
- ``relation``: two objects and a true relation, reduced ("a star above a ring"), as a clause
  ("the star sits to the left of the ring") or fronted ("above the ring there is a star");
- ``chain``: nested relative clauses ("a star that is above a ring which lies left of a moon");
- ``centre``: a centre-embedded relative clause ("the star that is above the ring is red");
- ``predicate``: attributes and places as predicates ("the star is red and the ring is tiny");
- ``between``, ``order`` ("from left to right ..."), ``arrangement`` ("three shapes in a row"),
  ``count`` ("there are four shapes two red ones ..." with exact counts, "but no green shapes").

Noun phrases say only what is true of their referent; a definite one ("the star") is used only
when its description picks out one object (or exactly the group it counts); counts are exact;
verbs and "there is/are" agree with their subject. What "true" means is ``scene``'s predicates,
and ``truth`` reads captions the way this grammar writes them.
"""

from __future__ import annotations

import random
import re
from itertools import pairwise

import caplm.data.scenes.lexicon as L
from caplm.data.scenes.scene import arranged, between, holds, matches, regions

MIN_WORDS, MAX_WORDS = 8, 25  # caption length in words
CAPTION_TRIES = 30
#: Weight of each relation type when several are true of a pair (the plain four dominate).
RELATION_WEIGHTS = {"left": 1.0, "right": 1.0, "above": 1.0, "below": 1.0,
                    "directly_above": 0.3, "directly_below": 0.3, "beside": 0.4, "level": 0.12,
                    "aligned": 0.1, "near": 0.2, "far": 0.12, "diagonal": 0.12, "larger": 0.3,
                    "smaller": 0.3, "same_size": 0.08, "same_colour": 0.1,
                    "diff_colour": 0.04}  # fmt: skip
COMPARISONS = ("larger", "smaller", "same_size", "same_colour", "diff_colour")
BODY_WEIGHTS = {"list": 2.0, "relation": 2.4, "chain": 1.2, "centre": 0.8, "predicate": 1.0,
                "between": 3.0, "order": 0.5, "arrangement": 0.6, "count": 0.7}  # fmt: skip
#: Attribute sets for naming one object: (category named, colour, size) and weights.
SINGLE_DESCRIPTIONS = (
    ((True, True, False), 0.42), ((True, True, True), 0.25), ((True, False, False), 0.12),
    ((True, False, True), 0.1), ((False, True, False), 0.05), ((False, True, True), 0.04),
    ((False, False, True), 0.02),
)  # fmt: skip
GROUP_DESCRIPTIONS = (((True, True, False), 0.6), ((True, True, True), 0.3),
                      ((True, False, False), 0.07), ((False, True, False), 0.03))  # fmt: skip


class Described:
    """A noun phrase's attributes: category (None: a generic noun), colour and size."""

    __slots__ = ("category", "colour", "size")

    def __init__(self, category, colour, size):
        self.category, self.colour, self.size = category, colour, size

    def referents(self, objects):
        return matches(objects, self.category, self.colour, self.size)


class Scene:
    """Facts about one scene, computed once for all its captions."""

    def __init__(self, objects: list[dict]):
        self.objects = objects
        groups: dict[tuple[str, str], list[dict]] = {}
        for o in objects:
            groups.setdefault((o["category"], o["colour"]), []).append(o)
        self.refs = [tuple(g) for g in groups.values()]  # referents: groups of one kind
        self.singles = [r for r in self.refs if len(r) == 1]
        self.relations = {}  # (i, j) -> relation types true of every member pair
        for i, a in enumerate(self.refs):
            for j, b in enumerate(self.refs):
                if i != j:
                    types = [t for t in RELATION_WEIGHTS
                             if all(holds(t, x, y) for x in a for y in b)]  # fmt: skip
                    if types:
                        self.relations[i, j] = types
        self._descriptions: dict[int, list] = {}
        self.arrangements: list | None = None  # computed when first needed

    def descriptions(self, ref: tuple) -> list:
        """(description, weight, says colour, says size, matches only ``ref``) for each way
        of naming the referent (computed once)."""
        key = id(ref)
        if key not in self._descriptions:
            first = ref[0]
            options = SINGLE_DESCRIPTIONS if len(ref) == 1 else GROUP_DESCRIPTIONS
            out = []
            for (cat, col, size), w in options:
                if size and len({o["size"] for o in ref}) > 1:
                    continue
                d = Described(first["category"] if cat else None,
                              first["colour"] if col else None,
                              first["size"] if size else None)  # fmt: skip
                out.append((d, w, col, size, len(d.referents(self.objects)) == len(ref)))
            self._descriptions[key] = out
        return self._descriptions[key]


# --------------------------------------------------------------------------- helpers
def _weighted(rng: random.Random, options):
    """One of ``(value, weight)`` options."""
    total = sum(w for _, w in options)
    r = rng.random() * total
    for value, w in options:
        r -= w
        if r < 0:
            return value
    return options[-1][0]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _join(parts: list[str], rng: random.Random) -> str:
    """Noun phrases joined without commas: "x and y", "x as well as y and z"."""
    text = parts[0]
    for i, part in enumerate(parts[1:], 1):
        conj = "and" if i == len(parts) - 1 else L.CONJUNCTIONS.pick(rng)
        text += f" {conj} {part}"
    return text


def _colour_word(colour: str, rng: random.Random, intensify: float = 0.1) -> str:
    if rng.random() < intensify:
        return f"{L.COLOUR_INTENSIFIERS[colour].pick(rng)} {colour}"
    return L.COLOUR_WORDS[colour].pick(rng)


def _size_word(size: str, rng: random.Random) -> str:
    if size in L.SIZE_DEGREE_WORDS and rng.random() < 0.15:
        return f"{L.SIZE_DEGREE.pick(rng)} {rng.choice(L.SIZE_DEGREE_WORDS[size])}"
    return L.SIZE_WORDS[size].pick(rng)


def colour_predicate(colour: str, rng: random.Random) -> str:
    if rng.random() < 0.18:
        return L.COLOUR_SIMILES[colour].pick(rng)
    return L.COLOUR_PRED.pick(rng).format(c=_colour_word(colour, rng))


def size_predicate(size: str, rng: random.Random) -> str:
    if rng.random() < 0.15:
        return L.SIZE_POST[size].pick(rng)
    return _size_word(size, rng)


def _verb(rng: random.Random, plural: bool, copula: bool = False) -> str:
    verb = (L.COPULAS if copula else L.VERBS).pick(rng)[plural]
    if rng.random() < 0.08:
        verb += " " + L.ADVERBS.pick(rng)
    return verb


def _relation(rng: random.Random, types: list[str]) -> tuple[str, str]:
    """One of the true relation types, and a phrase for it."""
    kind = _weighted(rng, [(t, RELATION_WEIGHTS[t]) for t in types])
    return kind, L.RELATIONS[kind].pick(rng)


def _rel_verb(rng: random.Random, plural: bool, relation: str) -> str:
    """The verb before a relation: a copula for sizes and colours ("is bigger than")."""
    return _verb(rng, plural, copula=relation in COMPARISONS)


# --------------------------------------------------------------------------- noun phrases
def describe(
    sc: Scene,
    rng: random.Random,
    ref: tuple,
    definite: bool = False,
    avoid: str | None = None,
    exact: bool = False,
) -> Described | None:
    """Attributes naming ``ref`` (a group of one kind), or None when none fits.

    A group's description must match exactly its members (the count says how many), and so
    must a definite single's, or any one's with ``exact`` (where what is said of the
    referents together, such as "in a row", must not be true of another object instead);
    ``avoid`` ("colour", "size") leaves that out (it is said as a predicate instead).
    """
    strict = len(ref) > 1 or definite or exact
    allowed = [
        (d, w)
        for d, w, col, size, only in sc.descriptions(ref)
        if not ((avoid == "colour" and col) or (avoid == "size" and size) or (strict and not only))
    ]
    return _weighted(rng, allowed) if allowed else None


def noun_phrase(
    sc: Scene,
    rng: random.Random,
    d: Described,
    count: int,
    definite: bool = False,
    post: bool = True,
) -> str:
    """The words for a description: determiner or count, size, colour, noun, post-modifier.

    ``count`` is how many objects the description matches (1: singular). A post-modifier
    ("in crimson", "with five points", "of medium size") is added only when ``post``.
    """
    plural = count > 1
    words: list[str] = []
    post_words: str | None = None
    colour_post = d.colour is not None and post and rng.random() < 0.2
    size_post = d.size is not None and post and not colour_post and rng.random() < 0.07
    if d.size is not None and not size_post:
        words.append(_size_word(d.size, rng))
    if d.colour is not None and not colour_post:
        words.append(_colour_word(d.colour, rng))
    category = d.category
    descriptor = None
    if category is not None and rng.random() < 0.05:
        descriptor = L.DESCRIPTORS_PRE[category].pick(rng)
    if category is not None and rng.random() < 0.05:  # "a heart shaped icon"
        words.append(L.SHAPED[category].pick(rng))
        category = None
    if category is not None:
        noun = L.NOUNS[category].pick(rng)
    else:
        noun = L.GENERIC_NOUNS.pick(rng)
        while d.category is not None and noun[0] in ("shape", "form"):  # not "star shaped shape"
            noun = L.GENERIC_NOUNS.pick(rng)
    if descriptor and not set(descriptor.split()) & set(noun[plural].split()):
        words.insert(len(words) - (category is None), descriptor)  # not "upward upward arrow"
    words.append(noun[plural])
    if colour_post:
        if rng.random() < 0.4:
            post_words = L.COLOUR_SIMILES[d.colour].pick(rng)
        else:
            post_words = L.COLOUR_POST.pick(rng).format(c=_colour_word(d.colour, rng, 0.05))
    elif size_post:
        post_words = L.SIZE_POST[d.size].pick(rng)
    elif d.category is not None and post and rng.random() < 0.09:
        if rng.random() < 0.45:
            post_words = L.SHAPE_SIMILES[d.category].pick(rng)
        else:
            post_words = L.DESCRIPTORS_POST[d.category].pick(rng)
    if definite:
        det = L.DEFINITE_COUNTS[count].pick(rng) if plural else "the"
    elif plural:
        det = L.COUNT_FORMS[count].pick(rng)
    elif count == 1 and rng.random() < 0.08 and len(d.referents(sc.objects)) == 1:
        det = L.COUNT_FORMS[1].pick(rng)
    else:
        det = _article(words[0])
    text = f"{det} {' '.join(words)}"
    return f"{text} {post_words}" if post_words else text


def ref_phrase(
    sc: Scene,
    rng: random.Random,
    ref: tuple,
    definite: bool = False,
    post: bool = True,
    avoid: str | None = None,
    exact: bool = False,
) -> str | None:
    """A noun phrase for a referent (None when it cannot be as definite or exact as asked)."""
    d = describe(sc, rng, ref, definite, avoid, exact)
    if d is None:
        return None
    return noun_phrase(sc, rng, d, len(ref), definite, post)


def _any_phrase(sc: Scene, rng: random.Random, ref: tuple, definite_p: float, **kw) -> str:
    """Definite with probability ``definite_p`` where possible, else indefinite."""
    if rng.random() < definite_p:
        text = ref_phrase(sc, rng, ref, definite=True, **kw)
        if text is not None:
            return text
    return ref_phrase(sc, rng, ref, **kw)


def _place(rng: random.Random, ref: tuple) -> str | None:
    """A place true of every member ("in the top left corner", "on the left")."""
    shared = set(regions(ref[0]))
    for o in ref[1:]:
        shared &= set(regions(o))
    if not shared:
        return None
    region = rng.choice(sorted(shared, key=list(L.REGIONS).index))
    return L.POSITIONS[region].pick(rng)


def _relation_pairs(sc: Scene) -> list[tuple[int, int]]:
    return list(sc.relations)


# --------------------------------------------------------------------------- bodies
# Each returns (text, kind, plural): kind "np" (starts with a noun phrase: can take a frame;
# plural: that phrase's number), "clause" (a sentence) or "full" (complete as it is).


def body_list(sc: Scene, rng: random.Random):
    refs = list(sc.refs)
    rng.shuffle(refs)
    if len(refs) > 1 and rng.random() < 0.35:
        refs = refs[: rng.randint(1, len(refs) - 1)]
    complete = len(refs) == len(sc.refs)
    parts = []
    for ref in refs:
        text = ref_phrase(sc, rng, ref)
        if rng.random() < 0.22:
            place = _place(rng, ref)
            if place:
                text += " " + place
        parts.append(text)
    body = _join(parts, rng)
    plural = len(refs[0]) > 1
    total = len(sc.objects)
    if total > 1 and rng.random() < 0.2:
        link = (rng.choice(("namely", "consisting of", "made up of")) if complete
                else rng.choice(("including", "among them", "for instance")))  # fmt: skip
        body = f"{L.COUNT_FORMS[total][0]} {L.GENERIC_NOUNS.pick(rng)[1]} {link} {body}"
        plural = True
    elif complete and rng.random() < 0.15:
        if total == 1:
            ending = L.EXHAUSTIVE_ONE.pick(rng) if rng.random() < 0.5 else L.EXHAUSTIVE.pick(rng)
        elif len(sc.refs) == 1:
            ending = L.EXHAUSTIVE_MANY.pick(rng) if rng.random() < 0.5 else L.EXHAUSTIVE.pick(rng)
        else:
            ending = L.EXHAUSTIVE.pick(rng)
        body += " " + ending
    return body, "np", plural


def body_relation(sc: Scene, rng: random.Random):
    pairs = _relation_pairs(sc)
    if not pairs:
        return None
    i, j = rng.choice(pairs)
    a, b = sc.refs[i], sc.refs[j]
    kind, rel = _relation(rng, sc.relations[i, j])
    form = rng.random()
    if form >= 0.85 and kind in COMPARISONS:  # not "bigger than the ring there is a star"
        form = 0.6
    if form < 0.4:  # reduced, maybe after other objects: "a moon and a star above a ring"
        subject, obj = ref_phrase(sc, rng, a), _any_phrase(sc, rng, b, 0.3)
        text = f"{subject} {rel} {obj}"
        others = [r for k, r in enumerate(sc.refs) if k not in (i, j)]
        if others and rng.random() < 0.4:
            rest = [ref_phrase(sc, rng, r) for r in others[: rng.randint(1, len(others))]]
            return f"{_join(rest, rng)} and {text}", "np", len(others[0]) > 1
        return text, "np", len(a) > 1
    if form < 0.85:  # a clause: "the star sits to the left of the ring"
        subject = _any_phrase(sc, rng, a, 0.7)
        verb = _rel_verb(rng, len(a) > 1, kind)
        text = f"{subject} {verb} {rel} {_any_phrase(sc, rng, b, 0.6)}"
        rest = [p for p in pairs if p[0] not in (i, j) or p[1] not in (i, j)]
        if rest and rng.random() < 0.3:
            k, m = rng.choice(rest)
            c, e = sc.refs[k], sc.refs[m]
            kind2, rel2 = _relation(rng, sc.relations[k, m])
            join = L.CLAUSE_JOINS.pick(rng)
            second = _any_phrase(sc, rng, c, 0.7, post=False)
            text += (f" {join} {second} {_rel_verb(rng, len(c) > 1, kind2)} {rel2} "
                     f"{_any_phrase(sc, rng, e, 0.6)}")  # fmt: skip
        return text, "clause", None
    # fronted: "above the blue ring there is a red star"
    obj = _any_phrase(sc, rng, b, 0.6)
    subject = ref_phrase(sc, rng, a)
    if rng.random() < 0.6:
        link = L.AGREEING_OPENERS[0].format(v="are" if len(a) > 1 else "is")
    else:
        link = rng.choice(("we can see", "we see", "you can see", "one can see", "we find",
                           "you will find"))  # fmt: skip
    return f"{rel} {obj} {link} {subject}", "full", None


def _walk(sc: Scene, rng: random.Random, length: int) -> list[int]:
    """Referents r1, r2, ... each in some relation to the next, none twice."""
    path = [rng.randrange(len(sc.refs))]
    while len(path) < length:
        nxt = [j for (i, j) in sc.relations if i == path[-1] and j not in path]
        if not nxt:
            break
        path.append(rng.choice(nxt))
    return path


def body_chain(sc: Scene, rng: random.Random):
    if len(sc.refs) < 2:
        return None
    path = _walk(sc, rng, rng.randint(2, min(4, len(sc.refs))))
    if len(path) < 2:
        return None
    refs = [sc.refs[k] for k in path]
    text = ref_phrase(sc, rng, refs[0], post=False)
    for n, (i, j) in enumerate(pairwise(path)):
        kind, rel = _relation(rng, sc.relations[i, j])
        if n == 0 and rng.random() < 0.35 and kind not in COMPARISONS:
            text += f" {rel}"
        else:
            text += f" {L.PRONOUNS.pick(rng)} {_rel_verb(rng, len(sc.refs[i]) > 1, kind)} {rel}"
        text += " " + ref_phrase(sc, rng, sc.refs[j], post=False)
    return text, "np", len(refs[0]) > 1


def _predicate(sc: Scene, rng: random.Random, ref: tuple, said: Described, exclude=()):
    """Something true of ``ref`` that its description ``said`` does not already say:
    (kind, text), kind "colour", "size", "place" or "relation"."""
    options = []
    if said.colour is None:
        options.append(("colour", 1.0))
    if said.size is None and len({o["size"] for o in ref}) == 1:
        options.append(("size", 0.8))
    if _place(rng, ref):
        options.append(("place", 0.8))
    i = sc.refs.index(ref)
    targets = [j for (k, j) in sc.relations if k == i and j not in exclude]
    if targets:
        options.append(("relation", 1.0))
    if not options:
        return None
    kind = _weighted(rng, options)
    plural = len(ref) > 1
    if kind == "colour":
        return kind, f"{_verb(rng, plural, copula=True)} {colour_predicate(ref[0]['colour'], rng)}"
    if kind == "size":
        return kind, f"{_verb(rng, plural, copula=True)} {size_predicate(ref[0]['size'], rng)}"
    if kind == "place":
        return kind, f"{_verb(rng, plural)} {_place(rng, ref)}"
    j = rng.choice(targets)
    relation, rel = _relation(rng, sc.relations[i, j])
    obj = _any_phrase(sc, rng, sc.refs[j], 0.6, post=False)
    return kind, f"{_rel_verb(rng, plural, relation)} {rel} {obj}"


def body_centre(sc: Scene, rng: random.Random):
    """ "the star that is above the ring is red": the head is named without what the
    predicate says, and picks out its referent."""
    pairs = _relation_pairs(sc)
    if not pairs:
        return None
    i, j = rng.choice(pairs)
    a = sc.refs[i]
    avoid = rng.choice(("colour", "size", None))
    d = describe(sc, rng, a, definite=True, avoid=avoid)
    if d is None:
        return None
    head = noun_phrase(sc, rng, d, len(a), definite=True, post=False)
    relation, rel = _relation(rng, sc.relations[i, j])
    obj = _any_phrase(sc, rng, sc.refs[j], 0.6, post=False)
    pred = _predicate(sc, rng, a, d, exclude=(j,))
    if pred is None:
        return None
    inner = f"{L.PRONOUNS.pick(rng)} {_rel_verb(rng, len(a) > 1, relation)} {rel} {obj}"
    return f"{head} {inner} {pred[1]}", "clause", None


def body_predicate(sc: Scene, rng: random.Random):
    refs = list(sc.refs)
    rng.shuffle(refs)
    a = refs[0]
    if len(refs) > 1 and rng.random() < 0.2:  # "the star and the ring are both red"
        b = refs[1]
        shared = [k for k in ("colour", "size") if len({o[k] for o in (*a, *b)}) == 1]
        if shared:
            key = rng.choice(shared)
            pa = ref_phrase(sc, rng, a, definite=True, post=False, avoid=key)
            pb = ref_phrase(sc, rng, b, definite=True, post=False, avoid=key)
            if pa and pb:
                value = a[0][key]
                pred = (
                    colour_predicate(value, rng) if key == "colour" else size_predicate(value, rng)
                )
                both = "both " if len(a) == len(b) == 1 and rng.random() < 0.5 else ""
                return f"{pa} and {pb} {_verb(rng, True, copula=True)} {both}{pred}", "clause", None
    clauses = []
    for ref in refs[: 1 if len(refs) == 1 or rng.random() < 0.5 else 2]:
        d = describe(sc, rng, ref, definite=True, avoid=rng.choice(("colour", "size", None)))
        if d is None:
            continue
        first = _predicate(sc, rng, ref, d)
        if first is None:
            continue
        text = f"{noun_phrase(sc, rng, d, len(ref), definite=True, post=False)} {first[1]}"
        if first[0] != "relation" and rng.random() < 0.35:  # "... is red and sits on the left"
            second = _predicate(sc, rng, ref, d)
            if second is not None and second[0] not in (first[0], "relation"):
                text += f" and {second[1]}"
        clauses.append(text)
    if not clauses:
        return None
    return f" {L.CLAUSE_JOINS.pick(rng)} ".join(clauses), "clause", None


def body_between(sc: Scene, rng: random.Random):
    triples = [(a, b, c) for a in sc.singles for b in sc.singles for c in sc.singles
               if b is not c and between(a[0], b[0], c[0])]  # fmt: skip
    if not triples:
        return None
    a, b, c = rng.choice(triples)
    word = L.BETWEEN.pick(rng)
    pb, pc = _any_phrase(sc, rng, b, 0.5, post=False), _any_phrase(sc, rng, c, 0.5, post=False)
    if rng.random() < 0.5:
        return f"{ref_phrase(sc, rng, a, post=False)} {word} {pb} and {pc}", "np", False
    subject = _any_phrase(sc, rng, a, 0.7, post=False)
    return f"{subject} {_verb(rng, False)} {word} {pb} and {pc}", "clause", None


def body_order(sc: Scene, rng: random.Random):
    axis = rng.choice(("left_to_right", "top_to_bottom"))
    key = "col" if axis == "left_to_right" else "row"
    by_line: dict[int, tuple] = {}
    for ref in rng.sample(sc.singles, len(sc.singles)):
        by_line.setdefault(ref[0][key], ref)  # one object per column (row)
    refs = sorted(by_line.values(), key=lambda r: r[0][key])
    if len(refs) < 2:
        return None
    if len(refs) > 2 and rng.random() < 0.3:
        refs = sorted(rng.sample(refs, 2), key=lambda r: r[0][key])
    phrases = [ref_phrase(sc, rng, r, post=False) for r in refs]
    order = L.ORDERS[axis].pick(rng)
    if len(phrases) == 2 and rng.random() < 0.35:  # "a red star and a blue ring from left to right"
        return f"{phrases[0]} and {phrases[1]} {order}", "np", False
    text = phrases[0]
    for n, p in enumerate(phrases[1:], 1):
        link = L.SEQUENCE_LAST if n == len(phrases) - 1 and n > 1 else L.SEQUENCE
        text += f" {link.pick(rng)} {p}"
    opener = rng.random()
    if opener < 0.4:
        text = f"there is {text}"
    elif opener < 0.7:
        text = f"{rng.choice(('we see', 'we can see', 'you can see', 'we have'))} {text}"
    return f"{order} {text}", "full", None


def _arrangements(sc: Scene) -> list:
    """(target, true arrangement types): every object, one group, or two referents."""
    options = []
    if len(sc.objects) > 1:
        props = [p for p in L.ARRANGEMENTS if arranged(p, sc.objects)]
        if props:
            options.append(("all", props))
    for ref in sc.refs:
        if len(ref) > 1:
            props = [p for p in L.ARRANGEMENTS
                     if arranged(p, list(ref)) and p not in ("same_colour", "same_kind")]  # fmt: skip
            if props:
                options.append((ref, props))
    pairs = [(a, b) for a in sc.refs for b in sc.refs if a is not b]
    for a, b in pairs[:6]:
        props = [p for p in L.ARRANGEMENTS if arranged(p, [*a, *b])]
        if props:
            options.append(((a, b), props))
    return options


def body_arrangement(sc: Scene, rng: random.Random):
    if sc.arrangements is None:
        sc.arrangements = _arrangements(sc)
    if not sc.arrangements:
        return None
    target, props = rng.choice(sc.arrangements)
    prop = L.ARRANGEMENTS[rng.choice(props)].pick(rng)
    if target == "all":
        n = len(sc.objects)
        return f"{L.COUNT_FORMS[n].pick(rng)} {L.GENERIC_NOUNS.pick(rng)[1]} {prop}", "np", True
    if isinstance(target[0], dict):  # one group: "three blue rings in a row"
        return f"{ref_phrase(sc, rng, target, post=False)} {prop}", "np", True
    a, b = target
    first = ref_phrase(sc, rng, a, post=False, exact=True)
    second = ref_phrase(sc, rng, b, post=False, exact=True)
    if first is None or second is None:
        return None
    return f"{first} and {second} {prop}", "np", len(a) > 1


def body_count(sc: Scene, rng: random.Random):
    n = len(sc.objects)
    generic = L.GENERIC_NOUNS.pick(rng)
    total = f"{L.COUNT_FORMS[n][0] if rng.random() < 0.8 else L.COUNT_FORMS[n].pick(rng)}"
    head = f"{total} {generic[n > 1]}"
    if rng.random() < 0.3:
        head += " " + L.TOTAL_SUFFIX.pick(rng)
    tail = rng.random()
    if tail < 0.35 and n > 1:  # by colour: "two red ones": exact counts per colour
        by_colour: dict[str, int] = {}
        for o in sc.objects:
            by_colour[o["colour"]] = by_colour.get(o["colour"], 0) + 1
        parts = []
        for colour, k in by_colour.items():
            noun = L.GENERIC_NOUNS.pick(rng)[k > 1]
            word = L.COUNT_FORMS[k][0] if k > 1 else rng.choice(("one", "a single", "one"))
            parts.append(f"{word} {_colour_word(colour, rng, 0.0)} {noun}")
        body = (
            f"{head} {rng.choice(('namely', 'in other words', 'made up of'))} {_join(parts, rng)}"
        )
    elif tail < 0.6:
        ref = rng.choice(sc.refs)
        body = f"{head} {'including' if len(sc.refs) > 1 else 'namely'} {ref_phrase(sc, rng, ref)}"
    else:
        body = head
    if rng.random() < 0.4:  # what is not there: a colour or a category
        absent = [c for c in L.COLOURS if not matches(sc.objects, colour=c)]
        if rng.random() < 0.5 and absent:
            word = L.NONE_FORMS.pick(rng)
            noun = L.GENERIC_NOUNS.pick(rng)[word == "no"]
            body += f" but {word} {_colour_word(rng.choice(absent), rng, 0.0)} {noun}"
        else:
            missing = [c for c in L.CATEGORIES if not matches(sc.objects, category=c)]
            cat = rng.choice(missing)
            word = L.NONE_FORMS.pick(rng)
            body += f" and {word} {L.NOUNS[cat].pick(rng)[word == 'no']}"
    return body, "np", n > 1


BODIES = {"list": body_list, "relation": body_relation, "chain": body_chain,
          "centre": body_centre, "predicate": body_predicate, "between": body_between,
          "order": body_order, "arrangement": body_arrangement, "count": body_count}  # fmt: skip


# --------------------------------------------------------------------------- frames
def frame(body: str, kind: str, plural: bool | None, rng: random.Random) -> str:
    """An opening (and maybe an always-true ending) around a body."""
    r = rng.random()
    if kind == "np":
        if r < 0.2:
            text = body
        elif r < 0.45:
            text = f"there {'are' if plural else 'is'} {body}"
            if rng.random() < 0.2:
                text += " " + L.THERE_PLACES.pick(rng)
        elif r < 0.53:
            text = f"{L.AGREEING_OPENERS.pick(rng).format(v='are' if plural else 'is')} {body}"
        elif r < 0.78:
            det = rng.choice(("a", "a", "this", "the"))
            adj = f"{L.FRAME_ADJECTIVES.pick(rng)} " if rng.random() < 0.5 else ""
            noun = f"{adj}{L.FRAME_NOUNS.pick(rng)}"
            if det == "a":
                det = _article(noun)
            text = f"{det} {noun} {L.FRAME_LINKS.pick(rng)} {body}"
        elif r < 0.9:
            text = f"{L.SEE_OPENERS.pick(rng)} {body}"
        else:
            adj = f"{L.FRAME_ADJECTIVES.pick(rng)} " if rng.random() < 0.3 else ""
            det = rng.choice(("this", "the"))
            text = f"{det} {adj}{L.FRAME_NOUNS.pick(rng)} {L.FRAME_VERBS.pick(rng)} {body}"
        ending_p = 0.18
    elif kind == "clause":
        text = f"{L.CLAUSE_PREFIXES.pick(rng)} {body}" if r < 0.3 else body
        ending_p = 0.06
    else:
        text = f"{L.CLAUSE_PREFIXES.pick(rng)} {body}" if r < 0.15 else body
        ending_p = 0.1
    if rng.random() < ending_p:
        text += " " + L.ENDINGS.pick(rng)
    return _articles(text)


_A_AN = re.compile(r"\b(a|an) (?=(\w))")


def _articles(text: str) -> str:
    """ "a" before a consonant, "an" before a vowel, wherever phrases were put together."""
    return _A_AN.sub(lambda m: "an " if m.group(2) in "aeiou" else "a ", text)


def caption(sc: Scene, rng: random.Random) -> str | None:
    """One caption (None when the drawn body does not fit this scene)."""
    name = _weighted(rng, list(BODY_WEIGHTS.items()))
    made = BODIES[name](sc, rng)
    if made is None:
        return None
    return frame(*made, rng)


def _fallback(sc: Scene, rng: random.Random) -> str:
    """A caption that always fits the length bounds: "this image shows <every object>"."""
    parts = [ref_phrase(sc, rng, ref, post=False) for ref in sc.refs]
    for text in (f"this image shows {_join(parts, rng)} on a white background",
                 f"this image shows {_join(parts, rng)}"):  # fmt: skip
        if MIN_WORDS <= len(text.split()) <= MAX_WORDS:
            return text
    return f"there {'are' if len(sc.refs[0]) > 1 else 'is'} {_join(parts, rng)}"


def describe_scene(objects: list[dict], rng: random.Random, count: int) -> list[str]:
    """``count`` captions of the scene, different from each other where the grammar allows."""
    sc = Scene(objects)
    captions: list[str] = []
    for _ in range(count):
        chosen = None
        for _ in range(CAPTION_TRIES):
            text = caption(sc, rng)
            if text is not None and MIN_WORDS <= len(text.split()) <= MAX_WORDS:
                chosen = text
                if text not in captions:
                    break
        captions.append(chosen or _fallback(sc, rng))
    return captions
