"""LangChain integration for colbert-retriever: a vector store, a retriever and a document compressor."""

from langchain_colbert.document_compressors import ColBERTRerank
from langchain_colbert.retrievers import ColBERTRetriever
from langchain_colbert.vectorstores import ColBERTVectorStore

__all__ = ["ColBERTRerank", "ColBERTRetriever", "ColBERTVectorStore"]
