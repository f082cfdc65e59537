"""LlamaIndex integration for colbert-retriever: a managed index, a retriever and a node reranker."""

from llama_index.retrievers.colbert.base import ColBERTRetriever
from llama_index.retrievers.colbert.managed import ColBERTIndex
from llama_index.retrievers.colbert.rerank import ColBERTRerank

__all__ = ["ColBERTIndex", "ColBERTRerank", "ColBERTRetriever"]
