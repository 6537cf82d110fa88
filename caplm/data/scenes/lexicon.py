"""The scenes dataset's vocabulary: what can be in a picture, and every word and phrase the
captions may use for it.

The pictures are kept visually simple (16 icon categories, 7 colours, 3 sizes, a 3 x 3 grid of
places); the richness is in the language. Every option list is a :class:`Zipf` list: the first
entry is the usual word and later ones are drawn ever more rarely (weight ``1 / rank``), so a
caption set has a few frequent words and a long tail of rare synonyms and paraphrases.

Words are lower-case ``a-z`` only (no digits, no punctuation), so every text normaliser gives
the same tokens and ``caption.split()`` is the tokenisation. Phrases may have several words;
the parser (``truth``) reads the longest known phrase first, so e.g. "hollow circle" names a
ring and "on the left side of the picture" is a place, not a relation.
"""

from __future__ import annotations

from bisect import bisect
from collections.abc import Iterator

ZIPF_EXPONENT = 1.0


class Zipf:
    """Options drawn with weight ``1 / rank ** exponent`` (the first is the most common)."""

    __slots__ = ("items", "cum", "total")

    def __init__(self, items, exponent: float = ZIPF_EXPONENT):
        self.items = tuple(items)
        if not self.items:
            raise ValueError("a Zipf list needs at least one option")
        cum, total = [], 0.0
        for rank in range(1, len(self.items) + 1):
            total += 1.0 / rank**exponent
            cum.append(total)
        self.cum, self.total = cum, total

    def pick(self, rng):
        return self.items[bisect(self.cum, rng.random() * self.total)]

    def __iter__(self) -> Iterator:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def _z(text: str, exponent: float = ZIPF_EXPONENT) -> Zipf:
    """A Zipf list from ``"first|second|..."``."""
    return Zipf([t.strip() for t in text.split("|")], exponent)


def _pairs(text: str) -> Zipf:
    """(singular, plural) noun forms from ``"star/stars|..."``."""
    return Zipf([tuple(p.strip().split("/")) for p in text.split("|")])


# --------------------------------------------------------------------------- the pictures
#: Icon categories (drawn by ``render``); visually very distinct silhouettes.
CATEGORIES = ("circle", "ring", "square", "triangle", "diamond", "star", "heart", "moon",
              "cross", "arrow", "house", "tree", "drop", "bolt", "flower", "fish")  # fmt: skip
COLOURS = {  # saturated and far apart on a white background
    "red": (220, 30, 40),
    "orange": (245, 135, 20),
    "yellow": (230, 200, 0),
    "green": (30, 155, 55),
    "blue": (30, 80, 225),
    "purple": (130, 45, 180),
    "black": (30, 30, 30),
}
#: Colour words a caption may use for colours no object ever has (so a claim is false).
ABSENT_COLOURS = ("white", "grey", "gray", "pink", "brown", "silver", "beige", "turquoise",
                  "cyan", "magenta", "maroon", "navy", "cream", "tan")  # fmt: skip
#: Box side (width = height) as a fraction of the image side; the sizes differ a lot.
SIZES = {"small": (0.115, 0.13), "medium": (0.18, 0.20), "large": (0.265, 0.285)}
SIZE_ORDER = {"small": 0, "medium": 1, "large": 2}
GRID = 3  # objects sit in the cells of a GRID x GRID grid, at most one per cell
MAX_OBJECTS = 4

