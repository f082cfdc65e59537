"""colbert-retriever: late-interaction (ColBERT) retrieval for RAG, fast on a plain CPU.

The front door is `ColBERT`; `Encoder` and `Index` are its two halves, usable alone.
"""

__version__ = "0.1.0"

from colbert_retriever.config import EncoderConfig, IndexConfig, PlaidConfig, SearchConfig
from colbert_retriever.encoder import Encoder
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
)
from colbert_retriever.index import Index, IndexInfo
from colbert_retriever.results import Document, Hit
from colbert_retriever.retriever import ColBERT
from colbert_retriever.storage import DocumentBatch, Store

__all__ = [
    "CheckpointError",
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
    "ModelMismatchError",
    "PlaidConfig",
    "SearchConfig",
    "Store",
    "__version__",
]
