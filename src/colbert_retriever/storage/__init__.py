"""Where documents and their token vectors live.

`Store` is the small interface the front door talks to; `colbert_retriever.index.Index` is
the on-disk implementation. Another backend (e.g. Qdrant's native multi-vector MaxSim)
plugs in by implementing the same methods, without touching search callers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from colbert_retriever.results import Document, Hit

if TYPE_CHECKING:
    from colbert_retriever.filters import Filter


@dataclass(frozen=True)
class DocumentBatch:
    """Documents to write, with their token vectors.

    Attributes:
        ids: Caller's document ids.
        texts: Document texts.
        metadata: One JSON-serialisable dict per document.
        vectors: One (n_tokens, dim) float array per document.
    """

    ids: list[str]
    texts: list[str]
    metadata: list[dict[str, Any]] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)


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

    def write(self, batches: Iterable[DocumentBatch], *, delete: Sequence[str] = (), upsert: bool = False) -> None:
        """Delete `delete`, then add `batches`, all or nothing."""
        ...

    def get(self, doc_ids: Sequence[str]) -> list[Document]: ...

    def search(self, queries: Sequence[np.ndarray], *, k: int, filters: Filter | None = None) -> list[list[Hit]]: ...