# --------------------------------------------------------------------------- object nouns
NOUNS = {  # category -> (singular, plural) forms
    "circle": _pairs(
        "circle/circles|dot/dots|disc/discs|ball/balls|spot/spots|disk/disks|orb/orbs|"
        "solid circle/solid circles|filled circle/filled circles|polka dot/polka dots|"
        "roundel/roundels|button/buttons|round dot/round dots|full circle/full circles"
    ),
    "ring": _pairs(
        "ring/rings|hoop/hoops|loop/loops|donut/donuts|hollow circle/hollow circles|"
        "doughnut/doughnuts|halo/halos|open circle/open circles|circle outline/circle outlines|"
        "annulus/annuli|washer/washers|bagel/bagels|circlet/circlets|ring outline/ring outlines|"
        "life ring/life rings|lifebuoy/lifebuoys"
    ),
    "square": _pairs(
        "square/squares|box/boxes|block/blocks|tile/tiles|solid square/solid squares|"
        "filled square/filled squares|rectangle/rectangles|quadrilateral/quadrilaterals|"
        "square tile/square tiles|square block/square blocks|cube/cubes"
    ),
    "triangle": _pairs(
        "triangle/triangles|pyramid/pyramids|wedge/wedges|delta/deltas|"
        "solid triangle/solid triangles|filled triangle/filled triangles|trigon/trigons|"
        "triangle shape/triangle shapes"
    ),
    "diamond": _pairs(
        "diamond/diamonds|rhombus/rhombuses|lozenge/lozenges|rhomb/rhombs|"
        "diamond shape/diamond shapes|rhombus/rhombi|diamond symbol/diamond symbols"
    ),
    "star": _pairs(
        "star/stars|star shape/star shapes|star icon/star icons|star symbol/star symbols|"
        "pentacle/pentacles"
    ),
    "heart": _pairs(
        "heart/hearts|love heart/love hearts|valentine/valentines|heart shape/heart shapes|"
        "heart symbol/heart symbols|heart icon/heart icons|love symbol/love symbols"
    ),
    "moon": _pairs(
        "moon/moons|crescent/crescents|crescent moon/crescent moons|sickle/sickles|"
        "moon shape/moon shapes|lunar crescent/lunar crescents|crescent shape/crescent shapes|"
        "sliver of moon/slivers of moon"
    ),
    "cross": _pairs(
        "cross/crosses|plus sign/plus signs|plus/pluses|plus symbol/plus symbols|"
        "greek cross/greek crosses|cross shape/cross shapes|addition sign/addition signs|"
        "cross symbol/cross symbols|plus mark/plus marks"
    ),
    "arrow": _pairs(
        "arrow/arrows|up arrow/up arrows|upward arrow/upward arrows|pointer/pointers|"
        "arrow sign/arrow signs|arrow symbol/arrow symbols|arrow icon/arrow icons|"
        "arrowhead sign/arrowhead signs"
    ),
    "house": _pairs(
        "house/houses|home/homes|cottage/cottages|hut/huts|cabin/cabins|building/buildings|"
        "dwelling/dwellings|bungalow/bungalows|shack/shacks|house icon/house icons|"
        "chalet/chalets|homestead/homesteads|lodge/lodges|cottage icon/cottage icons"
    ),
    "tree": _pairs(
        "tree/trees|pine tree/pine trees|fir tree/fir trees|evergreen/evergreens|pine/pines|"
        "fir/firs|conifer/conifers|christmas tree/christmas trees|spruce/spruces|"
        "spruce tree/spruce trees|cedar/cedars|sapling/saplings"
    ),
    "drop": _pairs(
        "drop/drops|droplet/droplets|teardrop/teardrops|raindrop/raindrops|"
        "water drop/water drops|drip/drips|dewdrop/dewdrops|tear/tears|"
        "drop of water/drops of water|bead of water/beads of water|blob/blobs"
    ),
    "bolt": _pairs(
        "lightning bolt/lightning bolts|bolt/bolts|thunderbolt/thunderbolts|zigzag/zigzags|"
        "lightning flash/lightning flashes|bolt of lightning/bolts of lightning|"
        "flash of lightning/flashes of lightning|lightning strike/lightning strikes|"
        "electric bolt/electric bolts"
    ),
    "flower": _pairs(
        "flower/flowers|blossom/blossoms|bloom/blooms|daisy/daisies|floret/florets|"
        "flower head/flower heads|rosette/rosettes|marguerite/marguerites|"
        "flower icon/flower icons|bud/buds|posy/posies"
    ),
    "fish": _pairs(
        "fish/fish|fish/fishes|minnow/minnows|guppy/guppies|fish shape/fish shapes|"
        "fish icon/fish icons|tiddler/tiddlers|sardine/sardines|goldfish/goldfish"
    ),
}
#: Nouns for any object ("four shapes", "a red object").
GENERIC_NOUNS = _pairs(
    "shape/shapes|object/objects|item/items|thing/things|icon/icons|symbol/symbols|"
    "figure/figures|element/elements|sign/signs|motif/motifs|form/forms|glyph/glyphs|"
    "emblem/emblems|silhouette/silhouettes|token/tokens|pictogram/pictograms|piece/pieces|"
    "entity/entities|doodle/doodles|marker/markers|mark/marks|device/devices|"
    "ornament/ornaments|decoration/decorations|sprite/sprites|pictograph/pictographs"
)
#: "<X> shaped" adjectives: with a generic noun they name the category ("a heart shaped icon").
SHAPED = {
    "circle": _z("round|circular|circle shaped|disc shaped|ball shaped"),
    "ring": _z("ring shaped|annular|hoop shaped|donut shaped|doughnut shaped"),
    "square": _z("square shaped|boxy|block shaped|box shaped"),
    "triangle": _z("triangular|triangle shaped|wedge shaped|pyramid shaped"),
    "diamond": _z("diamond shaped|rhomboid|lozenge shaped|rhombic"),
    "star": _z("star shaped|starlike|stellate"),
    "heart": _z("heart shaped|heartlike"),
    "moon": _z("crescent shaped|moon shaped|sickle shaped|lunate"),
    "cross": _z("cross shaped|plus shaped|cruciform"),
    "arrow": _z("arrow shaped|arrowlike"),
    "house": _z("house shaped|hut shaped"),
    "tree": _z("tree shaped|treelike"),
    "drop": _z("drop shaped|teardrop shaped|tear shaped|droplet shaped"),
    "bolt": _z("bolt shaped|zigzag shaped|lightning shaped"),
    "flower": _z("flower shaped|floral|flowery|flowerlike"),
    "fish": _z("fish shaped|fishlike"),
}
#: Words true of how each category is drawn: before the noun, and after it.
DESCRIPTORS_PRE = {
    "circle": _z("perfectly round|smooth|plain"),
    "ring": _z("hollow|thick|chunky"),
    "square": _z("sharp cornered|squat|flat sided"),
    "triangle": _z("isosceles|pointy|sharp angled"),
    "diamond": _z("upright|slim|tall"),
    "star": _z("five pointed|pointy|spiky|five point"),
    "heart": _z("classic|rounded|symmetrical"),
    "moon": _z("curved|slender|thin"),
    "cross": _z("equal armed|symmetrical|blunt armed"),
    "arrow": _z("upward pointing|vertical|upright"),
    "house": _z("gabled|simple|pitched roof"),
    "tree": _z("pointy|conical|tapering"),
    "drop": _z("plump|pointed|glossy"),
    "bolt": _z("jagged|zigzagging|crooked|angular"),
    "flower": _z("six petalled|blooming|stylised"),
    "fish": _z("swimming|stylised|streamlined"),
}
DESCRIPTORS_POST = {
    "circle": _z(
        "with a smooth edge|with no corners|with a perfectly round outline|without any corners"
    ),
    "ring": _z(
        "with a hole in the middle|with a white centre|with an empty centre|"
        "with a hole in the centre|with a white hole|shaped like the letter o"
    ),
    "square": _z(
        "with four equal sides|with straight edges|with sharp corners|"
        "with four right angles|with four corners|with four straight sides"
    ),
    "triangle": _z(
        "pointing up|pointing upward|with three corners|with three sides|"
        "standing on its base|with a flat base|with a pointed top"
    ),
    "diamond": _z(
        "standing on its tip|balanced on one point|with four corners|"
        "with four sharp points|like a playing card diamond"
    ),
    "star": _z(
        "with five points|with five arms|with five tips|with five spikes|"
        "with five sharp points|with sharp tips"
    ),
    "heart": _z(
        "with a pointed bottom|with two rounded lobes|with a dip at the top|like a valentine"
    ),
    "moon": _z(
        "with pointed tips|with two sharp tips|with a curved inner edge|with a hollowed out side"
    ),
    "cross": _z(
        "with four equal arms|with four arms|with arms of equal length|"
        "like a plus sign|with blunt ends"
    ),
    "arrow": _z(
        "pointing up|pointing upward|pointing upwards|pointing skyward|facing upward|"
        "aimed upward|pointing straight up|with a triangular head|with a broad head|"
        "with a straight shaft"
    ),
    "house": _z(
        "with a pointed roof|with a door|with a peaked roof|with a gabled roof|"
        "with a front door|with a doorway|with a white door|with a slanted roof"
    ),
    "tree": _z(
        "with a trunk|with a short trunk|with a stubby trunk|with a straight trunk|"
        "with a pointed top|like a christmas tree|with three tiers|"
        "with layered branches"
    ),
    "drop": _z(
        "with a pointed top|with a pointed tip|with a rounded base|with a round bottom|like a tear"
    ),
    "bolt": _z(
        "with sharp angles|with jagged edges|like a flash of lightning|with a zigzag outline"
    ),
    "flower": _z(
        "with six petals|with six round petals|with a white centre|"
        "with a white center|with six rounded petals|with a white middle|"
        "with round petals"
    ),
    "fish": _z(
        "facing left|with a tail|with a forked tail|swimming to the left|"
        "with a triangular tail|with a small white eye|with a white eye"
    ),
}

