"""Reading a caption's claims and checking them against a scene.

``parse`` reads a caption (the grammar's or a model's) into *mentions* (noun phrases: a
category or a generic noun, colours, sizes, a count, places) and *statements* between them
(relations, "between", arrangements, orders, "and nothing else"). It reads the longest known
phrase first (the lexicon's phrases) and attaches words the way the grammar writes them:

- attributes before a noun belong to it ("two large red stars"); after a noun, or after a
  verb, to the noun or to the verb's subject ("a star in crimson", "the star is red");
- a relation's subject is the last noun phrase, or the subject of the verb before it
  ("the star that is above the ring is left of the moon": "that" opens a relative clause
  whose subject is "the star"; the next verb outside it returns to "the star"); a relation
  before any noun phrase is fronted ("above the ring there is a star");
- "x and y are ..." makes both the subject; counts are exact ("two red stars": the picture
  has exactly two); "a" is existential; plural subjects and objects are universal.

``check`` turns a parse into true/false checks against a scene (by ``scene``'s predicates);
``grounding_scores`` sums them over a set of captions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import caplm.data.scenes.lexicon as L
from caplm.data.scenes.scene import arranged, between, holds, in_region

CHAIN = frozenset(("COLOUR", "SIZE", "COUNT", "INTERNAL", "SHAPED"))  # before a noun
QUIET = frozenset(("OTHER", "DET", "POSTMOD"))  # do not change what words attach to
DETERMINERS = ("a", "an", "the", "this", "these", "those")
CHECK_KINDS = ("object", "colour", "size", "count", "position", "relation", "arrangement")
#: The keys ``grounding_scores`` returns, in order.
SCORE_KEYS = (
    "object_precision", "object_recall", "all_true_frac",
    *(f"{k}_{what}" for k in CHECK_KINDS[1:] for what in ("precision", "claims")),
    "claim_precision",
)  # fmt: skip


# --------------------------------------------------------------------------- phrase table
def _build_table() -> dict[tuple[str, ...], tuple[str, object]]:
    table: dict[tuple[str, ...], tuple[str, object]] = {}

    def add(phrase: str, kind: str, value: object = None) -> None:
        key = tuple(phrase.split())
        old = table.get(key)
        if old is not None and old != (kind, value):
            raise ValueError(f"lexicon conflict: {phrase!r} is {old} and {(kind, value)}")
        table[key] = (kind, value)

    for cat, forms in {**L.NOUNS, None: L.GENERIC_NOUNS}.items():
        singular = {sg for sg, _ in forms}
        plural = {pl for _, pl in forms}
        for word in singular | plural:
            number = None if word in singular and word in plural else word in plural
            add(word, "NOUN", (cat, number))
    for cat, words in L.SHAPED.items():
        for w in words:
            add(w, "SHAPED", cat)
    for words in (*L.DESCRIPTORS_PRE.values(), *L.COLOUR_INTENSIFIERS.values(), L.SIZE_DEGREE):
        for w in words:
            add(w, "INTERNAL")
    for words in (*L.DESCRIPTORS_POST.values(), *L.SHAPE_SIMILES.values()):
        for w in words:
            add(w, "POSTMOD")
    for colour in L.COLOURS:
        for w in (*L.COLOUR_WORDS[colour], *L.COLOUR_SIMILES[colour]):
            add(w, "COLOUR", colour)
    for colour in L.ABSENT_COLOURS:
        add(colour, "COLOUR", colour)
    for size in L.SIZES:
        for w in (*L.SIZE_WORDS[size], *L.SIZE_POST[size]):
            add(w, "SIZE", size)
    for n, forms in (*L.COUNT_FORMS.items(), *L.DEFINITE_COUNTS.items()):
        for w in forms:
            add(w, "COUNT", n)
    for w in L.NONE_FORMS:
        add(w, "COUNT", 0)
    for w, n in L.EXTRA_COUNTS.items():
        add(w, "COUNT", n)
    for rel, phrases in L.RELATIONS.items():
        for w in phrases:
            add(w, "REL", rel)
    for w in L.BETWEEN:
        add(w, "BETWEEN")
    for region, phrases in L.POSITIONS.items():
        for w in phrases:
            add(w, "POS", region)
    for arrangement, phrases in L.ARRANGEMENTS.items():
        for w in phrases:
            add(w, "ARRANGE", arrangement)
    for w in (*L.EXHAUSTIVE, *L.EXHAUSTIVE_ONE, *L.EXHAUSTIVE_MANY):
        add(w, "EXHAUST")
    for order, phrases in L.ORDERS.items():
        for w in phrases:
            add(w, "ORDER", order)
    for sg, pl in (*L.VERBS, *L.COPULAS):
        add(sg, "VERB", None if sg == pl else False)
        if pl != sg:
            add(pl, "VERB", True)
    for w in L.PRONOUNS:
        add(w, "PRON")
    for w in L.CONJUNCTIONS:
        add(w, "CONJ")
    for w in L.CLAUSE_JOINS:
        add(w, "CONJ" if w.startswith("and") else "SEP")
    for w in L.AGREEING_OPENERS:
        add(w.format(v="is"), "THERE", False)
        add(w.format(v="are"), "THERE", True)
    for w in DETERMINERS:
        add(w, "DET")
    shields = [*L.SEE_OPENERS, *L.FRAME_LINKS, *L.FRAME_VERBS, *L.CLAUSE_PREFIXES,
               *L.THERE_PLACES, *L.ENDINGS, *L.SEQUENCE, *L.SEQUENCE_LAST, *L.TOTAL_SUFFIX,
               "we find", "you will find", "we have", "in other words", "among them",
               "for instance", "namely", "including", "all over"]  # fmt: skip
    for w in shields:
        if len(w.split()) > 1:
            add(w, "OTHER")
    return table


TABLE = _build_table()
#: first word -> lengths of the phrases starting with it, longest first
_LENGTHS: dict[str, list[int]] = {}
for _key in TABLE:
    _LENGTHS.setdefault(_key[0], []).append(len(_key))
for _lengths in _LENGTHS.values():
    _lengths.sort(reverse=True)


def segment(tokens: list[str]) -> list[tuple[str, object, int, int]]:
    """(kind, value, start, end) for each longest known phrase; unknown words are OTHER."""
    out, i, n = [], 0, len(tokens)
    while i < n:
        for length in _LENGTHS.get(tokens[i], ()):
            if i + length <= n:
                hit = TABLE.get(tuple(tokens[i : i + length]))
                if hit is not None:
                    out.append((hit[0], hit[1], i, i + length))
                    i += length
                    break
        else:
            out.append(("OTHER", tokens[i], i, i + 1))
            i += 1
    return out


# --------------------------------------------------------------------------- parsing
@dataclass(eq=False)
class Mention:
    """A noun phrase: what it says of the objects it refers to."""

    category: str | None  # None: a generic noun ("shape")
    plural: bool
    number_known: bool  # False for nouns like "fish" with no count
    shaped: str | None = None  # "heart shaped icon"
    colours: list[str] = field(default_factory=list)
    sizes: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    count: int | None = None
    is_object: bool = False  # the object of a relation ("... above the ring")

    @property
    def names_object(self) -> bool:
        return (self.category is not None or self.shaped is not None) and self.count != 0

    def referents(self, objects: list[dict], places: bool = True) -> list[dict]:
        return [o for o in objects if self.fits(o, places)]

    def fits(self, o: dict, places: bool = True, colours: bool = True, sizes: bool = True):
        return (
            (self.category is None or o["category"] == self.category)
            and (self.shaped is None or o["category"] == self.shaped)
            and (not colours or all(o["colour"] == c for c in self.colours))
            and (not sizes or all(o["size"] == s for s in self.sizes))
            and (not places or all(in_region(o, r) for r in self.regions))
        )


@dataclass
class Parse:
    mentions: list[Mention] = field(default_factory=list)
    relations: list[tuple[str, list[Mention], Mention]] = field(default_factory=list)
    betweens: list[tuple[list[Mention], Mention, Mention]] = field(default_factory=list)
    arrangements: list[tuple[str, list[Mention]]] = field(default_factory=list)
    orders: list[tuple[str, list[Mention]]] = field(default_factory=list)
    exhaustive: bool = False
    agreement_errors: list[str] = field(default_factory=list)


class _Parser:
    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.p = Parse()
        self.pending: list[tuple[str, object]] = []
        self.last: Mention | None = None
        self.group: list[Mention] = []
        self.group_open = self.conj_seen = False
        self.stack: list[Mention] = []
        self.subject: list[Mention] = []
        self.verb_since = False
        self.prev: str | None = None
        self.rel: dict | None = None  # a relation waiting for its object (or subject)
        self.between: tuple[list[Mention], list[Mention]] | None = None
        self.fronted_places: list[str] = []
        self.orders: list[tuple[str, int, list[Mention]]] = []
        self.there: bool | None = None

    # the subject of a predicate here: the verb's, or the last noun phrase
    def _target(self) -> list[Mention]:
        if self.verb_since and self.subject:
            return list(self.subject)
        return [self.last] if self.last is not None else []

    def _flush(self) -> None:
        if not self.pending:
            return
        targets = self._target()
        for kind, value in self.pending:
            for m in targets:
                if kind == "COLOUR":
                    m.colours.append(value)
                elif kind == "SIZE":
                    m.sizes.append(value)
        self.pending = []

    def _noun(self, value, start) -> None:
        category, number = value
        m = Mention(category, bool(number), number is not None)
        for kind, v in self.pending:
            if kind == "COLOUR":
                m.colours.append(v)
            elif kind == "SIZE":
                m.sizes.append(v)
            elif kind == "COUNT":
                m.count = v
            elif kind == "SHAPED":
                m.shaped = v
        self.pending = []
        if m.count is not None and m.count != 0:
            m.plural, m.number_known = m.count > 1, True
        if self.there is not None:
            if m.number_known and m.plural != self.there:
                self.p.agreement_errors.append(
                    f"'there {'are' if self.there else 'is'}' before a "
                    f"{'plural' if m.plural else 'singular'} noun phrase (word {start})"
                )
            self.there = None
        m.regions.extend(self.fronted_places)
        self.fronted_places = []
        if self.group_open and self.conj_seen:
            self.group.append(m)
        else:
            self.group = [m]
        self.group_open, self.conj_seen = True, False
        if self.rel is not None:
            if self.rel["object"] is None:
                self.rel["object"], m.is_object = m, True
                if self.rel["subject"]:
                    self._close_relation()
            elif not self.rel["subject"]:
                self.rel["subject"] = [m]
                self._close_relation()
        elif self.between is not None:
            self.between[1].append(m)
            m.is_object = True
            if len(self.between[1]) == 2:
                self.p.betweens.append((self.between[0], *self.between[1]))
                self.between = None
        self.last, self.verb_since = m, False
        self.p.mentions.append(m)

    def _close_relation(self) -> None:
        r = self.rel
        self.p.relations.append((r["type"], r["subject"], r["object"]))
        self.rel = None

    def _verb(self, number, start) -> None:
        if self.prev == "PRON" and self.stack:
            subject = [self.stack[-1]]
        elif self.stack:  # the verb after a relative clause: back to its head
            subject = [self.stack[0]]
            self.stack = []
        elif self.group_open and len(self.group) > 1 and not self.group[0].is_object:
            subject = list(self.group)  # "the star and the ring are ..."
        else:
            subject = [self.last] if self.last is not None else []
        if number is not None and subject:
            plural = len(subject) > 1 or subject[0].plural
            if (len(subject) > 1 or subject[0].number_known) and plural != number:
                self.p.agreement_errors.append(
                    f"{'plural' if number else 'singular'} verb "
                    f"{' '.join(self.tokens[start : start + 3])!r} after a "
                    f"{'plural' if plural else 'singular'} subject (word {start})"
                )
        self.subject, self.verb_since, self.group_open = subject, True, False

    def run(self) -> Parse:
        for kind, value, start, _ in segment(self.tokens):
            if kind in CHAIN:
                self.pending.append((kind, value))
                self.prev = "ATTR"
                continue
            if kind == "DET":
                continue
            if kind == "NOUN":
                self._noun(value, start)
                self.prev = "NOUN"
                continue
            self._flush()
            fronted = self.prev in (None, "CONJ", "SEP")
            if kind == "VERB":
                self._verb(value, start)
            elif kind == "PRON":
                if self.last is not None:
                    self.stack.append(self.last)
                self.group_open = False
            elif kind == "CONJ":
                self.conj_seen = True
                self.stack = []
            elif kind == "SEP":
                self.stack, self.group_open, self.verb_since = [], False, False
            elif kind == "THERE":
                self.there, self.stack, self.verb_since = value, [], False
                self.group_open = False
            elif kind == "REL":
                subject = None if fronted else (self._target() or None)
                self.rel = {"type": value, "subject": subject, "object": None}
                self.group_open = False
            elif kind == "BETWEEN":
                subject = self._target()
                if subject:
                    self.between = (subject, [])
                self.group_open = False
            elif kind == "POS":
                if fronted:
                    self.fronted_places.append(value)
                else:
                    for m in self._target():
                        m.regions.append(value)
            elif kind == "ARRANGE":
                if self.verb_since and self.subject:
                    targets = list(self.subject)
                elif len(self.group) > 1:
                    targets = list(self.group)
                else:
                    targets = [self.last] if self.last is not None else []
                if targets:
                    self.p.arrangements.append((value, targets))
            elif kind == "EXHAUST":
                self.p.exhaustive = True
            elif kind == "ORDER":
                self.orders.append((value, len(self.p.mentions), list(self.group)))
            if kind not in QUIET:
                self.prev = kind
        self._flush()
        if self.fronted_places:  # "... is large and in the top left corner"
            for m in self._target():
                m.regions.extend(self.fronted_places)
        if self.rel is not None and self.rel["object"] is not None and not self.rel["subject"]:
            if self.subject:  # "the star is large and above the ring"
                self.rel["subject"] = list(self.subject)
                self._close_relation()
        for order, begin, group in self.orders:
            after = self.p.mentions[begin:]
            sequence = after if len(after) > 1 else group
            if len(sequence) > 1:
                self.p.orders.append((order, sequence))
        return self.p


def parse(caption: str | list[str]) -> Parse:
    """The mentions and statements of a caption (a string or its tokens)."""
    tokens = caption.lower().split() if isinstance(caption, str) else [t.lower() for t in caption]
    return _Parser(tokens).run()


# --------------------------------------------------------------------------- checking
@dataclass
class Check:
    kind: str  # one of CHECK_KINDS
    ok: bool
    what: str  # for messages


def _holds_for(relation: str, subject: Mention, obj: Mention, objects: list[dict]) -> bool:
    subjects, targets = subject.referents(objects), obj.referents(objects)
    if not subjects or not targets:
        return False
    inner = all if obj.plural else any
    outer = all if subject.plural else any
    return outer(inner(holds(relation, a, b) for b in targets) for a in subjects)


def _describe(m: Mention) -> str:
    words = [str(m.count)] if m.count is not None else []
    words += m.sizes + m.colours + [m.category or m.shaped or "thing"] + m.regions
    return " ".join(words)


def check(caption: str | list[str] | Parse, objects: list[dict]) -> list[Check]:
    """Every checkable claim of a caption, true or false of the scene."""
    p = caption if isinstance(caption, Parse) else parse(caption)
    checks: list[Check] = []
    for m in p.mentions:
        if m.count is not None:
            found = len(m.referents(objects, places=False))
            checks.append(Check("count", found == m.count, f"{_describe(m)}: {found} in the scene"))
        if m.count == 0:
            continue
        if m.names_object:
            ok = any(m.fits(o, places=False) for o in objects)
            checks.append(Check("object", ok, _describe(m)))
        if m.colours:
            ok = any(m.fits(o, places=False, sizes=False) for o in objects)
            checks.append(Check("colour", ok, _describe(m)))
        if m.sizes:
            ok = any(m.fits(o, places=False, colours=False) for o in objects)
            checks.append(Check("size", ok, _describe(m)))
        if m.regions:
            if m.plural:
                them = m.referents(objects, places=False)
                ok = bool(them) and all(m.fits(o) for o in them)
            else:
                ok = bool(m.referents(objects))
            checks.append(Check("position", ok, _describe(m)))
    for relation, subjects, obj in p.relations:
        for s in subjects:
            ok = _holds_for(relation, s, obj, objects)
            checks.append(Check("relation", ok, f"{_describe(s)} {relation} {_describe(obj)}"))
    for subjects, b, c in p.betweens:
        for s in subjects:
            ok = any(between(x, y, z) for x in s.referents(objects) for y in b.referents(objects)
                     for z in c.referents(objects))  # fmt: skip
            checks.append(
                Check("relation", ok, f"{_describe(s)} between {_describe(b)} and {_describe(c)}")
            )
    for order, sequence in p.orders:
        for x, y in pairwise(sequence):
            ok = _holds_for(order, x, y, objects)
            checks.append(Check("relation", ok, f"{_describe(x)} {order} {_describe(y)}"))
    for arrangement, targets in p.arrangements:
        chosen: dict[int, dict] = {}
        for t in targets:
            chosen.update((id(o), o) for o in t.referents(objects))
        ok = arranged(arrangement, list(chosen.values()))
        checks.append(Check("arrangement", ok, f"{arrangement}: {[_describe(t) for t in targets]}"))
    if p.exhaustive:
        named = [m for m in p.mentions if m.count != 0]
        ok = all(any(m.fits(o) for m in named) for o in objects)
        checks.append(Check("arrangement", ok, "nothing else in the picture"))
    return checks


def grounding(caption: str | list[str], objects: list[dict]) -> dict:
    """One caption's counts: ``mentions`` (noun phrases naming a category),
    ``true_mentions`` (those an object fits: category, colour and size as said), ``kinds``
    (distinct category-colour kinds in the scene), ``kinds_named`` (those a mention names
    with both), per check kind ``<kind>_checks`` and ``<kind>_true``, and ``all_true``
    (at least one checkable claim, and every claim true)."""
    p = parse(caption)
    checks = check(p, objects)
    scene = {(o["category"], o["colour"]) for o in objects}
    said = {(m.category or m.shaped, m.colours[0]) for m in p.mentions
            if m.names_object and len(set(m.colours)) == 1}  # fmt: skip
    objects_checks = [c for c in checks if c.kind == "object"]
    out = {
        "mentions": len(objects_checks),
        "true_mentions": sum(c.ok for c in objects_checks),
        "kinds": len(scene),
        "kinds_named": len(scene & said),
        "all_true": bool(checks) and all(c.ok for c in checks),
    }
    for kind in CHECK_KINDS:
        mine = [c for c in checks if c.kind == kind]
        out[f"{kind}_checks"], out[f"{kind}_true"] = len(mine), sum(c.ok for c in mine)
    return out


def grounding_scores(
    captions: dict[str, str | list[str]], scenes: dict[str, list[dict]]
) -> dict[str, float]:
    """Over generated captions (image id -> caption or its tokens) and the scenes
    (``dataset.info["scenes"]``):

    - ``object_precision``: share of noun phrases naming a category whose category, colour
      and size (as far as said) fit an object of the picture;
    - ``object_recall``: share of the pictures' category-colour kinds named (with both);
    - ``all_true_frac``: share of captions that make a checkable claim and whose every
      claim is true (shapes counts only object mentions; here counts, places and relations
      count too, so "there are four shapes" is a claim);
    - ``<kind>_precision`` for colour, size, count, position, relation (incl. "between" and
      orders) and arrangement (incl. "and nothing else"): share of those claims that are
      true (0 when there are none; ``<kind>_claims`` says how many there were);
    - ``claim_precision``: share of all claims that are true.
    """
    counts = [grounding(caption, scenes[image]) for image, caption in captions.items()]

    def total(key: str) -> int:
        return sum(c[key] for c in counts)

    scores = {
        "object_precision": total("true_mentions") / max(total("mentions"), 1),
        "object_recall": total("kinds_named") / max(total("kinds"), 1),
        "all_true_frac": sum(c["all_true"] for c in counts) / max(len(counts), 1),
    }
    claims = trues = 0
    for kind in CHECK_KINDS:
        n, ok = total(f"{kind}_checks"), total(f"{kind}_true")
        claims, trues = claims + n, trues + ok
        if kind != "object":
            scores[f"{kind}_precision"] = ok / max(n, 1)
            scores[f"{kind}_claims"] = float(n)
    scores["claim_precision"] = trues / max(claims, 1)
    return scores
