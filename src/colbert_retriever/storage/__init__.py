"""Where documents and their token vectors live.

`Store` is the small interface the front door talks to; `colbert_retriever.index.Index` is
the on-disk implementation. Another backend (e.g. Qdrant's native multi-vector MaxSim)
plugs in by implementing the same methods, without touching search callers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from colbert_retriever.errors import ConfigError, DuplicateIdError
from colbert_retriever.results import Document, Hit

# Equality on metadata fields, or a callable(metadata) -> bool.
Filter = dict[str, Any] | Callable[[dict[str, Any]], bool]


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

    def __len__(self) -> int: ...

    def write(self, batches: Iterable[DocumentBatch], *, delete: Sequence[str] = (), upsert: bool = False) -> None:
        """Delete `delete`, then add `batches`, all or nothing."""

    def get(self, doc_ids: Sequence[str]) -> list[Document]: ...

    def search(self, queries: Sequence[np.ndarray], *, k: int, filters: Filter | None = None) -> list[list[Hit]]: ...


def check_documents(ids: Sequence[object], texts: Sequence[object], metadata: Sequence[object]) -> None:
    """Validate one batch at the public edge: string ids, non-blank texts, JSON metadata.

    Raises `ConfigError` naming the first bad entry; `DuplicateIdError` for an id repeated
    inside the batch.
    """
    if not (len(ids) == len(texts) == len(metadata)):
        msg = f"got {len(texts)} texts, {len(ids)} ids and {len(metadata)} metadata entries; they must match"
        raise ConfigError(msg)
    seen: set[str] = set()
    for i, (doc_id, text, meta) in enumerate(zip(ids, texts, metadata, strict=True)):
        if not isinstance(doc_id, str) or not doc_id:
            msg = f"document id #{i} must be a non-empty string, got {doc_id!r}"
            raise ConfigError(msg)
        if doc_id in seen:
            msg = f"document id {doc_id!r} appears twice in one add"
            raise DuplicateIdError(msg)
        seen.add(doc_id)
        if not isinstance(text, str) or not text.strip():
            msg = f"document {doc_id!r}: text must be a non-blank string, got {text!r:.60}"
            raise ConfigError(msg)
        if not isinstance(meta, dict):
            msg = f"document {doc_id!r}: metadata must be a dict, got {type(meta).__name__}"
            raise ConfigError(msg)
        try:
            json.dumps(meta, allow_nan=False)
        except (TypeError, ValueError) as exc:
            msg = f"document {doc_id!r}: metadata must be JSON-serialisable without NaN/inf ({exc})"
            raise ConfigError(msg) from exc
