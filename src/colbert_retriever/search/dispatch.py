"""Search dispatch: a filter becomes per-segment masks, the index's kind picks exact MaxSim or
PLAID's stages, and the winning positions become `Hit`s with their documents read."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from colbert_retriever.config import SearchConfig
from colbert_retriever.precision import scoring_dtype
from colbert_retriever.results import Hit
from colbert_retriever.search.codec import ResidualCodec
from colbert_retriever.search.exact import exact_search
from colbert_retriever.search.plaid import PlaidParams, plaid_search
from colbert_retriever.storage.segment import Segment


def search(
    segments: Sequence[Segment],
    codec: ResidualCodec | None,
    queries: Sequence[np.ndarray],
    *,
    k: int,
    accept: Callable[[Segment], np.ndarray] | None,
    config: SearchConfig,
) -> list[list[Hit]]:
    """Top-k hits per query over `segments` (compressed with `codec`, or exact if None).

    Args:
        accept: Per segment, its (n_documents,) bool mask of documents that pass the
            filters (`filters.compile_filter`), or None for no filter.
    """
    allowed = [~seg.deleted & accept(seg) if accept else ~seg.deleted for seg in segments]
    if codec is None:
        scores, positions = exact_search(segments, queries, allowed, k=k, config=config)
        found = list(zip(scores, positions, strict=True))
    else:
        overrides = {"ncells": config.ncells, "ndocs": config.ndocs}
        params = dataclasses.replace(
            PlaidParams.for_k(k),
            **{name: value for name, value in overrides.items() if value is not None},
            centroid_score_threshold=config.centroid_score_threshold,
        )
        found = plaid_search(
            codec, segments, queries, allowed, k=k, params=params, dtype=scoring_dtype(config.scoring_dtype)
        )
    bases = np.zeros(len(segments) + 1, dtype=np.int64)
    np.cumsum([seg.n_documents for seg in segments], out=bases[1:])
    return [
        _hits(segments, bases, row_scores, row_positions, n_tokens=len(q))
        for q, (row_scores, row_positions) in zip(queries, found, strict=True)
    ]


def _hits(
    segments: Sequence[Segment], bases: np.ndarray, scores: np.ndarray, positions: np.ndarray, *, n_tokens: int
) -> list[Hit]:
    """Hits for one query, score descending, ties broken by doc_id."""
    found = []
    for score, position in zip(scores.tolist(), positions.tolist(), strict=True):
        if position < 0 or score == -np.inf:
            continue
        seg_no = int(np.searchsorted(bases, position, side="right")) - 1
        (document,) = segments[seg_no].documents.read([position - int(bases[seg_no])])
        found.append((score, document))
    found.sort(key=lambda item: (-item[0], item[1].doc_id))
    return [
        Hit(
            doc_id=doc.doc_id,
            score=score,
            normalized_score=score / n_tokens,
            rank=rank,
            text=doc.text,
            metadata=doc.metadata,
        )
        for rank, (score, doc) in enumerate(found, start=1)
    ]
