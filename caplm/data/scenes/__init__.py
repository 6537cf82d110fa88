"""A second generated caption dataset: pictures of icons, and captions in a rich language.

Like ``shapes`` it needs no files and no network, is seeded and cached, and every caption is
true of its picture. Its pictures are kept simple (16 icon categories, 7 colours, 3 sizes,
up to 4 objects in the cells of a 3 x 3 grid, on white), but its captions are not: over
1,000 word types with a long-tailed frequency (synonyms and paraphrases drawn with Zipf
weights), 8-25 words, with relative clauses, coordination, agreement, exact counts, spatial
relations, comparisons, orders and arrangements. A small caption set does not teach that
language; its LM corpora do. The parts:

- ``lexicon``: what can be in a picture and every word and phrase for it;
- ``settings``: ``ScenesConfig`` (what determines a dataset);
- ``scene``: sampling scenes, and the predicates that define what is true of one;
- ``grammar``: captions of a scene, true by construction;
- ``render``: drawing a scene;
- ``dataset``: the cached dataset, and captions of extra scenes (the in-domain LM corpus);
- ``news``: an out-of-domain LM corpus (news-wire sentences sharing part of the vocabulary);
- ``truth``: reading a (generated) caption's claims and checking them against a scene;
- ``stats``: vocabulary statistics (types, hapaxes, Zipf slope, lengths).
"""

from caplm.data.scenes.dataset import (
    extra_scene_captions,
    extra_scenes,
    image_id,
    make_scenes_dataset,
    scene_records,
)
from caplm.data.scenes.grammar import MAX_WORDS, MIN_WORDS, describe_scene
from caplm.data.scenes.lexicon import CATEGORIES, COLOURS, SIZES
from caplm.data.scenes.news import news_sentences
from caplm.data.scenes.render import render_scene
from caplm.data.scenes.scene import sample_scene
from caplm.data.scenes.settings import GENERATOR_VERSION, ScenesConfig, dataset_key
from caplm.data.scenes.stats import as_tokens, statistics
from caplm.data.scenes.truth import SCORE_KEYS, check, grounding, grounding_scores, parse

__all__ = [
    "CATEGORIES",
    "COLOURS",
    "GENERATOR_VERSION",
    "MAX_WORDS",
    "MIN_WORDS",
    "SCORE_KEYS",
    "SIZES",
    "ScenesConfig",
    "as_tokens",
    "check",
    "dataset_key",
    "describe_scene",
    "extra_scene_captions",
    "extra_scenes",
    "grounding",
    "grounding_scores",
    "image_id",
    "make_scenes_dataset",
    "news_sentences",
    "parse",
    "render_scene",
    "sample_scene",
    "scene_records",
    "statistics",
]
