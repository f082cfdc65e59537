"""Exact MaxSim over every live document, in bounded memory.

Documents are scored in chunks of whole documents holding at most
`SearchConfig.max_scores_per_chunk / (n_queries * q_len)` tokens, keeping a running top-k
per query, so memory does not grow with the corpus.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from colbert_retriever.config import SearchConfig
from colbert_retriever.devices import resolve_device, scoring_dtype
from colbert_retriever.maxsim import maxsim, pad_queries
from colbert_retriever.stores.folder.segment import Segment

_ROWS_PER_BLOCK = 256


def exact_search(
    segments: Sequence[Segment],
    queries: Sequence[np.ndarray],
    allowed: Sequence[np.ndarray],
    *,
    k: int,
    config: SearchConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k documents per query by exact MaxSim.

    Args:
        segments: The index's segments.
        queries: One (n_tokens, dim) float32 array per query.
        allowed: Per segment, (n_rows,) bool: live rows that pass the filters.
        k: Results per query.
        config: Chunking bounds.

    Returns:
        scores (n_queries, k') float32 and positions (n_queries, k') int64, unsorted, where
        a position numbers documents across segments in order and k' = min(k, allowed).
    """
    # Queries of similar length go together, in blocks of ~256 query-token rows: the matmul
    # stays efficient, padding stays small, and each chunk of documents stays large
    # (max_scores_per_chunk / rows tokens).
    order = sorted(range(len(queries)), key=lambda i: len(queries[i]))
    scores: list[np.ndarray] = [np.empty(0)] * len(queries)
    positions: list[np.ndarray] = [np.empty(0)] * len(queries)
    start = 0
    while start < len(order):
        per_block = max(1, _ROWS_PER_BLOCK // len(queries[order[start]]))
        members = order[start : start + per_block]
        block = pad_queries([queries[i] for i in members])
        block_scores, block_positions = _search_block(segments, block, allowed, k=k, config=config)
        for row, i in enumerate(members):
            scores[i], positions[i] = block_scores[row], block_positions[row]
        start += len(members)
    return np.stack(scores), np.stack(positions)


def _search_block(
    segments: Sequence[Segment], queries: np.ndarray, allowed: Sequence[np.ndarray], *, k: int, config: SearchConfig
) -> tuple[np.ndarray, np.ndarray]:
    n_queries, q_len, _ = queries.shape
    device = resolve_device(config.device)
    dtype = scoring_dtype(config.scoring_dtype, device)
    if dtype == torch.float16:
        queries = queries.astype(np.float16)  # as the vectors are stored: cast once, not per chunk
    best_scores = np.full((n_queries, 0), -np.inf, dtype=np.float32)
    best_positions = np.full((n_queries, 0), -1, dtype=np.int64)
    budget = max(1, config.max_scores_per_chunk // (n_queries * q_len))
    base = 0
    for segment, mask in zip(segments, allowed, strict=True):
        offsets = segment.offsets
        rows = np.flatnonzero(mask)
        ends = offsets[rows + 1]  # token end of each allowed row, ascending
        start = 0
        while start < len(rows):
            # the longest run of rows whose token span fits the budget (at least one row)
            limit = offsets[rows[start]] + budget
            stop = max(start + 1, int(np.searchsorted(ends, limit, side="right")))
            chunk = rows[start:stop]
            first, last = chunk[0], chunk[-1] + 1
            assert segment.embeddings is not None, "exact search runs on exact segments"
            block = segment.embeddings[offsets[first] : offsets[last]]
            spans = offsets[first : last + 1] - offsets[first]
            scores = maxsim(queries, block, spans, dtype, device)[:, chunk - first]
            best_scores, best_positions = _merge_topk(
                best_scores, best_positions, scores, np.broadcast_to(base + chunk, scores.shape), k
            )
            start = stop
        base += len(offsets) - 1
    return best_scores, best_positions


def _merge_topk(
    scores_a: np.ndarray, positions_a: np.ndarray, scores_b: np.ndarray, positions_b: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    scores = np.concatenate([scores_a, scores_b], axis=1)
    positions = np.concatenate([positions_a, positions_b], axis=1)
    if scores.shape[1] <= k:
        return scores, positions
    keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return np.take_along_axis(scores, keep, axis=1), np.take_along_axis(positions, keep, axis=1)
