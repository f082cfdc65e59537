"""Searching a Qdrant collection laid out by qdrant/store.py: the same modes, units and
`Hit`s as an index folder.

Late: one Qdrant query per question: the prefetch vector over HNSW finds
`QdrantConfig.prefetch_limit(k)` passages, Qdrant scores them by MaxSim against the query's
token vectors and groups them by document (its best passage, MaxP). Lexical: BM25 over the
sparse vectors. Hybrid: both sides' `SearchConfig.candidates` best documents, the side that
missed a candidate scored for it exactly (MaxSim over all its passages, with no prefetch; or
BM25, 0 without any query word), then fused client-side by search/fusion.py, as in an
index folder (Qdrant's own fusion knows only ranks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from qdrant_client import models

from colbert_retriever.config import Mode, SearchConfig, Unit
from colbert_retriever.filters import Filter
from colbert_retriever.qdrant.collection import LATE, LEXICAL, PREFETCH, Collection, match, visible
from colbert_retriever.qdrant.config import QdrantConfig
from colbert_retriever.qdrant.filters import to_qdrant
from colbert_retriever.qdrant.vectors import bm25_query, prefetch_vector
from colbert_retriever.results import Hit
from colbert_retriever.search import fusion
from colbert_retriever.validation import check_queries, resolve_mode

if TYPE_CHECKING:
    from colbert_retriever.qdrant.edge import EdgeCollection


@dataclass(frozen=True)
class _Found:
    """One scored point: a document's best passage (or a passage, by unit)."""

    score: float
    payload: dict[str, Any]
    point: Any

    @property
    def key(self) -> tuple[str, int]:
        return self.payload["doc_id"], self.payload["passage"]


class QdrantSearch:
    """The searches of a `QdrantStore`, through its collection's requests."""

    def __init__(
        self, collection: Collection | EdgeCollection, layout: dict[str, Any], search_config: SearchConfig
    ) -> None:
        self.collection, self.layout, self.search_config = collection, layout, search_config

    @property
    def config(self) -> QdrantConfig:
        return self.collection.config

    def search(
        self,
        queries: Sequence[np.ndarray],
        *,
        k: int,
        filters: Filter | None,
        unit: Unit,
        mode: Mode | None,
        texts: Sequence[str],
    ) -> list[list[Hit]]:
        check_queries(queries, k, self.layout["dim"])
        mode = resolve_mode(
            mode,
            unit,
            lexical=self.layout["lexical"],
            n_queries=len(queries),
            n_texts=len(texts),
            add_lexical="this collection was created with lexical=False",
        )
        user = to_qdrant(filters)
        where = visible(*([user] if user is not None else []))
        grouped = unit == "document"
        texts = list(texts) or [""] * len(queries)
        return [self._one(q, text, k, where, grouped, mode) for q, text in zip(queries, texts, strict=True)]

    def _one(self, q: np.ndarray, text: str, k: int, where: models.Filter, grouped: bool, mode: Mode) -> list[Hit]:
        if mode == "late":
            return _hits([(f.score, f, f.score, None) for f in self._late(q, where, k, grouped)], k, len(q))
        if mode == "lexical":
            return _hits([(f.score, f, None, f.score) for f in self._lexical(text, where, k, grouped)], k, 0)
        limit = max(k, self.search_config.candidates)
        late = {_key(f, grouped): f for f in self._late(q, where, limit, grouped)}
        lexical = {_key(f, grouped): f for f in self._lexical(text, where, limit, grouped)}
        missing_late = [key for key in lexical if key not in late]
        missing_lexical = [key for key in late if key not in lexical]
        late |= {
            _key(f, grouped): f
            for f in self._late(q, _only(where, missing_late, lexical), len(missing_late), grouped, prefetch=False)
        }
        lexical |= {
            _key(f, grouped): f
            for f in self._lexical(text, _only(where, missing_lexical, late), len(missing_lexical), grouped)
        }
        keys = list(late)
        late_scores = np.array([late[key].score for key in keys])
        lexical_scores = np.array([lexical[key].score if key in lexical else 0.0 for key in keys])
        if self.search_config.fusion == "rrf":
            fused = fusion.reciprocal_rank(late_scores, lexical_scores, self.search_config.rrf_k)
        else:
            fused = fusion.blend(late_scores, lexical_scores, self.search_config.late_weight)
        ranked = zip(
            fused.tolist(), [late[key] for key in keys], late_scores.tolist(), lexical_scores.tolist(), strict=True
        )
        return _hits(list(ranked), k, 0)

    def _late(
        self, q: np.ndarray, where: models.Filter | None, limit: int, grouped: bool, *, prefetch: bool = True
    ) -> list[_Found]:
        """MaxSim ranking of the points the prefetch vector finds (or, without `prefetch`,
        of every point `where` allows); `where` None: no candidates."""
        if where is None or not limit:
            return []
        candidates = None
        if prefetch:
            vector = prefetch_vector(q, self.layout["prefetch"], query=True).tolist()
            candidates = models.Prefetch(
                query=vector, using=PREFETCH, limit=self.config.prefetch_limit(limit), filter=where
            )
        return self._query(q.tolist(), LATE, candidates, where, limit, grouped)

    def _lexical(self, text: str, where: models.Filter | None, limit: int, grouped: bool) -> list[_Found]:
        indices, values = bm25_query(text)
        if where is None or not limit or not indices:
            return []
        return self._query(models.SparseVector(indices=indices, values=values), LEXICAL, None, where, limit, grouped)

    def _query(
        self, query: Any, using: str, prefetch: models.Prefetch | None, where: models.Filter, limit: int, grouped: bool
    ) -> list[_Found]:
        run = self.collection.query_groups if grouped else self.collection.query
        return [_Found(*found) for found in run(query, using, prefetch, where, limit)]


def _key(found: _Found, grouped: bool) -> tuple[Any, ...]:
    return found.key[:1] if grouped else found.key


def _only(
    where: models.Filter, keys: list[tuple[Any, ...]], found: dict[tuple[Any, ...], _Found]
) -> models.Filter | None:
    """`where`, narrowed to `keys` (documents, or the points `found` for them); None if there are none."""
    if not keys:
        return None
    if len(keys[0]) == 1:
        narrowed: Any = match("doc_id", sorted(key[0] for key in keys))
    else:
        narrowed = models.HasIdCondition(has_id=[found[key].point for key in keys])
    return models.Filter(must=[where, narrowed])


def _hits(ranked: list[tuple[float, _Found, float | None, float | None]], k: int, n_tokens: int) -> list[Hit]:
    """The k best of (score, the passage shown, late score, lexical score) as hits;
    `n_tokens`: query tokens (normalized_score = score / n_tokens), 0 to leave score as is."""
    ranked = sorted(ranked, key=lambda item: (-item[0], *item[1].key))[:k]
    return [
        Hit(
            doc_id=found.payload["doc_id"],
            score=score,
            normalized_score=score / n_tokens if n_tokens else score,
            rank=rank,
            text=found.payload["text"],
            metadata=found.payload["metadata"],
            passage=found.payload["passage"],
            start=found.payload["start"],
            end=found.payload["start"] + len(found.payload["text"]),
            passage_score=found.score,
            late_score=late,
            lexical_score=lexical,
        )
        for rank, (score, found, late, lexical) in enumerate(ranked, start=1)
    ]