_SHAPE_THINGS = {
    "circle": "a coin|a button|a plate|a full moon|a pizza|a frisbee|a wheel|a pebble|a saucer|"
    "a cookie|a pancake|a hockey puck|a marble|a bubble|a polka dot|"
    "a lollipop|a gumball|a bottle cap|a cd|a clock face|a drum|a tablet|a lily pad",
    "ring": "a tyre|a lifebuoy|a bangle|a hula hoop|a bracelet|a wedding band|a doughnut|a bagel|"
    "a napkin ring|the letter o|a life preserver|a rubber band|an onion ring|"
    "a tambourine|a steering wheel|a wreath|a bicycle tyre|a cookie cutter|a porthole|"
    "a hoop earring|a wedding ring",
    "square": "a sugar cube|a postage stamp|a napkin|a window pane|a cracker|a slice of bread|"
    "a dice|a chessboard square|a floor tile|a sticky note|a gift box|a sandwich|"
    "a cracker biscuit|a ravioli|a bath tile|a waffle|a floppy disk|a keyboard key|a coaster|"
    "a mosaic piece",
    "triangle": "a slice of pizza|a sail|a tent|a mountain peak|a shark fin|a yield sign|"
    "a tortilla chip|a warning sign|a roof|a nacho|"
    "a tortilla wedge|a party hat|a traffic cone|a guitar pick|a set square|a piece of cheese|"
    "a ship sail|a pine forest tree",
    "diamond": "a kite|a playing card diamond|a gemstone|a road sign|a harlequin patch|a crystal|"
    "a kite in flight|a gem|a jewel|a road warning sign|a rhombus tile|a cut gem",
    "star": "a starfish|a sea star|a sheriff badge|a tree topper|"
    "a christmas star|a shooting star|a sheriff star|a star fruit slice|a starburst|a medal",
    "heart": "a valentine card|a locket|a playing card heart|a love token|"
    "a candy heart|a love letter seal|a heart locket|a strawberry|a cherry pair|a balloon heart",
    "moon": "a banana|a croissant|a fingernail clipping|a boomerang|a melon slice|a claw|"
    "a slice of lemon|a toenail clipping|a banana slice|a smile|a hammock|a melon rind",
    "cross": "a first aid symbol|a hospital sign|a plus key on a calculator|a crossroads|"
    "a red cross badge|a church window|a crossroads sign|a pharmacy sign|a medical badge",
    "arrow": "a signpost|a rocket|a road marking|an upward cursor|a spear|"
    "a road arrow|a direction sign|a weather vane pointer|a rocket ship|an elevator button",
    "house": "a birdhouse|a barn|a doghouse|a kennel|a monopoly house|a beach hut|a toy house|"
    "a dolls house|a chalet|a gingerbread house|a farmhouse|a garden shed|a little barn|"
    "a cabin in the woods",
    "tree": "a christmas tree|a toy tree|an alpine fir|a model railway tree|"
    "a fir in winter|a pine in the snow|a toy christmas tree|a forest conifer|an ornamental fir",
    "drop": "a tear|a water droplet|a drop of rain|a flame|a balloon|a map pin|a bead of sweat|"
    "a dewdrop|a teardrop|a raindrop|an onion bulb|a location marker|a water bead",
    "bolt": "a lightning strike|a zigzag|the letter z|a flash of electricity|a spark|"
    "a thunderbolt|a lightning flash|a warning symbol|a zigzag road|a comic book zap",
    "flower": "a daisy|a sunflower head|a buttercup|a paper flower|a lace doily|"
    "a cartoon flower|a forget me not|a hibiscus|a doily|a rosette badge|a button flower",
    "fish": "a goldfish|a sardine|a koi carp|a mackerel|a minnow|an aquarium fish|a cartoon fish|"
    "a tuna|a herring|a trout|a perch|a tropical fish|a cartoon goldfish|a salmon",
}
#: After a noun ("a ring resembling a tyre"): what each category's icon looks like.
SHAPE_SIMILES = {
    cat: Zipf(
        [f"resembling {t}" for t in things.split("|")]
        + [f"in the shape of {t}" for t in things.split("|")[:8]]
        + [f"reminiscent of {t}" for t in things.split("|")[:5]]
        + [f"much like {t}" for t in things.split("|")[:3]]
    )
    for cat, things in _SHAPE_THINGS.items()
}

