"""Models: the prefix encoder that transfers, the language model, the merge caption
generator, and the batched beam search it generates with."""

from caplm.models.beam_search import beam_search
from caplm.models.caption_generator import CaptionGenerator
from caplm.models.common import constructor_args
from caplm.models.language_model import LanguageModel
from caplm.models.prefix import PrefixEncoder

__all__ = ["CaptionGenerator", "LanguageModel", "PrefixEncoder", "beam_search", "constructor_args"]
