"""Result types: frozen dataclasses, never ad-hoc dicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """A stored document: its id, text and metadata."""

    doc_id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        doc_id: The document's id.
        score: Raw MaxSim: the sum over query tokens of each token's best cosine
            similarity in the document. Grows with the number of query tokens.
        normalized_score: `score` divided by the number of query tokens; lies in [-1, 1]
            and is comparable across queries and models with different query lengths.
        rank: 1 for the best hit.
        text: The document's text.
        metadata: The document's metadata.
    """

    doc_id: str
    score: float
    normalized_score: float
    rank: int
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RerankHit:
    """One reranked document (`ColBERT.rerank`).

    Attributes:
        position: The document's position in the list given to `rerank` (0-based), so
            callers map a hit back to their own objects without parsing ids.
        score: Raw MaxSim, as in `Hit.score`.
        normalized_score: `score` divided by the number of query tokens.
        rank: 1 for the best document.
        text: The document's text.
    """

    position: int
    score: float
    normalized_score: float
    rank: int
    text: str


@dataclass(frozen=True)
class IndexInfo:
    """What `colbert-retriever info` shows about an index.

    Attributes:
        index_type: What the index is now: "exact" or "plaid".
        auto: Created as "auto": exact while small, then plaid.
        documents: Live documents.
        tokens: Token vectors of the live documents.
        bytes: Size on disk of every file the manifest lists, the manifest included.
        deleted: Tombstoned rows still on disk (`Index.compact` drops them).
        centroids: PLAID index: centroids of its codec (0 before the first write, and for
            an exact index).
        tokens_at_training: PLAID index: tokens the codec was trained on; retraining is
            advisable once `tokens` is several times this.
    """

    path: str
    index_type: str
    format_version: int
    library_version: str
    documents: int
    tokens: int
    bytes: int
    dim: int
    dtype: str
    segments: int
    deleted: int
    model: dict[str, Any]
    nbits: int | None = None
    centroids: int = 0
    tokens_at_training: int = 0
    pool_factor: int = 1
    auto: bool = False