# --------------------------------------------------------------------------- colours
COLOUR_WORDS = {
    "red": _z(
        "red|crimson|scarlet|ruby red|cherry red|vermilion|ruby|carmine|blood red|tomato red|"
        "fire engine red|poppy red|cardinal red|strawberry red|postbox red|lipstick red|"
        "signal red|racing red|flame red|garnet|chilli red|berry red|candy apple red|"
        "geranium red|pillar red|traffic light red|cadmium red|cinnabar|carnelian|"
        "alizarin crimson|cochineal|madder red|crimson lake|lobster red|ketchup red|cranberry red"
    ),
    "orange": _z(
        "orange|tangerine|amber|pumpkin orange|apricot|carrot orange|marigold|mandarin|saffron|"
        "traffic cone orange|clementine|persimmon|papaya|sunset orange|mango|flame orange|"
        "safety orange|satsuma|kumquat|jaffa orange|ginger|fox orange|cantaloupe|nectarine|"
        "cadmium orange|tiger orange|marmalade orange|goldfish orange|basketball orange|"
        "amber orange|persimmon orange"
    ),
    "yellow": _z(
        "yellow|golden|gold|lemon yellow|canary yellow|sunflower yellow|mustard|lemon|"
        "butter yellow|banana yellow|daffodil yellow|buttercup yellow|sunshine yellow|"
        "dandelion yellow|citrine|maize|corn yellow|taxi yellow|school bus yellow|"
        "sulphur yellow|sulfur yellow|chick yellow|mimosa|honey yellow|yolk yellow|"
        "cadmium yellow|chrome yellow|hansa yellow|indian yellow|gamboge|jonquil|sunbeam yellow"
    ),
    "green": _z(
        "green|emerald|grass green|emerald green|jade|kelly green|forest green|leaf green|"
        "shamrock green|clover green|fern green|basil green|pea green|viridian|malachite|"
        "verdant|apple green|spring green|meadow green|holly green|parakeet green|irish green|"
        "pine green|grassy|leafy green|lawn green|garden green|bottle green|phthalo green|"
        "sap green|cadmium green|permanent green|jungle green|frog green|lettuce green|"
        "cactus green"
    ),
    "blue": _z(
        "blue|azure|cobalt|royal blue|sapphire|cobalt blue|cerulean|ultramarine|electric blue|"
        "cornflower blue|ocean blue|sapphire blue|primary blue|denim blue|lapis blue|"
        "french blue|klein blue|persian blue|egyptian blue|sea blue|marine blue|bluebell|"
        "delft blue|dodger blue|imperial blue|smalt|kingfisher blue|peacock blue|phthalo blue|"
        "true blue|flag blue|pool blue|lake blue|hyacinth blue"
    ),
    "purple": _z(
        "purple|violet|plum|amethyst|grape|royal purple|aubergine|eggplant|deep purple|"
        "mulberry|orchid purple|heliotrope|byzantium|blackberry purple|iris purple|"
        "imperial purple|tyrian purple|regal purple|damson|boysenberry|grape purple|"
        "plum purple|violet purple|jam purple|bishop purple|pansy purple|dioxazine purple|"
        "cobalt violet|mineral violet|petunia purple|beetroot purple|thistle purple|"
        "crocus purple|berry purple"
    ),
    "black": _z(
        "black|jet black|ebony|inky|coal black|pitch black|onyx|jet|sable|raven black|obsidian|"
        "sooty|midnight black|liquorice|licorice|tar black|carbon black|ink black|crow black|"
        "night black|piano black|matte black|shadow black|soot black|mars black|ivory black|"
        "lamp black|bone black|vine black|panther black|tuxedo black|oil black"
    ),
}
#: Before the colour's plain word only ("bright red", "deep black").
COLOUR_INTENSIFIERS = {
    **{
        c: _z(
            "bright|vivid|deep|rich|strong|bold|pure|vibrant|brilliant|intense|saturated|"
            "solid|striking|punchy|lively|zesty"
        )
        for c in COLOURS
        if c != "black"
    },  # fmt: skip
    "black": _z("deep|pure|solid|rich|intense|true|dense"),
}
_SIMILE_THINGS = {
    "red": "ripe tomatoes|fresh cherries|a fire engine|strawberries|blood|a ripe chilli|rubies|"
    "a postbox|poppies|raspberries|cranberries|a ladybird|holly berries|a london bus|"
    "pomegranate seeds|a cooked lobster|radishes|paprika|a red rose|watermelon flesh|"
    "a fire hydrant|a stop light|a candy apple|a red pepper|a cardinal bird|a ripe strawberry|"
    "a cherry tomato|a red balloon|a toy fire truck|a ripe cherry|a boxing glove|a red crayon|"
    "redcurrants|rosehips|a red apple|a red tulip|a clown nose|a santa suit|a chilli pepper|"
    "glowing embers",
    "orange": "ripe oranges|a pumpkin|carrots|a tangerine|marmalade|a traffic cone|apricots|"
    "autumn leaves|a tiger|a sunset|mango flesh|a monarch butterfly|a basketball|an orange peel|"
    "a fox|a flame|papaya|a clementine|sweet potato|an orangutan|"
    "a life jacket|an apricot|a ripe peach|a marigold|a tangerine peel|a persimmon|"
    "a butternut squash|orange juice|cheddar cheese|a hazard vest|a sunrise|a campfire flame|"
    "a tiger lily|a satsuma|a kumquat|a cantaloupe melon|a pumpkin pie|a carrot cake|a koi|"
    "a clownfish",
    "yellow": "lemons|ripe bananas|sunflowers|egg yolk|butter|a canary|daffodils|sunshine|"
    "a school bus|a rubber duck|sweetcorn|buttercups|a taxi|custard|a bumblebee|mustard|"
    "a yellow pepper|pineapple|dandelions|a lemon peel|"
    "a lemon|a banana|a sunflower|a daffodil|a corn cob|a highlighter pen|scrambled eggs|"
    "a smiley face|a goldfinch|a yellow submarine|saffron rice|a lemon tart|honeycomb|"
    "a yellow raincoat|a pat of butter|a chick|a yellow crayon|a rain slicker|a canary feather|"
    "sunflower petals",
    "green": "fresh grass|spring leaves|emeralds|a frog|garden peas|clover|a lawn|a meadow|"
    "a granny smith apple|a cucumber|broccoli|a parrot|a lettuce|a fern|basil leaves|"
    "a grasshopper|spinach|a pea pod|moss|a lime peel|"
    "a leaf|a green apple|a lime|a lettuce leaf|a cactus|a pickle|a leprechaun hat|pine needles|"
    "a green bean|an avocado|a shamrock|a kiwi slice|a green crayon|a snooker table|mint leaves|"
    "a courgette|a gooseberry|a praying mantis|a lizard|seaweed",
    "blue": "a clear sky|sapphires|the ocean|cornflowers|the deep sea|a summer sky|denim|"
    "a kingfisher|blueberries|a swimming pool|forget me nots|a blue jay|a peacock|a bluebird|"
    "the mediterranean|lapis lazuli|a police light|a glacier lake|a morpho butterfly|"
    "a sapphire ring|"
    "a blue whale|blue ink|a bluebell|a peacock feather|a blue crayon|a blueberry|"
    "a denim jacket|a forget me not|a delft plate|an ocean wave|a lapis stone|a tropical lagoon|"
    "cobalt glass|blue jeans|a mountain lake|a sapphire gem|a blue marble|a lake at noon|"
    "a clear lagoon|a blue tit",
    "purple": "ripe plums|grapes|violets|amethyst|an aubergine|a plum|blackcurrants|heather|"
    "lavender fields|an orchid|beetroot juice|a bruise|a fig|blackberries|a sea urchin|"
    "red cabbage|a grape soda|a pansy|royal robes|elderberries|"
    "a purple crayon|a beetroot|a purple onion|a plum skin|purple cabbage|grape jelly|"
    "a mulberry|a damson|an iris flower|a thistle|a passion fruit|a wine stain|a violet petal|"
    "crocuses|a purple grape|an amethyst stone|a bishop robe|a plum jam|a purple pansy|"
    "wild heather",
    "black": "coal|ink|night|soot|a crow|tar|a raven|the night sky|a panther|liquorice|"
    "a blackbird|an old tyre|asphalt|a chalkboard|a piano key|black pepper|a crow feather|"
    "a beetle|burnt toast|volcanic rock|"
    "a black cat|a top hat|a tuxedo|a bowling ball|black olives|a black hole|"
    "charcoal briquettes|crude oil|a blackboard|ebony wood|obsidian glass|a beetle shell|"
    "a raven wing|a vinyl record|a gorilla|a black widow spider|a crow wing|a moonless night|"
    "a coal mine|a chimney sweep",
}
#: "the colour of ripe tomatoes", "as red as ripe tomatoes": after a noun, or as a predicate.
COLOUR_SIMILES = {
    c: Zipf(
        [f"the colour of {t}" for t in things.split("|")]
        + [f"the color of {t}" for t in things.split("|")[:4]]
        + [f"as {c} as {t}" for t in things.split("|")[:6]]
    )
    for c, things in _SIMILE_THINGS.items()
}
#: Colour after the noun ("a star in crimson"); ``{c}`` is a colour word.
COLOUR_POST = _z(
    "in {c}|coloured {c}|painted {c}|in a shade of {c}|colored {c}|in {c} colour|"
    "of a {c} colour|in a {c} hue|tinted {c}|shaded {c}|done in {c}|drawn in {c}|"
    "rendered in {c}|filled with {c}|in solid {c}|of a {c} color|in a {c} tone|"
    "in a {c} shade|coloured in {c}|finished in {c}|in a lovely {c}|in flat {c}|"
    "in a solid {c} fill|with a {c} fill|in plain {c}|picked out in {c}|in full {c}|"
    "in glorious {c}|in a tone of {c}"
)
#: Colour as a predicate ("the star is crimson").
COLOUR_PRED = _z(
    "{c}|coloured {c}|painted {c}|{c} in colour|in {c}|a shade of {c}|{c} coloured|"
    "colored {c}|tinted {c}|{c} all over|entirely {c}|completely {c}|wholly {c}|"
    "uniformly {c}|solidly {c}|{c} in hue|a lovely {c}|filled in {c}|done in {c}"
)

