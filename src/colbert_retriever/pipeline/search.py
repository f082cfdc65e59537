"""One search, the same over every store: a store's `Reader` finds and scores rows; this
module decides what they become.

For each query:

1. Late interaction (modes "late" and "hybrid"): the reader's best rows by MaxSim. With
   unit "document", rows are grouped into documents (a document scores the weighted sum of
   its found passages' scores, best first: `SearchConfig.passage_weights`), widening the
   request until enough documents are found or every allowed row is in.
2. BM25 (modes "lexical" and "hybrid"): the reader's best rows by BM25, grouped likewise
   (a document scores its best passage's BM25).
3. Hybrid: every candidate of either side gets the other side's score from the reader
   (MaxSim over all its passages, or BM25, 0 without a query word), and
   `SearchConfig.fusion` makes one score of the two (pipeline/fusion.py).
4. Hits: the k best, score descending, ties by doc_id then passage, each read from the
   same state the scores came from. Every hit carries its late-interaction score, and
   `normalized_score` is that over the query's tokens in every mode (lexical mode scores
   its k hits by MaxSim for it), so one threshold means the same whatever the mode.

Ties at the cut (the k-th score shared by more candidates than fit) keep the order the
reader gave them: by position in an index folder, as Qdrant returned them there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from colbert_retriever.config import Mode, SearchConfig, Unit
from colbert_retriever.pipeline import fusion
from colbert_retriever.results import Hit
from colbert_retriever.stores.protocol import Reader, ScoredRow
from colbert_retriever.validation import check_queries, resolve_mode

_WIDEN = 4  # at most this many rows fetched per document wanted; a short search widens by it


@dataclass(frozen=True)
class Ranked:
    """A result before it is read into a `Hit`.

    Attributes:
        score: The mode's score of the document (or passage).
        row: The row shown: the passage that scored best (by MaxSim; in lexical mode by BM25).
        passage_score: That passage's own score on the same side.
        late: The late-interaction score (None in lexical mode).
        lexical: The BM25 score (None in late mode; 0 when no query word occurs).
    """

    score: float
    row: Hashable
    passage_score: float
    late: float | None = None
    lexical: float | None = None


def search(
    reader: Reader,
    queries: Sequence[np.ndarray],
    *,
    k: int,
    config: SearchConfig,
    unit: Unit = "document",
    mode: Mode | None = None,
    texts: Sequence[str] = (),
) -> list[list[Hit]]:
    """Top-k hits per query's (n_tokens, dim) vectors over `reader`'s state.

    Args:
        unit: "document": the k best documents, each scored from its passages; "passage":
            the k best passages.
        mode: "late", "lexical" or "hybrid"; None: hybrid where the store has a full-text
            side and `texts` are given, else late.
        texts: The queries' texts (lexical and hybrid modes).

    Raises:
        ConfigError: `k` < 1, a bad unit or mode, or a lexical mode without a full-text side.
        DimensionMismatchError: query vectors of another size than the store's.
    """
    check_queries(queries, k, reader.dim)
    mode = resolve_mode(
        mode, unit, lexical=reader.lexical, n_queries=len(queries), n_texts=len(texts), add_lexical=reader.lexical_hint
    )
    if not queries or not reader.n_documents:
        return [[] for _ in queries]
    grouped = unit == "document"
    n = k if mode == "late" else max(k, config.candidates)
    late: list[dict[Hashable, Ranked]] = [{} for _ in queries]
    if mode != "lexical":
        found = _widened(reader, n, grouped, lambda n_rows: reader.best_late(queries, n_rows, documents=n))
        late = [_ranked(rows, n, grouped, config.passage_weights, late=True) for rows in found]
    out = []
    for i, query in enumerate(queries):
        if mode == "late":
            out.append(_hits(reader, late[i].values(), k, n_tokens=len(query)))
            continue
        text = texts[i]
        (rows,) = _widened(reader, n, grouped, lambda n_rows: [reader.best_lexical(text, n_rows)])  # noqa: B023
        lexical = _ranked(rows, n, grouped, (1.0,), late=False)  # a document's BM25: its best passage's
        if mode == "lexical":
            best = dict(sorted(lexical.items(), key=lambda item: -item[1].score)[:k])
            scored = _late_scores(reader, query, list(best), grouped, config.passage_weights)
            fused = [replace(ranked, late=of.score) for ranked, of in zip(best.values(), scored, strict=True)]
        else:
            fused = _fuse(reader, query, text, late[i], lexical, grouped, config)
        out.append(_hits(reader, fused, k, n_tokens=len(query)))
    return out


def _widened(
    reader: Reader, n: int, grouped: bool, find: Callable[[int], list[list[ScoredRow]]]
) -> list[list[ScoredRow]]:
    """`find(n_rows)` for enough rows that each query has `n` documents among them (or every
    allowed row): rows per document wanted start at the store's passages per document
    (at most `_WIDEN`) and grow by `_WIDEN` while a query falls short."""
    per_document = reader.n_rows / reader.n_documents
    n_rows = n * min(_WIDEN, math.ceil(per_document)) if grouped else n
    while True:
        found = find(n_rows)
        if not grouped or all(len(rows) < n_rows or len({r.document for r in rows}) >= n for rows in found):
            return found
        n_rows *= _WIDEN


def _ranked(
    rows: Sequence[ScoredRow], n: int, grouped: bool, weights: Sequence[float], *, late: bool
) -> dict[Hashable, Ranked]:
    """The `n` best of `rows` (passages), or of their documents: a document scores the
    weighted sum of its passages' scores, best first, and shows its best passage. Keyed by
    document (or row), best first."""
    by_key: dict[Hashable, list[ScoredRow]] = {}
    for row in rows:
        by_key.setdefault(row.document if grouped else row.row, []).append(row)
    ranked = []
    for passages in by_key.values():
        passages.sort(key=lambda r: -r.score)
        score = sum(w * r.score for w, r in zip(weights, passages, strict=False))
        best = passages[0]
        sides = (score, None) if late else (None, score)
        ranked.append((best.document if grouped else best.row, Ranked(score, best.row, best.score, *sides)))
    ranked.sort(key=lambda item: -item[1].score)
    return dict(ranked[:n])


def _fuse(
    reader: Reader,
    query: np.ndarray,
    text: str,
    late: dict[Hashable, Ranked],
    lexical: dict[Hashable, Ranked],
    grouped: bool,
    config: SearchConfig,
) -> list[Ranked]:
    """Both sides' candidates, each with both scores, fused by `config.fusion`."""
    added = [key for key in lexical if key not in late]
    scored = late | dict(zip(added, _late_scores(reader, query, added, grouped, config.passage_weights), strict=True))
    missing = [key for key in scored if key not in lexical]
    lexical_of = {key: ranked.score for key, ranked in lexical.items()}
    lexical_of |= dict(zip(missing, _lexical_scores(reader, text, missing, grouped), strict=True))
    late_scores = np.array([ranked.score for ranked in scored.values()])
    lexical_scores = np.array([lexical_of[key] for key in scored])
    fused = fusion.fuse(late_scores, lexical_scores, len(query), config)
    return [
        Ranked(score, shown.row, shown.passage_score, shown.score, lexical_score)
        for score, shown, lexical_score in zip(fused.tolist(), scored.values(), lexical_scores.tolist(), strict=True)
    ]


