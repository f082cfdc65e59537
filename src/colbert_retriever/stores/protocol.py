"""What a store is to the rest of the library: the `Store` the front door writes to and
reads from, and the `Reader` the search pipeline asks its narrow questions of.

Two stores implement both: the index folder (`stores/folder`) and a Qdrant collection
(`stores/qdrant`). Neither imports the other, and neither decides how a search ranks: the
pipeline (`colbert_retriever.pipeline`) widens, groups passages into documents, fuses, breaks
ties and builds `Hit`s the same way over either.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from colbert_retriever.errors import ConfigError, DimensionMismatchError, DuplicateIdError, IndexCorruptError
from colbert_retriever.results import Document, Hit, IndexInfo
from colbert_retriever.validation import check_documents, check_string

if TYPE_CHECKING:
    from colbert_retriever.config import Mode, SearchConfig, Unit
    from colbert_retriever.filters import Filter


@dataclass(frozen=True)
class Row:
    """One stored row: passage `passage` of document `doc_id`, its text starting at
    character `start` of the document's text."""

    doc_id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    passage: int = 0
    start: int = 0


def join_passages(rows: Sequence[Row]) -> str:
    """A document's text from its rows in passage order. Passages cover the text without
    gaps (each starts at or before the previous one's end), so overlaps are dropped."""
    text = rows[0].text
    for row in rows[1:]:
        if row.start > len(text):
            msg = f"document {row.doc_id!r}: passage {row.passage} starts past the end of the one before"
            raise IndexCorruptError(msg)
        text += row.text[len(text) - row.start :]
    return text


@dataclass(frozen=True)
class DocumentBatch:
    """Documents to write, with their token vectors, one entry per stored row.

    A document longer than the model reads is several rows, its passages: consecutive
    entries with the same id, passage numbers 0, 1, ... and the character where each
    passage's text starts in the document's text. Without `passages`, every row is a whole
    document.

    Attributes:
        ids: Caller's document id of each row.
        texts: Each row's text (the document's, or the passage's).
        metadata: One JSON-serialisable dict per row (a document's passages share it).
        vectors: One (n_tokens, dim) float array per row.
        passages: Each row's passage number (empty: all 0).
        starts: Where each row's text starts in its document's text (empty: all 0).
        cut: Rows whose text was longer than the model reads, stored as one row anyway.
    """

    ids: list[str]
    texts: list[str]
    metadata: list[dict[str, Any]] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    passages: list[int] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    cut: list[int] = field(default_factory=list)

    def checked_rows(self, dim: int, *, upsert: bool) -> list[Row]:
        """The batch's rows, once its documents, passages and vectors are checked: every
        store calls this on every batch before it writes anything.

        Raises:
            ConfigError: columns of different lengths, a blank text, bad metadata, passages
                out of order, cut rows out of range.
            DuplicateIdError: a document id twice in the batch.
            DimensionMismatchError: vectors that are not (n_tokens >= 1, `dim`).
        """
        n = len(self.ids)
        passages, starts = self.passages or [0] * n, self.starts or [0] * n
        sizes = {"texts": len(self.texts), "metadata entries": len(self.metadata), "passages": len(passages)}
        sizes["starts"] = len(starts)
        if set(sizes.values()) != {n}:
            msg = f"got {n} ids, " + ", ".join(f"{size} {name}" for name, size in sizes.items()) + "; they must match"
            raise ConfigError(msg)
        if not all(0 <= row < n for row in self.cut):
            msg = f"a batch of {n} rows lists cut rows out of range"
            raise ConfigError(msg)
        first = [i for i, p in enumerate(passages) if p == 0]
        check_documents(
            [self.ids[i] for i in first],
            [self.texts[i] for i in first],
            [self.metadata[i] for i in first],
            upsert=upsert,
        )
        for i, passage in enumerate(passages):
            if passage and not (i and self.ids[i - 1] == self.ids[i] and passages[i - 1] == passage - 1):
                msg = f"document {self.ids[i]!r}: passage {passage} does not follow passage {passage - 1}"
                raise ConfigError(msg)
            check_string(self.texts[i], f"document {self.ids[i]!r}: passage {passage}", allow_blank=False)
        if len(self.vectors) != n:
            msg = f"a batch has {len(self.ids)} documents but {len(self.vectors)} vector arrays"
            raise ConfigError(msg)
        for doc_id, vectors in zip(self.ids, self.vectors, strict=True):
            if vectors.ndim != 2 or vectors.shape[1] != dim or len(vectors) == 0:
                msg = f"document {doc_id!r}: vectors of shape {vectors.shape}; the index stores (n_tokens >= 1, {dim})"
                raise DimensionMismatchError(msg)
        return [
            Row(doc_id, text, self.metadata[i], passages[i], starts[i])
            for i, (doc_id, text) in enumerate(zip(self.ids, self.texts, strict=True))
        ]


