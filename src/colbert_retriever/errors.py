"""The exception tree: every error this library raises on purpose derives from
`ColbertRetrieverError`, and each also inherits the fitting built-in so generic
handlers (`except ValueError`) keep working."""

from __future__ import annotations


class ColbertRetrieverError(Exception):
    """Root of every error raised on purpose by colbert-retriever."""


class ConfigError(ColbertRetrieverError, ValueError):
    """A setting or an argument is invalid (k < 1, empty text, wrong type, ...)."""


class CheckpointError(ColbertRetrieverError, OSError):
    """A model folder is missing, incomplete or in a format we cannot read."""


class MissingDependencyError(ColbertRetrieverError, ImportError):
    """An optional dependency is not installed; the message names the pip line."""


class IndexNotFoundError(ColbertRetrieverError, FileNotFoundError):
    """There is no index at the given path."""


class IndexExistsError(ColbertRetrieverError, FileExistsError):
    """`create` was asked to write where an index already exists."""


class IndexCorruptError(ColbertRetrieverError, OSError):
    """An index file is missing, truncated or fails its checksum."""


class IndexVersionError(ColbertRetrieverError, ValueError):
    """The index was written in a format this version cannot read."""


class IndexLockedError(ColbertRetrieverError, TimeoutError):
    """Another process holds the index's write lock."""


class IndexWriteError(ColbertRetrieverError, OSError):
    """A write failed (disk full, read-only folder, ...); the index keeps its previous state."""


class StoreError(ColbertRetrieverError, OSError):
    """A storage service (a Qdrant server) could not be reached or refused a request."""


class ModelMismatchError(ColbertRetrieverError, ValueError):
    """The encoder is not the model the index was built with."""


class DimensionMismatchError(ModelMismatchError):
    """The encoder's embedding size differs from the index's."""


class DuplicateIdError(ColbertRetrieverError, ValueError):
    """An id appears twice in one add, or `add` met an id the index already holds."""


class DocumentNotFoundError(ColbertRetrieverError, LookupError):
    """One or more ids are not in the index."""


class EmptyIndexError(ColbertRetrieverError, LookupError):
    """An operation that needs documents (retraining centroids) met an index with none."""