# --------------------------------------------------------------------------- sizes
SIZE_WORDS = {
    "small": _z(
        "small|little|tiny|miniature|mini|wee|petite|diminutive|teeny|minute|compact|minuscule|"
        "dinky|pint sized|undersized|small sized|weeny|teensy|tiddly|pocket sized|micro|"
        "lilliputian|bijou|smallish|slight|little bitty|dainty|toy sized|baby sized"
    ),
    "medium": _z(
        "medium sized|medium|mid sized|average sized|moderately sized|middling|intermediate|"
        "regular sized|normal sized|modest sized|medium size|moderate|middle sized|midsize|"
        "standard sized|ordinary sized|average|mid range|medium scale"
    ),
    "large": _z(
        "large|big|huge|giant|enormous|massive|sizable|hefty|oversized|great big|jumbo|immense|"
        "mammoth|colossal|bulky|king sized|whopping|hulking|gigantic|sizeable|outsized|"
        "supersized|monster|titanic|mighty|mega|ample|substantial|burly|tremendous|monumental|"
        "prodigious|largish|biggish|jumbo sized"
    ),
}
#: Degree adverbs, used with a plain small/large word ("a rather small star").
SIZE_DEGREE = _z(
    "very|rather|quite|fairly|really|pretty|somewhat|relatively|comparatively|extremely|"
    "particularly|especially|remarkably|notably|decidedly|reasonably|exceptionally|incredibly|"
    "unusually|strikingly|surprisingly|truly|exceedingly|awfully|terribly|super|ever so"
)
SIZE_DEGREE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big", "huge")}
#: Size after the noun ("a star of medium size").
SIZE_POST = {
    "small": _z(
        "of small size|of tiny proportions|of diminutive size|of modest dimensions|"
        "of small stature|of slight build|of very small size|on the small side"
    ),
    "medium": _z(
        "of medium size|of average size|of moderate size|of middling size|of modest size|"
        "of medium proportions|of average proportions|of middling stature|of intermediate size|"
        "of medium stature"
    ),
    "large": _z(
        "of large size|of great size|of considerable size|of generous size|of large proportions|"
        "of enormous size|of impressive size|of grand proportions|of large stature|"
        "on the large side|of ample size|of substantial size"
    ),
}

# --------------------------------------------------------------------------- counts
#: Before a noun: how many (exactly) of what the rest of the phrase says there are.
COUNT_FORMS = {
    1: _z("one|a single|a lone|just one|a solitary|only one|exactly one|one single|a sole"),
    2: _z("two|a pair of|a couple of|exactly two|just two|a duo of|a brace of|a twosome of"),
    3: _z(
        "three|a trio of|a set of three|a group of three|exactly three|a triad of|"
        "a triplet of|a threesome of"
    ),
    4: _z(
        "four|a set of four|a group of four|a quartet of|exactly four|a foursome of|a quadruplet of"
    ),
}
#: With a definite plural ("the two stars", "both stars", "all three stars").
DEFINITE_COUNTS = {
    2: _z("the two|both|both the|the pair of"),
    3: _z("the three|all three|all three of the"),
    4: _z("the four|all four|all four of the"),
}
#: "none of these": count 0, for colours or categories a scene does not have.
NONE_FORMS = _z("no|not a single|not one")
#: Words the parser reads as a count though the grammar never writes them (models may).
EXTRA_COUNTS = {"zero": 0, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
                "many": None, "several": None}  # fmt: skip
