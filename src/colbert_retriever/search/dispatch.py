"""Search dispatch: a filter becomes per-segment masks, the index's kind picks exact MaxSim or
PLAID's stages over the stored rows (passages), and rows become documents: each document is
scored from its passages and comes back with the one that scored best."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

from colbert_retriever.config import SearchConfig, Unit
from colbert_retriever.errors import ConfigError
from colbert_retriever.precision import scoring_dtype
from colbert_retriever.results import Hit
from colbert_retriever.search.codec import ResidualCodec
from colbert_retriever.search.exact import exact_search
from colbert_retriever.search.plaid import PlaidParams, plaid_search
from colbert_retriever.storage.segment import Segment

_WIDEN = 4  # at most this many rows fetched per document wanted; a short search widens by it


def search(
    segments: Sequence[Segment],
    codec: ResidualCodec | None,
    queries: Sequence[np.ndarray],
    *,
    k: int,
    accept: Callable[[Segment], np.ndarray] | None,
    config: SearchConfig,
    unit: Unit = "document",
    passages_per_document: float = 1.0,
) -> list[list[Hit]]:
    """Top-k hits per query over `segments` (compressed with `codec`, or exact if None).

    Args:
        accept: Per segment, its (n_rows,) bool mask of rows that pass the filters
            (`filters.compile_filter`), or None for no filter.
        unit: "document": the k best documents, each scored from its passages
            (`SearchConfig.passage_weights`); "passage": the k best passages.
        passages_per_document: Rows per live document in the index (1.0: rows are documents).
    """
    if unit not in ("document", "passage"):
        msg = f"unit must be 'document' or 'passage', got {unit!r}"
        raise ConfigError(msg)
    allowed = [~seg.deleted & accept(seg) if accept else ~seg.deleted for seg in segments]
    bases = np.zeros(len(segments) + 1, dtype=np.int64)
    np.cumsum([seg.n_rows for seg in segments], out=bases[1:])
    grouped = unit == "document" and passages_per_document > 1
    n_allowed = int(sum(int(mask.sum()) for mask in allowed)) if grouped else 0
    n_rows = k * min(_WIDEN, math.ceil(passages_per_document)) if grouped else k
    while True:  # k documents may need more rows than k: widen until found or every row is in
        found = _rows(segments, codec, queries, allowed, k=k, n_rows=n_rows, config=config)
        ranked: list[list[tuple[float, int]] | None] = [
            _documents(segments, bases, scores, positions, config.passage_weights) if grouped else None
            for scores, positions in found
        ]
        if n_rows >= n_allowed or all(docs is None or len(docs) >= k for docs in ranked):
            return [
                _hits(segments, bases, scores, positions, docs, k=k, n_tokens=len(q))
                for q, (scores, positions), docs in zip(queries, found, ranked, strict=True)
            ]
        n_rows *= _WIDEN


def _rows(
    segments: Sequence[Segment],
    codec: ResidualCodec | None,
    queries: Sequence[np.ndarray],
    allowed: Sequence[np.ndarray],
    *,
    k: int,
    n_rows: int,
    config: SearchConfig,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per query, the best `n_rows` rows: (scores, positions) by exact MaxSim or PLAID."""
    if codec is None:
        scores, positions = exact_search(segments, queries, allowed, k=n_rows, config=config)
        return list(zip(scores, positions, strict=True))
    overrides = {"ncells": config.ncells, "ndocs": config.ndocs}
    params = dataclasses.replace(
        PlaidParams.for_k(k),  # stage sizes for k documents; plaid_search keeps at least n_rows
        **{name: value for name, value in overrides.items() if value is not None},
        centroid_score_threshold=config.centroid_score_threshold,
    )
    return plaid_search(
        codec, segments, queries, allowed, k=n_rows, params=params, dtype=scoring_dtype(config.scoring_dtype)
    )


def _documents(
    segments: Sequence[Segment], bases: np.ndarray, scores: np.ndarray, positions: np.ndarray, weights: Sequence[float]
) -> list[tuple[float, int]]:
    """(document score, position of its best row) per document among the rows found, best
    first. A document's score is the weighted sum of its found passages' scores, best first."""
    found = (positions >= 0) & (scores > -np.inf)
    scores, positions = scores[found], positions[found]
    seg_of = np.searchsorted(bases, positions, side="right") - 1
    firsts = positions.copy()  # each row's document, as the position of its first row
    for seg_no in np.unique(seg_of).tolist():
        mine = seg_of == seg_no
        firsts[mine] = bases[seg_no] + segments[seg_no].first_rows(positions[mine] - bases[seg_no])
    by_document: dict[int, list[tuple[float, int]]] = {}
    for score, position, first in zip(scores.tolist(), positions.tolist(), firsts.tolist(), strict=True):
        by_document.setdefault(first, []).append((score, position))
    out = []
    for passages in by_document.values():
        passages.sort(key=lambda item: -item[0])
        out.append((sum(w * s for w, (s, _) in zip(weights, passages, strict=False)), passages[0][1]))
    out.sort(key=lambda item: -item[0])
    return out


def _hits(
    segments: Sequence[Segment],
    bases: np.ndarray,
    scores: np.ndarray,
    positions: np.ndarray,
    documents: list[tuple[float, int]] | None,
    *,
    k: int,
    n_tokens: int,
) -> list[Hit]:
    """Hits for one query, score descending, ties broken by doc_id then passage. `documents`:
    (document score, best row) pairs; None: each row is its own hit."""
    row_score = dict(zip(positions.tolist(), scores.tolist(), strict=True))
    chosen = (
        documents[:k] if documents is not None else [(s, p) for p, s in row_score.items() if p >= 0 and s > -np.inf]
    )
    found = []
    for score, position in chosen:
        seg_no = int(np.searchsorted(bases, position, side="right")) - 1
        (row,) = segments[seg_no].documents.read([position - int(bases[seg_no])])
        found.append((score, row_score[position], row))
    found.sort(key=lambda item: (-item[0], item[2].doc_id, item[2].passage))
    return [
        Hit(
            doc_id=row.doc_id,
            score=score,
            normalized_score=score / n_tokens,
            rank=rank,
            text=row.text,
            metadata=row.metadata,
            passage=row.passage,
            start=row.start,
            end=row.start + len(row.text),
            passage_score=passage_score,
        )
        for rank, (score, passage_score, row) in enumerate(found[:k], start=1)
    ]
