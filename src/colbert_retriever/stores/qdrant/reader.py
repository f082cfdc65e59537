"""A Qdrant collection's answers to the search pipeline (`stores.protocol.Reader`).

A row is a point (its id), a document its doc_id. Late interaction: one Qdrant query per
question, the prefetch vector over HNSW finding `QdrantConfig.prefetch_limit(n)` passages
that Qdrant then scores by MaxSim against the query's token vectors. BM25: a query over the
sparse vectors (each passage's term-frequency weights, Qdrant's collection-wide IDF). The
scores of given rows: the same queries restricted to those points, without the prefetch.

A point of a document's older version, visible for a moment while a writer of another
process commits, is dropped from what a query returns (versions.py).

Every point a query returns comes with its payload, which the reader keeps, so the hits are
read from what the search saw; with `vectors=True` (a search with highlights) it keeps their
token vectors too, so a hit's passage is explained from the version the search scored, even
if a write replaces or deletes it meanwhile (Qdrant has no snapshots to read again).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from qdrant_client import models

from colbert_retriever.errors import DocumentNotFoundError
from colbert_retriever.stores.protocol import Row, ScoredRow
from colbert_retriever.stores.qdrant.collection import (
    LATE,
    LEXICAL,
    PREFETCH,
    Collection,
    equals,
    late_vectors,
    match,
    visible,
)
from colbert_retriever.stores.qdrant.vectors import bm25_query, prefetch_vector
from colbert_retriever.stores.qdrant.versions import is_current, newest_versions, version_key
from colbert_retriever.validation import check_ids

if TYPE_CHECKING:
    from colbert_retriever.stores.qdrant.edge import EdgeCollection


class QdrantReader:
    """A collection's visible points that pass `where` (the user's filter, translated)."""

    lexical_hint = "this collection was created with lexical=False"

    def __init__(
        self,
        collection: Collection | EdgeCollection,
        layout: dict[str, Any],
        user: models.Filter | None,
        *,
        vectors: bool = False,
    ) -> None:
        self.collection, self.layout, self.vectors = collection, layout, vectors
        self.dim, self.lexical = int(layout["dim"]), bool(layout["lexical"])
        self.where = visible(*([user] if user is not None else []))
        self._payloads: dict[Hashable, dict[str, Any]] = {}  # point id -> payload, of every point seen
        self._seen: dict[tuple[str, int], tuple[dict[str, Any], Any]] = {}  # (doc_id, passage) -> payload, vectors

    @cached_property
    def n_documents(self) -> int:
        return self.collection.count(visible(equals("passage", 0)))

    @cached_property
    def n_rows(self) -> int:
        return self.collection.count(visible())

    def best_late(self, queries: Sequence[np.ndarray], n: int, *, documents: int) -> list[list[ScoredRow]]:
        limit = self.collection.config.prefetch_limit(n)
        out = []
        for q in queries:
            vector = prefetch_vector(q, self.layout["prefetch"], query=True).tolist()
            candidates = models.Prefetch(query=vector, using=PREFETCH, limit=limit, filter=self.where)
            out.append(self._query(q.tolist(), LATE, candidates, self.where, n))
        return out

    def best_lexical(self, text: str, n: int) -> list[ScoredRow]:
        sparse = _sparse(text)
        return self._query(sparse, LEXICAL, None, self.where, n) if sparse is not None else []

    def late_scores(self, query: np.ndarray, rows: Sequence[Hashable]) -> list[float]:
        found = self._scores_of(query.tolist(), LATE, rows)
        return [found[row] for row in rows]

    def lexical_scores(self, text: str, rows: Sequence[Hashable]) -> list[float]:
        sparse = _sparse(text)
        found = self._scores_of(sparse, LEXICAL, rows) if sparse is not None else {}
        return [found.get(row, 0.0) for row in rows]

    def document_rows(self, documents: Sequence[Hashable]) -> list[list[Hashable]]:
        if not documents:
            return []
        where = models.Filter(must=[self.where, match("doc_id", list(documents))])
        newest = newest_versions(self.collection.scroll(where, payload=True, vectors=[LATE] if self.vectors else False))
        for points in newest.values():
            for p in points:
                self._keep(p.id, p.payload, late_vectors(p))
        return [[p.id for p in newest.get(str(doc), [])] for doc in documents]

    def read(self, rows: Sequence[Hashable]) -> list[Row]:
        return [payload_row(self._payloads[row]) for row in rows]

    def passages(self, doc_id: str, numbers: Sequence[int] | None = None) -> list[tuple[Row, np.ndarray]]:
        seen = [self._seen.get((doc_id, n)) for n in numbers or ()]
        if numbers and all(found is not None and found[1] is not None for found in seen):
            return [(payload_row(payload), np.asarray(v, dtype=np.float32)) for payload, v in filter(None, seen)]
        where = visible(match("doc_id", check_ids([doc_id])))
        points = newest_versions(self.collection.scroll(where, payload=True, vectors=[LATE])).get(doc_id)
        if not points:
            msg = f"document {doc_id!r} is not in {self.collection.config.where}"
            raise DocumentNotFoundError(msg)
        if numbers is not None:
            points = [points[n] for n in numbers if 0 <= n < len(points)]
        return [(payload_row(p.payload), np.asarray(late_vectors(p), dtype=np.float32)) for p in points]

    def _query(
        self, query: Any, using: str, prefetch: models.Prefetch | None, where: models.Filter, limit: int
    ) -> list[ScoredRow]:
        found = self.collection.query(query, using, prefetch, where, limit, vectors=self.vectors) if limit else []
        current = is_current(self.collection, [payload for _, payload, _, _ in found])
        found = [point for point, keep in zip(found, current, strict=True) if keep]
        for _, payload, point, vectors in found:
            self._keep(point, payload, vectors)
        return [ScoredRow(score, point, payload["doc_id"]) for score, payload, point, _ in found]

    def _keep(self, point: Hashable, payload: dict[str, Any], vectors: Any) -> None:
        """Remember a point seen: its payload, and its vectors if read (the newest version wins)."""
        self._payloads[point] = payload
        key = (payload["doc_id"], payload["passage"])
        old = self._seen.get(key)
        newer = old is None or version_key(old[0]) < version_key(payload)
        if newer or (old is not None and version_key(old[0]) == version_key(payload) and vectors is not None):
            self._seen[key] = (payload, vectors)

    def _scores_of(self, query: Any, using: str, rows: Sequence[Hashable]) -> dict[Hashable, float]:
        """`query`'s score on vector `using` of each of `rows` that it scores at all."""
        if not rows:
            return {}
        only = models.Filter(must=[self.where, models.HasIdCondition(has_id=list(rows))])
        return {found.row: found.score for found in self._query(query, using, None, only, len(rows))}


def _sparse(text: str) -> models.SparseVector | None:
    indices, values = bm25_query(text)
    return models.SparseVector(indices=indices, values=values) if indices else None


def payload_row(payload: dict[str, Any]) -> Row:
    return Row(payload["doc_id"], payload["text"], payload["metadata"], payload["passage"], payload["start"])