TOTAL_SUFFIX = _z("in total|altogether|in all|all told|overall|in number")

# --------------------------------------------------------------------------- relations
#: Relation type -> phrases (between a subject and an object noun phrase).
RELATIONS = {
    "left": _z(
        "to the left of|left of|on the left of|on the left side of|west of|to the west of|"
        "further left than|farther left than|more to the left than|on the left hand side of|"
        "leftward of|to the left side of|leftwards of|off to the left of|"
        "on the western side of|further west than"
    ),
    "right": _z(
        "to the right of|right of|on the right of|on the right side of|east of|to the east of|"
        "further right than|farther right than|more to the right than|"
        "on the right hand side of|rightward of|to the right side of|rightwards of|"
        "off to the right of|on the eastern side of|further east than"
    ),
    "above": _z(
        "above|over|higher than|higher up than|north of|to the north of|further up than|"
        "farther up than|up above|on a higher level than|northward of|further north than|"
        "up from|higher up from"
    ),
    "below": _z(
        "below|under|beneath|underneath|lower than|lower down than|south of|to the south of|"
        "further down than|farther down than|down below|on a lower level than|southward of|"
        "further south than|down from|lower down from"
    ),
    "directly_above": _z(
        "directly above|straight above|right above|vertically above|squarely above|"
        "immediately above|exactly above"
    ),
    "directly_below": _z(
        "directly below|straight below|right below|directly beneath|directly under|"
        "squarely below|right underneath|immediately below|exactly below"
    ),
    "beside": _z(
        "next to|beside|alongside|right next to|adjacent to|by the side of|"
        "immediately next to|just beside|hard by|cheek by jowl with"
    ),
    "level": _z(
        "level with|in the same row as|on the same level as|at the same height as|"
        "on a level with|at the height of"
    ),
    "aligned": _z("in the same column as|vertically aligned with|in a column with"),
    "near": _z(
        "near|close to|near to|not far from|in the vicinity of|in the neighbourhood of|"
        "within reach of|a short distance from"
    ),
    "far": _z(
        "far from|far away from|a long way from|at a distance from|well away from|"
        "distant from|remote from|well apart from|across the picture from"
    ),
    "diagonal": _z("diagonal to|diagonally across from|on a diagonal from|diagonally from"),
    "larger": _z(
        "bigger than|larger than|wider than|taller than|broader than|"
        "greater in size than|bulkier than|more massive than|chunkier than"
    ),
    "smaller": _z(
        "smaller than|tinier than|narrower than|shorter than|more compact than|"
        "less bulky than|slimmer than|littler than|less massive than"
    ),
    "same_size": _z(
        "the same size as|as big as|as large as|equal in size to|just as big as|"
        "identical in size to|of the same size as|as small as|matching the size of"
    ),
    "same_colour": _z(
        "the same colour as|the same color as|in the same colour as|"
        "matching the colour of|identical in colour to|of the same colour as|"
        "the same shade as|in the same shade as"
    ),
    "diff_colour": _z(
        "a different colour from|a different colour than|a different color from|"
        "coloured differently from|in a different colour from|"
        "a different shade from|not the same colour as"
    ),
}
#: "the star is between the ring and the moon" (or "... flanked by ...").
BETWEEN = _z(
    "between|in between|midway between|halfway between|sandwiched between|flanked by|"
    "wedged between|squeezed between|in the space between|in the gap between"
)

# --------------------------------------------------------------------------- places
#: Region -> (column, row) it requires (None: any); the grid has 3 columns and 3 rows.
REGIONS = {
    "top_left": (0, 0), "top_right": (2, 0), "bottom_left": (0, 2), "bottom_right": (2, 2),
    "top": (None, 0), "bottom": (None, 2), "left": (0, None), "right": (2, None),
    "centre": (1, 1), "top_centre": (1, 0), "bottom_centre": (1, 2), "left_middle": (0, 1),
    "right_middle": (2, 1), "middle_row": (None, 1), "middle_column": (1, None),
}  # fmt: skip


def _corner(v: str, vv: str, h: str, compass: str) -> Zipf:
    return _z(
        f"in the {v} {h} corner|in the {vv} {h} corner|at the {v} {h}|in the {v} {h}|"
        f"in the {vv} {h}|near the {v} {h} corner|in the {compass} corner|"
        f"up in the {v} {h} corner|tucked into the {v} {h} corner|at the {vv} {h}|"
        f"in the {v} {h} area|in the {vv} {h} quadrant|in the {v} {h} corner of the picture|"
        f"in the {v} {h} corner of the image|in the {vv} {h} part of the frame|"
        f"toward the {v} {h} corner|in the {v} {h} region|in the {vv} {h} section|"
        f"in the extreme {v} {h}|in the {v} {h} portion|in the far {v} {h} corner"
    )


def _side(s: str, compass: str, most: str) -> Zipf:
    return _z(
        f"on the {s}|on the {s} side|at the {s}|in the {s} column|towards the {s}|"
        f"on the far {s}|on the {s} hand side|in the {s} part|in the {s} half|"
        f"near the {s} edge|in the {compass} part|over on the {s}|"
        f"on the {s} side of the picture|in the {s} half of the image|"
        f"on the {s} side of the frame|toward the {s}|in the {s} portion|in the {s} section|"
        f"in the {most} column|along the {s} edge|in the {s} region|at the far {s}|"
        f"in the {s} third|off to the {s}"
    )


def _row(s: str, other: str, compass: str, most: str, low: str) -> Zipf:
    return _z(
        f"at the {s}|near the {s}|in the {s} row|in the {other} part|towards the {s}|"
        f"along the {s}|near the {s} edge|in the {other} half|in the {s} third|"
        f"in the {compass} part|at the {s} of the picture|in the {other} part of the image|"
        f"along the {s} of the frame|toward the {s}|in the {s} portion|in the {other} section|"
        f"in the {most} row|at the very {s}|in the {other} region|along the {s} edge|{low}"
    )


