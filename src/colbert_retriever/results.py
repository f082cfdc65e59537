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
class TokenMatch:
    """What one query token matched: its best document token and their similarity.

    Attributes:
        query_token: The query token's text (word piece, marker or [MASK] expansion).
        doc_token: The best-matching document token's text.
        start: Where that document token starts in the passage's text (`Explanation.text`,
            `Hit.text`); special tokens ([CLS], markers) have an empty span at 0.
        end: Where it ends (exclusive).
        similarity: Their cosine similarity: this token's additive part of the MaxSim.
        share: `similarity` / the passage's MaxSim.
    """

    query_token: str
    doc_token: str
    start: int
    end: int
    similarity: float
    share: float


@dataclass(frozen=True)
class Explanation:
    """Why a passage scored: one `TokenMatch` per query token.

    Attributes:
        doc_id: The document's id.
        passage: Which of its passages (0 for a document stored whole).
        start: Where the passage starts in the document's text.
        end: Where it ends (exclusive).
        text: The passage's text; match spans index into it.
        score: The passage's MaxSim, the sum of the matches' similarities.
        matches: One per query token, in query order.
    """

    doc_id: str
    passage: int
    start: int
    end: int
    text: str
    score: float
    matches: tuple[TokenMatch, ...]

    @property
    def highlights(self) -> list[tuple[int, int]]:
        """The matched words' spans in `text`, sorted and merged (special tokens left out)."""
        spans = sorted({(m.start, m.end) for m in self.matches if m.end > m.start})
        merged: list[tuple[int, int]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged


@dataclass(frozen=True)
class Hit:
    """One search result: a document, scored from its passages, with the passage that scored.

    Attributes:
        doc_id: The document's id.
        score: The ranking score. Late interaction: raw MaxSim of the document, by default
            its best passage's (see `SearchConfig.passage_weights`), the sum over query
            tokens of each token's best cosine similarity in that passage; it grows with
            the number of query tokens. Hybrid: the fused score (`SearchConfig.fusion`).
            Lexical: BM25 of the best passage.
        normalized_score: The late-interaction score divided by the number of query
            tokens, in every mode (hybrid and lexical too): the mean over query tokens of
            their best cosine similarity, in [-1, 1] (with the default passage weights),
            comparable across queries, modes and query lengths: the score to threshold.
        rank: 1 for the best hit.
        text: The text of the passage that scored best (the whole document when it fits
            the model; `ColBERT.get` returns the whole document).
        metadata: The document's metadata.
        passage: Which passage scored (0 for a document stored whole).
        start: Where that passage starts in the document's text.
        end: Where it ends (exclusive): `document.text[start:end] == text`.
        passage_score: That passage's own MaxSim (equals `score` under MaxP in late
            search); its BM25 in lexical search.
        explanation: Per query token, what it matched (`search(..., highlights=True)`).
        late_score: The document's late-interaction score (in every mode).
        lexical_score: Its BM25 score, 0 without any query word (None in late search).
    """

    doc_id: str
    score: float
    normalized_score: float
    rank: int
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    passage: int = 0
    start: int = 0
    end: int = 0
    passage_score: float = 0.0
    explanation: Explanation | None = None
    late_score: float | None = None
    lexical_score: float | None = None

    @property
    def highlights(self) -> list[tuple[int, int]]:
        """Matched spans in `text` (empty unless searched with highlights=True)."""
        return self.explanation.highlights if self.explanation else []

    def result_fields(self) -> dict[str, Any]:
        """What a framework's result carries for citations: doc_id, score, normalized_score,
        rank, the passage and its span in the document (`passage`, `start`, `end`), each
        side's score in hybrid search (`late_score`, `lexical_score`) and, when searched
        with highlights, `highlights` ([start, end] in `text`)."""
        fields: dict[str, Any] = {"doc_id": self.doc_id, "score": self.score, "normalized_score": self.normalized_score}
        fields |= {"rank": self.rank, "passage": self.passage, "start": self.start, "end": self.end}
        if self.late_score is not None and self.lexical_score is not None:
            fields |= {"late_score": self.late_score, "lexical_score": self.lexical_score}
        if self.explanation is not None:
            fields["highlights"] = [list(span) for span in self.highlights]
        return fields

    def cited_metadata(self) -> dict[str, Any]:
        """The document's metadata plus the `result_fields`. The user's own keys win: a
        result field is added only where the metadata has no key of that name (a stored
        `{"rank": "gold"}` comes back as it was stored)."""
        return self.result_fields() | self.metadata

    def to_json(self) -> dict[str, Any]:
        """The hit as `search --json` prints it and the HTTP service answers it: `text` is the
        passage that scored, `start`/`end` its span in the document; with an explanation,
        one entry per query token whose spans index into `text`."""
        fields = ("doc_id", "score", "normalized_score", "rank", "text", "metadata", "passage", "start", "end")
        line = {name: getattr(self, name) for name in (*fields, "passage_score", "late_score", "lexical_score")}
        if self.explanation is not None:
            keys = ("query_token", "doc_token", "start", "end", "similarity")
            line["explanation"] = [{key: getattr(m, key) for key in keys} for m in self.explanation.matches]
        return line


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
        passages: Their stored passages (a document longer than the model reads is split).
        cut: Live documents stored cut at the model's length (added with chunking off).
        tokens: Token vectors of the live documents.
        bytes: Size on disk of every file the manifest lists, the manifest included.
        deleted: Tombstoned rows still on disk (`Index.compact` drops them).
        centroids: PLAID index: centroids of its codec (0 before the first write, and for
            an exact index).
        tokens_at_training: PLAID index: tokens the codec was trained on; retraining is
            advisable once `tokens` is several times this.
        lexical: Whether it keeps a full-text index for hybrid and lexical search.
        collection: The Qdrant collection (`path` is then its server or local folder);
            None for an index folder.
    """

    path: str
    index_type: str
    format_version: int
    library_version: str
    documents: int
    passages: int
    cut: int
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
    lexical: bool = False
    collection: str | None = None
