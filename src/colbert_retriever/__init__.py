"""colbert-retriever: late-interaction (ColBERT) retrieval for RAG, fast on a plain CPU.

The front door is `ColBERT`; `Encoder` and `Index` are its two halves, usable alone.

Importing the package is light: the errors and settings load at once; everything that needs
torch, transformers or FAISS loads on first use of its name (PEP 562), so `import
colbert_retriever` and `colbert-retriever --help` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from colbert_retriever._version import __version__
from colbert_retriever.config import Chunking, EncoderConfig, IndexConfig, Mode, PlaidConfig, SearchConfig
from colbert_retriever.errors import (
    CheckpointError,
    ColbertRetrieverError,
    ConfigError,
    DimensionMismatchError,
    DocumentNotFoundError,
    DuplicateIdError,
    EmptyIndexError,
    IndexCorruptError,
    IndexExistsError,
    IndexLockedError,
    IndexNotFoundError,
    IndexVersionError,
    IndexWriteError,
    MissingDependencyError,
    ModelMismatchError,
    StoreError,
)
from colbert_retriever.results import Document, Explanation, Hit, IndexInfo, RerankHit, TokenMatch
from colbert_retriever.stores.qdrant.config import QdrantConfig

if TYPE_CHECKING:
    from colbert_retriever.filters import Filter
    from colbert_retriever.model.encoder import Encoder
    from colbert_retriever.retriever import ColBERT
    from colbert_retriever.stores.folder.index import Index
    from colbert_retriever.stores.protocol import DocumentBatch, Store

_LAZY = {
    "ColBERT": "colbert_retriever.retriever",
    "DocumentBatch": "colbert_retriever.stores.protocol",
    "Encoder": "colbert_retriever.model.encoder",
    "Filter": "colbert_retriever.filters",
    "Index": "colbert_retriever.stores.folder.index",
    "Store": "colbert_retriever.stores.protocol",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        msg = f"module 'colbert_retriever' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "CheckpointError",
    "Chunking",
    "ColBERT",
    "ColbertRetrieverError",
    "ConfigError",
    "DimensionMismatchError",
    "Document",
    "DocumentBatch",
    "DocumentNotFoundError",
    "DuplicateIdError",
    "EmptyIndexError",
    "Encoder",
    "EncoderConfig",
    "Explanation",
    "Filter",
    "Hit",
    "Index",
    "IndexConfig",
    "IndexCorruptError",
    "IndexExistsError",
    "IndexInfo",
    "IndexLockedError",
    "IndexNotFoundError",
    "IndexVersionError",
    "IndexWriteError",
    "MissingDependencyError",
    "Mode",
    "ModelMismatchError",
    "PlaidConfig",
    "QdrantConfig",
    "RerankHit",
    "SearchConfig",
    "Store",
    "StoreError",
    "TokenMatch",
    "__version__",
]
