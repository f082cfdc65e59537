"""Search over residual-compressed token vectors in PLAID's stages (Santhanam et al., 2022,
"PLAID"), with the first candidate scoring done on the inverted lists as in WARP (Scheerer
et al., 2025), so that it reads no token outside the probed cells.

For one query of q_len token vectors:

1. candidate generation: each query token probes its `ncells` most similar centroids (cells
   scoring below `centroid_score_threshold` are skipped); the candidates are the documents
   in those cells' inverted lists;
2. centroid interaction, twice: first on the inverted lists: a candidate's approximate score
   sums, over query tokens, the best score of a probed cell the document uses or, where it
   uses none, the best score of an unprobed cell (an upper bound of what that token could
   contribute); the best `ndocs` go on. Then PLAID's full centroid interaction: MaxSim with
   every token of those documents replaced by its centroid; the best `ndocs / 4` (at least k)
   go on;
3. exact MaxSim on the survivors' vectors decompressed from centroid + residual; top k.

k is never capped: when fewer candidates than k turn up (a selective filter, a small index),
the probe widens until k are found or every cell is probed; when no more documents pass the
filters than stage 3 would rerank anyway, stages 1-2 are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from colbert_retriever.errors import ConfigError, IndexCorruptError
from colbert_retriever.stores.folder.codec import ResidualCodec
from colbert_retriever.stores.folder.segment import Compressed, Segment

_TOKENS_PER_STEP = 4096
_WORKERS = min(4, os.cpu_count() or 1)  # threads for a batch of queries


@dataclass(frozen=True)
class PlaidParams:
    """Search knobs. `for_k` gives the defaults for a k; any field can be overridden.

    Attributes:
        ncells: Centroids probed per query token.
        centroid_score_threshold: Probed cells scoring below this are skipped (None: none).
        ndocs: Candidates kept by the first centroid interaction; a quarter of them (at
            least k) are decompressed and scored exactly.
    """

    ncells: int
    centroid_score_threshold: float | None
    ndocs: int

    def __post_init__(self) -> None:
        for name in ("ncells", "ndocs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                msg = f"{name} must be a positive integer, got {value!r}"
                raise ConfigError(msg)

    @classmethod
    def for_k(cls, k: int) -> PlaidParams:
        """Defaults that grow with k in PLAID's three tiers (k <= 10, <= 100, more); tuned on
        SciFact, where they keep nDCG@10 at the exact index's (benchmarks/README.md)."""
        if k <= 10:
            return cls(ncells=8, centroid_score_threshold=None, ndocs=128)
        if k <= 100:
            return cls(ncells=8, centroid_score_threshold=None, ndocs=512)
        return cls(ncells=16, centroid_score_threshold=None, ndocs=max(4 * k, 2048))