POSITIONS = {  # region -> phrases after a noun ("a star in the top left corner")
    "top_left": _corner("top", "upper", "left", "northwest"),
    "top_right": _corner("top", "upper", "right", "northeast"),
    "bottom_left": _corner("bottom", "lower", "left", "southwest"),
    "bottom_right": _corner("bottom", "lower", "right", "southeast"),
    "top": _row("top", "upper", "northern", "topmost", "up top|high up"),
    "bottom": _row("bottom", "lower", "southern", "bottommost", "down low|low down"),
    "left": _side("left", "western", "leftmost"),
    "right": _side("right", "eastern", "rightmost"),
    "centre": _z(
        "in the middle|in the centre|in the center|at the centre|at the center|"
        "in the very middle|in the dead centre|right in the middle|smack in the middle|"
        "in the central area|in the middle of the picture|in the centre of the image|"
        "at the center of the frame|in the central square|at the midpoint of the picture|"
        "in the central region|dead centre|bang in the middle|in the exact centre"
    ),
    "top_centre": _z(
        "at the top centre|at the top center|in the top middle|at the top in the middle|"
        "in the middle of the top row|at the centre of the top row|top and centre"
    ),
    "bottom_centre": _z(
        "at the bottom centre|at the bottom center|in the bottom middle|"
        "at the bottom in the middle|in the middle of the bottom row|"
        "at the centre of the bottom row|bottom and centre"
    ),
    "left_middle": _z(
        "in the middle of the left side|halfway down the left side|on the left at mid height|"
        "midway down the left edge"
    ),
    "right_middle": _z(
        "in the middle of the right side|halfway down the right side|"
        "on the right at mid height|midway down the right edge"
    ),
    "middle_row": _z(
        "in the middle row|halfway up|halfway down|at mid height|at middle height|"
        "in the central row|at half height"
    ),
    "middle_column": _z("in the middle column|halfway across|in the central column|midway across"),
}

# --------------------------------------------------------------------------- arrangements
#: Property of a set of objects ("four shapes in a row", "two stars of different colours").
ARRANGEMENTS = {
    "row": _z(
        "in a row|in a line|in a horizontal line|lined up in a row|lined up horizontally|"
        "level with each other|arranged in a row|all in one row|in a straight row|"
        "arranged horizontally|in a neat row|in a tidy row|in an orderly row|in a single row|"
        "in a horizontal row|along one line"
    ),
    "row_adjacent": _z(
        "side by side|next to each other|beside each other|"
        "right next to each other|shoulder to shoulder|alongside each other"
    ),
    "column": _z(
        "in a column|one above the other|stacked vertically|in a vertical line|"
        "arranged vertically|lined up vertically|in a vertical column|in a straight column|"
        "in a vertical stack|one below the other|in a single column"
    ),
    "diagonal": _z(
        "along a diagonal|in a diagonal line|arranged diagonally|on a diagonal|"
        "in a diagonal row|along a slanting line"
    ),
    "same_colour": _z(
        "all the same colour|all in the same colour|of the same colour|in matching colours|"
        "all in one colour|sharing one colour|identically coloured|all the same color|"
        "of one colour|of a single colour|matching in colour"
    ),
    "diff_colour": _z(
        "in different colours|of different colours|each in a different colour|"
        "in various colours|in assorted colours|in a mix of colours|all differently coloured|"
        "in different colors|in contrasting colours|in differing colours|in distinct colours|"
        "in separate colours|in mismatched colours"
    ),
    "same_size": _z(
        "all the same size|of equal size|of the same size|equally sized|identical in size|"
        "of uniform size|matching in size|all of one size|of equal dimensions|"
        "of matching size|of similar size|of identical size"
    ),
    "diff_size": _z(
        "of different sizes|in different sizes|in various sizes|in assorted sizes|"
        "of varying sizes|in a range of sizes|each a different size|of differing sizes|"
        "of mixed sizes|in mixed sizes|of unequal sizes"
    ),
    "same_kind": _z(
        "all of the same kind|of the same type|all alike in shape|of one kind|"
        "all the same shape|of a single kind|identical in shape"
    ),
    "diff_kind": _z(
        "all different|of different kinds|of various kinds|of assorted types|"
        "each of a different kind|in different shapes|of different shapes|of mixed kinds|"
        "of mixed shapes|all unique|of differing shapes"
    ),
}
#: "and nothing else": the caption has named every object in the picture.
EXHAUSTIVE = _z(
    "and nothing else|and nothing more|and no other shapes|and no other objects|"
    "but nothing else|with nothing else around|and nothing else besides|"
    "with nothing else in the picture|and no other items|and that is all|"
    "and nothing else at all|with no other shapes present|and no other figures"
)
EXHAUSTIVE_ONE = _z("on its own|by itself|all alone|all on its own|alone|all by itself")
EXHAUSTIVE_MANY = _z("on their own|by themselves|all on their own|alone|all by themselves")
#: "from left to right a star then a ring": each object left of (above) the next.
ORDERS = {
    "left_to_right": _z(
        "from left to right|going from left to right|reading from left to right|"
        "left to right|from the left to the right|moving from left to right|"
        "scanning from left to right"
    ),
    "top_to_bottom": _z(
        "from top to bottom|going from top to bottom|reading from top to bottom|"
        "top to bottom|from the top down|moving from top to bottom|"
        "scanning from top to bottom"
    ),
}
SEQUENCE = _z("then|and then|followed by|and after that|and next|next comes|after which comes")
SEQUENCE_LAST = _z("and finally|and lastly|and then|followed by|and last of all|and at the end")

