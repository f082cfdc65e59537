"""Where documents and their token vectors live.

`Store` is the small interface the front door talks to; `colbert_retriever.index.Index` is
the on-disk implementation, `colbert_retriever.qdrant.store.QdrantStore` the one on a
Qdrant collection (colbert_retriever/stores.py picks one from a location).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from colbert_retriever.results import Document, Hit, IndexInfo

if TYPE_CHECKING:
    from colbert_retriever.config import Mode, Unit
    from colbert_retriever.filters import Filter
    from colbert_retriever.storage.documents import Row


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


class Store(Protocol):
    """What the front door needs from a storage backend."""

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
        """Top-k per query vectors; `texts` (the queries' texts) for hybrid and lexical `mode`."""
        ...

    def passages(self, doc_id: str, numbers: Sequence[int] | None = None) -> list[tuple[Row, np.ndarray]]:
        """Each stored passage of `doc_id` with its (n_tokens, dim) float32 token vectors."""
        ...
