"""LangChain integration for colbert-retriever: a retriever and a document compressor."""

from langchain_colbert.document_compressors import ColBERTRerank
from langchain_colbert.retrievers import ColBERTRetriever

__all__ = ["ColBERTRerank", "ColBERTRetriever"]
