"""Search dispatch: a filter becomes per-segment masks, the index's kind picks exact MaxSim or
PLAID's stages over the stored rows (passages), and rows become documents: each document is
scored from its passages and comes back with the one that scored best. Hybrid and lexical
modes add BM25's candidates and fuse (search/hybrid.py)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

from colbert_retriever.config import Mode, SearchConfig, Unit
from colbert_retriever.precision import scoring_dtype
from colbert_retriever.results import Hit
from colbert_retriever.search import hybrid
from colbert_retriever.search.codec import ResidualCodec
from colbert_retriever.search.exact import exact_search
from colbert_retriever.search.hybrid import Ranked
from colbert_retriever.search.plaid import PlaidParams, plaid_search
from colbert_retriever.storage.segment import Segment
from colbert_retriever.validation import resolve_mode

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
    mode: Mode | None = "late",
    texts: Sequence[str] = (),
    lexical: bool = False,
) -> list[list[Hit]]:
    """Top-k hits per query over `segments` (compressed with `codec`, or exact if None).

    Args:
        accept: Per segment, its (n_rows,) bool mask of rows that pass the filters
            (`filters.compile_filter`), or None for no filter.
        unit: "document": the k best documents, each scored from its passages
            (`SearchConfig.passage_weights`); "passage": the k best passages.
        passages_per_document: Rows per live document in the index (1.0: rows are documents).
        mode: "late" (late interaction), "lexical" (BM25) or "hybrid" (both fused; see
            search/hybrid.py); None: hybrid if `lexical` and `texts` are given, else late.
        texts: The queries' texts (lexical and hybrid modes).
        lexical: Whether the segments hold full-text indexes (the other modes need them).
    """
    mode = resolve_mode(
        mode,
        unit,
        lexical=lexical,
        n_queries=len(queries),
        n_texts=len(texts),
        add_lexical="this index has none; compact(lexical=True) adds one",
    )
    allowed = [~seg.deleted & accept(seg) if accept else ~seg.deleted for seg in segments]
    n = k if mode == "late" else max(k, config.candidates)
    ranked: list[list[Ranked]] = [[] for _ in queries]
    if mode != "lexical":
        ranked = _late(segments, codec, queries, allowed, k=n, unit=unit, config=config, ppd=passages_per_document)
    if mode != "late":  # late's best n become candidates, with BM25's
        grouped = unit == "document"
        ranked = [
            hybrid.rank(segments, codec, q, text, late, allowed, mode=mode, grouped=grouped, n=n, config=config)
            for q, text, late in zip(queries, texts, ranked, strict=True)
        ]
    return [
        _hits(segments, found, k=k, n_tokens=len(q) if mode == "late" else 0)
        for q, found in zip(queries, ranked, strict=True)
    ]


def _late(
    segments: Sequence[Segment],
    codec: ResidualCodec | None,
    queries: Sequence[np.ndarray],
    allowed: Sequence[np.ndarray],
    *,
    k: int,
    unit: Unit,
    config: SearchConfig,
    ppd: float,
) -> list[list[Ranked]]:
    """Per query, its k best documents (or passages: `unit`) by late interaction.
    `ppd`: passages per document in the index."""
    bases = np.zeros(len(segments) + 1, dtype=np.int64)
    np.cumsum([seg.n_rows for seg in segments], out=bases[1:])
    grouped = unit == "document" and ppd > 1
    n_allowed = int(sum(int(mask.sum()) for mask in allowed)) if grouped else 0
    n_rows = k * min(_WIDEN, math.ceil(ppd)) if grouped else k
    while True:  # k documents may need more rows than k: widen until found or every row is in
        found = _rows(segments, codec, queries, allowed, k=k, n_rows=n_rows, config=config)
        ranked = [
            _documents(segments, bases, scores, positions, config.passage_weights) if grouped else None
            for scores, positions in found
        ]
        if n_rows >= n_allowed or all(docs is None or len(docs) >= k for docs in ranked):
            break
        n_rows *= _WIDEN
    out = []
    for (scores, positions), docs in zip(found, ranked, strict=True):
        row_score = dict(zip(positions.tolist(), scores.tolist(), strict=True))
        chosen = docs[:k] if docs is not None else [(s, p) for p, s in row_score.items() if p >= 0 and s > -np.inf]
        out.append([Ranked(score, position, row_score[position], late=score) for score, position in chosen])
    return out


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


def _hits(segments: Sequence[Segment], ranked: Sequence[Ranked], *, k: int, n_tokens: int) -> list[Hit]:
    """The k best of `ranked` as hits, score descending, ties broken by doc_id then passage.
    `n_tokens`: query tokens (normalized_score = score / n_tokens), 0 to leave score as is."""
    bases = np.zeros(len(segments) + 1, dtype=np.int64)
    np.cumsum([seg.n_rows for seg in segments], out=bases[1:])
    found = []
    for item in sorted(ranked, key=lambda item: -item.score)[:k]:
        seg_no = int(np.searchsorted(bases, item.position, side="right")) - 1
        (row,) = segments[seg_no].documents.read([item.position - int(bases[seg_no])])
        found.append((item, row))
    found.sort(key=lambda pair: (-pair[0].score, pair[1].doc_id, pair[1].passage))
    return [
        Hit(
            doc_id=row.doc_id,
            score=item.score,
            normalized_score=item.score / n_tokens if n_tokens else item.score,
            rank=rank,
            text=row.text,
            metadata=row.metadata,
            passage=row.passage,
            start=row.start,
            end=row.start + len(row.text),
            passage_score=item.passage_score,
            late_score=item.late,
            lexical_score=item.lexical,
        )
        for rank, (item, row) in enumerate(found, start=1)
    ]