def new_document_ids(rows: Sequence[Row], seen: set[str], *, upsert: bool) -> list[str]:
    """The ids of the documents `rows` start, added to `seen` (the ids earlier batches of
    the same write added); a `DuplicateIdError` if one is already there."""
    doc_ids = [row.doc_id for row in rows if row.passage == 0]
    for doc_id in doc_ids:
        if doc_id in seen:
            msg = f"document id {doc_id!r} appears twice in one {'upsert' if upsert else 'add'}"
            raise DuplicateIdError(msg)
        seen.add(doc_id)
    return doc_ids


@dataclass(frozen=True)
class ScoredRow:
    """A row a reader found, with its score and its document.

    Attributes:
        score: Late interaction (MaxSim) or BM25, by the question asked.
        row: The store's key for the row (opaque to the pipeline; hashable).
        document: The store's key for the row's document (equal for every passage of it).
    """

    score: float
    row: Hashable
    document: Hashable


class Reader(Protocol):
    """One state of a store, as one search sees it from start to end, restricted to the live
    rows that a filter allows. A row is a stored passage (a whole document when it fits
    the model). Writes that race a search never change what its reader answers."""

    dim: int
    lexical: bool
    lexical_hint: str
    """How to get a full-text side where `lexical` is False (for the error that says so)."""

    @property
    def n_documents(self) -> int:
        """Live documents in the store (not only those the filter allows)."""
        ...

    @property
    def n_rows(self) -> int:
        """Live rows (passages) in the store."""
        ...

    def best_late(self, queries: Sequence[np.ndarray], n: int, *, documents: int) -> list[list[ScoredRow]]:
        """Per query ((n_tokens, dim) float32), its `n` best allowed rows by late
        interaction, best first; fewer only when fewer rows are allowed. `documents`: how
        many documents the caller is after (a store may size its candidate stages by it)."""
        ...

    def best_lexical(self, text: str, n: int) -> list[ScoredRow]:
        """The `n` best allowed rows by BM25 for the query `text`, best first; only rows
        holding a query word."""
        ...

    def late_scores(self, query: np.ndarray, rows: Sequence[Hashable]) -> list[float]:
        """The exact MaxSim of `query` with each of `rows`."""
        ...

    def lexical_scores(self, text: str, rows: Sequence[Hashable]) -> list[float]:
        """The BM25 of each of `rows` for `text` (0 for a row without a query word)."""
        ...

    def document_rows(self, documents: Sequence[Hashable]) -> list[list[Hashable]]:
        """Every row of each of `documents`, in passage order."""
        ...

    def read(self, rows: Sequence[Hashable]) -> list[Row]:
        """The stored rows `rows` (text, metadata, passage number)."""
        ...

    def passages(self, doc_id: str, numbers: Sequence[int] | None = None) -> list[tuple[Row, np.ndarray]]:
        """Each stored passage of `doc_id` (those numbered `numbers`, if given) with its
        (n_tokens, dim) float32 token vectors (decompressed where stored compressed).

        Raises:
            DocumentNotFoundError: `doc_id` is not in this state of the store.
        """
        ...


class Store(Protocol):
    """What the front door needs from a storage backend."""

    search_config: SearchConfig

    @property
    def model(self) -> dict[str, Any]:
        """The fingerprint of the encoder this store was filled with."""
        ...

    @property
    def docs_per_batch(self) -> int:
        """Documents the front door encodes and hands over per batch."""
        ...

    def __len__(self) -> int: ...

    def write(
        self,
        batches: Iterable[DocumentBatch],
        *,
        delete: Sequence[str] = (),
        upsert: bool = False,
        missing_ok: bool = False,
    ) -> None:
        """Delete `delete` (skipping ids not stored if `missing_ok`), then add `batches`,
        all or nothing."""
        ...

    def delete(self, doc_ids: Sequence[str], *, missing_ok: bool = False) -> None: ...

    def info(self) -> IndexInfo: ...

    def close(self) -> None:
        """Release what the store holds open (a client, a lock)."""
        ...

    def get(self, doc_ids: Sequence[str]) -> list[Document]: ...

    def doc_ids(self, filters: Filter | None = None) -> list[str]:
        """Ids of the stored documents passing `filters` (reads every one: slow on large stores)."""
        ...

    def passages(self, doc_id: str, numbers: Sequence[int] | None = None) -> list[tuple[Row, np.ndarray]]:
        """Each stored passage of `doc_id` with its (n_tokens, dim) float32 token vectors
        (`Reader.passages` on the current state)."""
        ...

    def reader(self, filters: Filter | None = None, *, vectors: bool = False) -> Reader:
        """The current state, restricted to the rows passing `filters`, for one search.
        `vectors`: the search will explain its hits (`Reader.passages`), so the reader must
        keep their token vectors as it read them.

        Raises:
            ConfigError: a bad filter (naming the operator).
        """
        ...

    def search(
        self,
        queries: Sequence[np.ndarray],
        *,
        k: int,
        filters: Filter | None = None,
        unit: Unit = "document",
        mode: Mode | None = None,
        texts: Sequence[str] = (),
    ) -> list[list[Hit]]:
        """Top-k per query vectors through the pipeline; `texts` (the queries' texts) for
        hybrid and lexical `mode`."""
        ...