def _late_scores(
    reader: Reader, query: np.ndarray, keys: Sequence[Hashable], grouped: bool, weights: Sequence[float]
) -> list[Ranked]:
    """Each candidate's late-interaction score over all its passages, with the best one."""
    members = reader.document_rows(keys) if grouped else [[key] for key in keys]
    flat = [row for rows in members for row in rows]
    score_of = dict(zip(flat, reader.late_scores(query, flat), strict=True))
    out = []
    for rows in members:
        ranked = sorted(((score_of[row], i, row) for i, row in enumerate(rows)), key=lambda item: -item[0])
        score = sum(w * s for w, (s, _, _) in zip(weights, ranked, strict=False))
        out.append(Ranked(score, ranked[0][2], ranked[0][0]))
    return out


def _lexical_scores(reader: Reader, text: str, keys: Sequence[Hashable], grouped: bool) -> list[float]:
    """Each candidate's BM25: its best passage's (0 without a query word)."""
    members = reader.document_rows(keys) if grouped else [[key] for key in keys]
    flat = [row for rows in members for row in rows]
    score_of = dict(zip(flat, reader.lexical_scores(text, flat), strict=True))
    return [max(score_of[row] for row in rows) for rows in members]


def _hits(reader: Reader, ranked: Iterable[Ranked], k: int, *, n_tokens: int) -> list[Hit]:
    """The k best of `ranked` as hits, score descending, ties by doc_id then passage (at the
    cut, ties keep the reader's order). `n_tokens`: query tokens; normalized_score is the
    late-interaction score over them, in every mode."""
    best = sorted(ranked, key=lambda item: -item.score)[:k]
    rows = reader.read([item.row for item in best])
    found = sorted(zip(best, rows, strict=True), key=lambda pair: (-pair[0].score, pair[1].doc_id, pair[1].passage))
    return [
        Hit(
            doc_id=row.doc_id,
            score=item.score,
            normalized_score=(item.score if item.late is None else item.late) / n_tokens,
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