def plaid_search(
    codec: ResidualCodec,
    segments: Sequence[Segment],
    queries: Sequence[np.ndarray],
    allowed: Sequence[np.ndarray],
    *,
    k: int,
    params: PlaidParams,
    dtype: torch.dtype = torch.float32,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Top-k per query over compressed segments.

    Args:
        codec: The index's centroids and residual codewords.
        segments: Segments with `compressed` arrays.
        queries: One (n_tokens, dim) float32 array per query.
        allowed: Per segment, (n_rows,) bool: live rows that pass the filters.
        k: Results per query.
        params: Stage settings.
        dtype: The type of the exact rerank's residual matmul (`precision.scoring_dtype`).

    Returns:
        Per query, (scores float32, positions int64) best first, where a position numbers
        documents across segments in order (as in exact search).
    """
    bases = np.zeros(len(segments) + 1, dtype=np.int64)
    np.cumsum([len(seg.offsets) - 1 for seg in segments], out=bases[1:])
    allowed_positions = np.concatenate([bases[i] + np.flatnonzero(mask) for i, mask in enumerate(allowed)])
    ndocs = max(params.ndocs, k)
    centroids = torch.from_numpy(codec.centroids)

    def search_one(query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # stage 1, one query at a time (2 MB each at 16k centroids), in both layouts: tokens
        # as rows for the probe and stage 2, centroids as rows for stage 3's gathers (torch
        # transposes 2x faster than numpy). In torch, as every matmul of a search: numpy's
        # OpenBLAS threads spin after a call and slow torch's thread pool 2-3x for a while.
        by_centroid = centroids @ torch.from_numpy(query.astype(np.float32)).T  # (n_centroids, q_len)
        centroid_scores = by_centroid.T.contiguous().numpy()
        if len(allowed_positions) <= ndocs:
            survivors = allowed_positions
        else:
            needed = min(k, len(allowed_positions))
            survivors = _candidates(centroid_scores, segments, bases, allowed, params, ndocs, needed)
        n_exact = max(k, ndocs // 4)
        if len(survivors) > n_exact:
            approx = _full_interaction(centroid_scores, segments, bases, survivors)
            survivors = survivors[_top(approx, n_exact)]
        scores = _rerank(codec, segments, bases, query, by_centroid.numpy(), survivors, dtype)
        order = _top(scores, k)
        order = order[np.argsort(-scores[order], kind="stable")]
        return scores[order], survivors[order]

    if len(queries) < 2 or _WORKERS < 2:
        return [search_one(query) for query in queries]
    # Most of a query's time is numpy work that releases the GIL: queries in parallel threads
    with ThreadPoolExecutor(_WORKERS) as pool:
        return list(pool.map(search_one, queries))


def _candidates(
    centroid_scores: np.ndarray,
    segments: Sequence[Segment],
    bases: np.ndarray,
    allowed: Sequence[np.ndarray],
    params: PlaidParams,
    ndocs: int,
    needed: int,
) -> np.ndarray:
    """Stages 1-2: positions of the best `ndocs` candidates by centroid interaction,
    widening the probe until at least `needed` candidates are found."""
    n_centroids = centroid_scores.shape[1]
    ncells = min(params.ncells, n_centroids)
    while True:
        cells, cell_scores, unprobed = _probe(centroid_scores, ncells, params.centroid_score_threshold)
        approx, positions = [], []
        for segment, base, mask in zip(segments, bases[:-1], allowed, strict=True):
            seg_approx, rows = _interaction(segment, cells, cell_scores, unprobed, mask)
            approx.append(seg_approx)
            positions.append(base + rows)
        approx_all, positions_all = np.concatenate(approx), np.concatenate(positions)
        if len(positions_all) >= needed or ncells >= n_centroids:
            return positions_all[_top(approx_all, ndocs)]
        ncells = min(2 * ncells, n_centroids)


def _probe(
    centroid_scores: np.ndarray, ncells: int, threshold: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stage 1: per query token its probed cells (flat, token by token), their scores, and
    (q_len,) the best score among its unprobed cells."""
    q_len, n_centroids = centroid_scores.shape
    width = min(ncells + 1, n_centroids)
    best = np.argpartition(centroid_scores, n_centroids - width, axis=1)[:, n_centroids - width :]
    best_scores = np.take_along_axis(centroid_scores, best, axis=1)
    order = np.argsort(-best_scores, axis=1)
    best, best_scores = np.take_along_axis(best, order, axis=1), np.take_along_axis(best_scores, order, axis=1)
    probed = np.zeros_like(best, dtype=bool)
    probed[:, :ncells] = True
    if threshold is not None:
        probed &= best_scores >= threshold
    # the best unprobed cell: the first not probed in score order; every cell probed: never used
    first_unprobed = np.where(probed.all(axis=1), width - 1, np.argmin(probed, axis=1))
    unprobed = best_scores[np.arange(q_len), first_unprobed]
    tokens = np.broadcast_to(np.arange(q_len)[:, None], best.shape)
    return np.stack([tokens[probed], best[probed]]), best_scores[probed], unprobed.astype(np.float32)


def _interaction(
    segment: Segment, cells: np.ndarray, cell_scores: np.ndarray, unprobed: np.ndarray, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Stage 2 on one segment: (approximate scores, rows) of the allowed documents found."""
    compressed = segment.compressed
    assert compressed is not None, "PLAID runs on compressed segments"
    tokens, ids = cells
    known = ids < len(compressed.ivf_offsets) - 1  # cells added after this segment was written are empty here
    tokens, ids, scores = tokens[known], ids[known], cell_scores[known]
    starts, lengths = compressed.ivf_offsets[ids], compressed.ivf_offsets[ids + 1] - compressed.ivf_offsets[ids]
    local = np.cumsum(lengths) - lengths
    docs = compressed.ivf_docs[np.repeat(starts - local, lengths) + np.arange(lengths.sum())]
    if len(docs) and (docs.min() < 0 or docs.max() >= segment.n_rows):  # a negative row would not fail
        msg = f"segment {segment.name}: ivf_docs.npy refers to a document row out of range"
        raise IndexCorruptError(msg)
    keep = allowed[docs]
    rows, inverse = np.unique(docs[keep], return_inverse=True)
    best = np.tile(unprobed, (len(rows), 1))  # (n_found, q_len)
    np.maximum.at(best, (inverse, np.repeat(tokens, lengths)[keep]), np.repeat(scores, lengths)[keep])
    return best.sum(axis=1), rows.astype(np.int64)  # uint16 in segments of up to 65,536 rows


def _full_interaction(
    centroid_scores: np.ndarray, segments: Sequence[Segment], bases: np.ndarray, positions: np.ndarray
) -> np.ndarray:
    """Stage 2, second pass: MaxSim with every token of each document replaced by its centroid."""
    scores = np.empty(len(positions), dtype=np.float32)
    for compressed, where, tokens, local in _steps(segments, bases, positions):
        # (q_len, n_tokens), then a max per document along rows: 5x faster than along columns
        sims = np.take(centroid_scores, compressed.codes[tokens], axis=1)
        scores[where] = np.maximum.reduceat(sims, local[:-1], axis=1).sum(axis=0)
    return scores


def _rerank(
    codec: ResidualCodec,
    segments: Sequence[Segment],
    bases: np.ndarray,
    query: np.ndarray,
    by_centroid: np.ndarray,
    positions: np.ndarray,
    dtype: torch.dtype,
) -> np.ndarray:
    """Stage 3: exact MaxSim of `query` against each position's decompressed vectors.

    q . decode(t) = (q . centroid + q . residual) / norm: the first term is a row of
    `by_centroid` ((n_centroids, q_len) centroid scores), the second a matmul with the
    looked-up residual values (in `dtype`: float32 where half math is emulated), the norm is
    stored; the vectors are never rebuilt.
    Tokens are rows throughout ((n_tokens, q_len)): gathers read whole rows.
    """
    values = np.float16 if dtype == torch.float16 else np.float32
    typed_query = torch.from_numpy(np.ascontiguousarray(query.T)).to(dtype)  # (dim, q_len)
    scores = np.empty(len(positions), dtype=np.float32)
    for compressed, where, tokens, local in _steps(segments, bases, positions):
        sims = by_centroid[compressed.codes[tokens]]  # (n_tokens, q_len)
        residuals = torch.from_numpy(codec.residual_values(compressed.residuals[tokens], values))
        sims += (residuals @ typed_query).float().numpy()
        sims /= compressed.norms[tokens].astype(np.float32)[:, None]
        scores[where] = np.maximum.reduceat(sims, local[:-1], axis=0).sum(axis=1)
    return scores


def _steps(
    segments: Sequence[Segment], bases: np.ndarray, positions: np.ndarray
) -> Iterator[tuple[Compressed, np.ndarray, np.ndarray, np.ndarray]]:
    """The documents at `positions`, a few thousand tokens at a time (small arrays stay in
    the allocator's cache: 2x faster than one large step): (their segment's compressed
    arrays, indices into `positions`, token indices, their offsets)."""
    seg_of = np.searchsorted(bases, positions, side="right") - 1
    for seg_no in np.unique(seg_of):
        segment, where = segments[seg_no], np.flatnonzero(seg_of == seg_no)
        assert segment.compressed is not None, "PLAID runs on compressed segments"
        done = 0
        for rows in segment.chunks(positions[where] - bases[seg_no], _TOKENS_PER_STEP):
            yield segment.compressed, where[done : done + len(rows)], *segment.tokens(rows)
            done += len(rows)


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    if len(scores) <= n:
        return np.arange(len(scores))
    return np.argpartition(-scores, n - 1)[:n]
