"""The corpus readers' old import path (`colbert_retriever.corpus`), kept for code that uses
it; they live in `colbert_retriever.text.corpus`."""

from colbert_retriever.text.corpus import count_documents, read_corpus, read_qrels, read_queries, zip_documents

__all__ = ["count_documents", "read_corpus", "read_qrels", "read_queries", "zip_documents"]
