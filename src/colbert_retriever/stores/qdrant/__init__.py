"""Qdrant as the store behind `ColBERT`: `QdrantConfig` names a collection (a server, a
cluster, or qdrant-client's local mode), store.py holds it. Needs the `qdrant` extra
(qdrant-client, PyStemmer); importing this package does not load it."""

from colbert_retriever.stores.qdrant.config import QdrantConfig

__all__ = ["QdrantConfig"]
