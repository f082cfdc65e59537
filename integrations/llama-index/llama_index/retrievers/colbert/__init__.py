"""LlamaIndex integration for colbert-retriever: a retriever and a node reranker."""

from llama_index.retrievers.colbert.base import ColBERTRerank, ColBERTRetriever

__all__ = ["ColBERTRerank", "ColBERTRetriever"]
