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
