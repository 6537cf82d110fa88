"""Evaluation measures of the study: caption metrics, perplexity, diversity, retrieval.

Plain functions on numbers and strings (numpy; torch only to batch a model call); the
training code gathers the inputs and prefixes the returned keys for the results file.
"""

from caplm.evaluation.bleu import corpus_bleu4
from caplm.evaluation.coco import caption_metrics, check_java
from caplm.evaluation.diversity import diversity
from caplm.evaluation.perplexity import oov_stats, perplexity_stats
from caplm.evaluation.retrieval import retrieval_metrics, retrieval_ranks, score_matrix

__all__ = [
    "caption_metrics",
    "check_java",
    "corpus_bleu4",
    "diversity",
    "oov_stats",
    "perplexity_stats",
    "retrieval_metrics",
    "retrieval_ranks",
    "score_matrix",
]
