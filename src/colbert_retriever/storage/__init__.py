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


def check_texts(texts: Sequence[str], what: str) -> list[str]:
    """Validate a batch of texts at the public edge: a list of non-blank UTF-8 strings.

    Raises `ConfigError` naming the first bad entry.
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        msg = f"{what} must be a list of strings, got {type(texts).__name__}"
        raise ConfigError(msg)
    for i, text in enumerate(texts):
        _check_string(text, f"{what}[{i}]", allow_blank=False)
    return list(texts)


def _check_string(value: object, what: str, *, allow_blank: bool) -> None:
    if not isinstance(value, str):
        msg = f"{what} must be a string, got {type(value).__name__}"
        raise ConfigError(msg)
    if not (value if allow_blank else value.strip()):
        msg = f"{what} is empty or whitespace only"
        raise ConfigError(msg)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        msg = f"{what} is not valid Unicode (an unpaired surrogate at position {exc.start})"
        raise ConfigError(msg) from exc


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
        _check_string(doc_id, f"document id #{i}", allow_blank=True)
        if doc_id in seen:
            msg = f"document id {doc_id!r} appears twice in one add"
            raise DuplicateIdError(msg)
        seen.add(doc_id)
        _check_string(text, f"document {doc_id!r}: text", allow_blank=False)
        if not isinstance(meta, dict):
            msg = f"document {doc_id!r}: metadata must be a dict, got {type(meta).__name__}"
            raise ConfigError(msg)
        try:
            json.dumps(meta, allow_nan=False, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
            msg = f"document {doc_id!r}: metadata must be JSON-serialisable without NaN/inf ({exc})"
            raise ConfigError(msg) from exc