# --------------------------------------------------------------------------- clause words
#: Verbs that link a subject to a place, a relation or an attribute: (singular, plural).
VERBS = _pairs(
    "is/are|sits/sit|lies/lie|is placed/are placed|is positioned/are positioned|rests/rest|"
    "is located/are located|appears/appear|stands/stand|is situated/are situated|"
    "is drawn/are drawn|is set/are set|is found/are found|can be seen/can be seen|"
    "hovers/hover|floats/float|is sitting/are sitting|is shown/are shown|"
    "is resting/are resting|is perched/are perched|is nestled/are nestled|"
    "is visible/are visible|is depicted/are depicted|is displayed/are displayed|"
    "is pictured/are pictured|is lying/are lying|is floating/are floating|"
    "is hovering/are hovering|is standing/are standing|is rendered/are rendered|"
    "is sketched/are sketched|is featured/are featured|is present/are present|"
    "is stationed/are stationed|is sited/are sited|is lodged/are lodged|is poised/are poised|"
    "is settled/are settled|is tucked/are tucked|is printed/are printed|is put/are put|"
    "is to be found/are to be found|is to be seen/are to be seen|is seen/are seen|"
    "is parked/are parked|is anchored/are anchored|is planted/are planted"
)
#: Verbs before an attribute ("the star is red", "the star looks small").
COPULAS = _pairs(
    "is/are|appears/appear|looks/look|seems/seem|appears to be/appear to be|"
    "seems to be/seem to be|looks to be/look to be|turns out to be/turn out to be"
)
#: Optional adverbs between such a verb and what follows ("sits neatly above").
ADVERBS = _z(
    "clearly|neatly|plainly|visibly|distinctly|obviously|evidently|noticeably|simply|quietly|"
    "calmly|comfortably|snugly|tidily|cleanly"
)
PRONOUNS = _z("that|which")
#: Joining noun phrases: "a star and a ring", "a star as well as a ring".
CONJUNCTIONS = _z(
    "and|as well as|along with|together with|and also|in addition to|"
    "accompanied by|joined by|and additionally"
)
#: Joining two clauses.
CLAUSE_JOINS = _z("and|while|whereas|and also|but|whilst|and meanwhile")

# --------------------------------------------------------------------------- frames
FRAME_NOUNS = _z(
    "picture|image|drawing|illustration|graphic|scene|sketch|rendering|diagram|depiction|"
    "composition|artwork|cartoon|design|view|clip art image|vector graphic|tableau|layout|"
    "frame|canvas|panel|render|visual|computer graphic|rendered image|generated image|"
    "synthetic image|test image|sample image|example picture|digital picture|vector image|"
    "clipart|infographic|artboard|bitmap|raster image|still|thumbnail|card|slide"
)
FRAME_ADJECTIVES = _z(
    "simple|plain|flat|minimal|clean|basic|digital|computer generated|minimalist|neat|tidy|"
    "uncluttered|sparse|schematic|stylised|stylized|crisp|synthetic|abstract|vector|"
    "cartoon style|flat style|geometric|simplistic|elementary|rudimentary|orderly|spare|"
    "understated|simple looking|clean looking|neat looking|primitive|artificial|machine made|"
    "procedurally generated|randomly generated|automatically generated|"
    "algorithmically generated|computer drawn|digitally drawn|digitally rendered|vector drawn|"
    "programmatically drawn|flat coloured|low detail|high contrast|anti aliased|smooth edged|"
    "sharp edged|crisp edged|shadowless|flat shaded|gradient free|textureless|borderless|"
    "clip art style|emoji style|flat design|poster style|infographic style"
)
#: After "<a> <frame noun>" and before the objects: "a picture of", "an image showing".
FRAME_LINKS = _z(
    "of|showing|with|depicting|featuring|containing|displaying|presenting|portraying|"
    "illustrating|made up of|consisting of|composed of|comprising|in which we see|"
    "where we can see|holding|offering|revealing|showcasing|with just|bearing|"
    "where one can see|in which one sees"
)
FRAME_VERBS = _z(
    "shows|depicts|contains|features|includes|presents|displays|portrays|illustrates|has|"
    "holds|showcases|reveals|offers|comprises|is made up of|consists of|exhibits|captures|"
    "shows us|gives us|presents us with|puts on show|is home to|lays out|sets out"
)
#: Before the objects as a sentence: "here we can see a red star".
SEE_OPENERS = _z(
    "we can see|here we can see|here we see|you can see|we see|here you can see|"
    "we are looking at|we are shown|one can see|at a glance we see|the viewer can see|"
    "looking closely we see|what we have here is|i can see|i see|we notice|we observe|"
    "one notices|you will notice|we are presented with|we are given|we behold|one sees|"
    "you see|the eye falls on|we can make out|one can make out|we can pick out|"
    "we can identify|we can distinguish|the picture lets us see|we can clearly see|"
    "we can easily see"
)
#: "<opener> is|are <objects>": agree in number with the first noun phrase.
AGREEING_OPENERS = _z(
    "there {v}|here {v}|pictured here {v}|shown here {v}|depicted here {v}|visible here {v}|"
    "featured here {v}|on display {v}|drawn here {v}|on show {v}|presented here {v}|"
    "illustrated here {v}|included here {v}|to be seen here {v}"
)
#: Before a clause: "in this picture the star is above the ring".
CLAUSE_PREFIXES = _z(
    "in this picture|in the image|in this drawing|here|in this illustration|in the scene|"
    "looking at the image|as we can see|as the picture shows|in the picture|in this graphic|"
    "within the frame|on the canvas|in this image|as shown|in the drawing|at first glance|"
    "looking closely|upon inspection|on closer inspection|from what we can see|as can be seen|"
    "as is visible|in this rendering|in this sketch|in the illustration|within this image|"
    "inside the frame|in this composition|in the artwork|as we see|as you can see|"
    "in this particular picture"
)
#: After "there is ..." ("there is a red star in this picture").
THERE_PLACES = _z(
    "in this picture|in the image|in this drawing|in the picture|in this image|in the scene|"
    "on the canvas|in this illustration|within the frame|in the frame|on the page|"
    "in the composition|in this scene|in the artwork|in this sketch"
)
#: Always true of every picture (white background, nothing else drawn).
ENDINGS = _z(
    "on a white background|on a plain white background|against a white backdrop|"
    "against a blank white background|on a blank canvas|set against plain white|"
    "on an empty white background|on a clean white surface|with a white background|on white|"
    "in an otherwise empty picture|with plenty of white space|surrounded by white space|"
    "with lots of empty space|on a bare white background|in front of a white background|"
    "on a plain backdrop|against an empty background|on a blank white page|"
    "with an empty white background|on a pristine white background|"
    "on a snow white background|on a pure white background|on a bright white background|"
    "on a spotless white background|on a flat white background|"
    "with a lot of negative space|with ample white space|with nothing in the background|"
    "on a featureless white background|against a clean backdrop|"
    "on an uncluttered white backdrop|set on white|placed on white|in an empty white space|"
    "on a plain canvas|against a white void|on a white field|with a clean white backdrop"
)
