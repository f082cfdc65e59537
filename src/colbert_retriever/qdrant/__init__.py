"""Qdrant as the store behind `ColBERT`: `QdrantConfig` names a collection (a server, a
cluster, or qdrant-client's local mode), qdrant/store.py holds it. Needs the `qdrant` extra
(qdrant-client, PyStemmer); importing this package does not load it."""

from colbert_retriever.qdrant.config import QdrantConfig

__all__ = ["QdrantConfig"]
