"""Fusing two scores of the same candidates into one: arrays in, array out, no index.

Each fusion takes every candidate's late-interaction score and its BM25 score (0 where the
candidate has none of the query's words) and returns one score per candidate, higher better.
"""

from __future__ import annotations

import numpy as np

from colbert_retriever.config import SearchConfig


def fuse(late: np.ndarray, lexical: np.ndarray, n_tokens: int, config: SearchConfig) -> np.ndarray:
    """The candidates' scores by `config.fusion` (`late`: raw MaxSim of a query of
    `n_tokens` tokens)."""
    if config.fusion == "rrf":
        return reciprocal_rank(late, lexical, config.rrf_k)
    if config.fusion == "saturated":
        return saturated(late / n_tokens, lexical, config.late_weight, config.saturation)
    return blend(late, lexical, config.late_weight)


def min_max(scores: np.ndarray) -> np.ndarray:
    """`scores` mapped linearly onto [0, 1] (all 0 when they are all equal).

    >>> min_max(np.array([2.0, 4.0, 3.0])).tolist()
    [0.0, 1.0, 0.5]
    """
    if not len(scores) or scores.max() <= scores.min():
        return np.zeros(len(scores))
    return (scores - scores.min()) / (scores.max() - scores.min())


def blend(late: np.ndarray, lexical: np.ndarray, late_weight: float) -> np.ndarray:
    """`late_weight` x min-max(late) + (1 - `late_weight`) x min-max(lexical).

    >>> blend(np.array([10.0, 8.0, 6.0]), np.array([0.0, 3.0, 6.0]), 0.5).tolist()
    [0.5, 0.5, 0.5]
    """
    return late_weight * min_max(late) + (1 - late_weight) * min_max(lexical)


def saturated(late: np.ndarray, lexical: np.ndarray, late_weight: float, saturation: float) -> np.ndarray:
    """`late_weight` x `late` + (1 - `late_weight`) x BM25 / (BM25 + `saturation`): nothing
    depends on the other candidates, so a score means the same in every search (`late` is
    MaxSim over the query's tokens, in [-1, 1]; the BM25 part lies in [0, 1)).

    >>> saturated(np.array([0.5, 0.5]), np.array([0.0, 5.0]), 0.8, 5.0).tolist()
    [0.4, 0.5]
    """
    return late_weight * late + (1 - late_weight) * lexical / (lexical + saturation)


def reciprocal_rank(late: np.ndarray, lexical: np.ndarray, k: int) -> np.ndarray:
    """Sum over both rankings of 1 / (k + rank), rank 1 the best; a candidate without any
    query word (BM25 0) gets nothing from the lexical ranking. Ties share the better rank.

    >>> reciprocal_rank(np.array([3.0, 2.0]), np.array([0.0, 5.0]), 1).tolist()
    [0.5, 0.8333333333333333]
    """
    fused = 1 / (k + _ranks(late))
    matched = lexical > 0
    fused[matched] += 1 / (k + _ranks(lexical[matched]))
    return fused


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Rank of each score, 1 for the highest; equal scores share the better rank."""
    ordered = np.sort(scores)[::-1]
    return np.searchsorted(-ordered, -scores, side="left") + 1.0
