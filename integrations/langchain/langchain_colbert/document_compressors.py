"""`ColBERTRerank`: reorder any retriever's documents by MaxSim (for ContextualCompressionRetriever)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict

from colbert_retriever import ColBERT


class ColBERTRerank(BaseDocumentCompressor):
    """Keep the `top_n` documents with the highest MaxSim against the query.

    Each returned document is a copy with `score` (raw MaxSim) and `rank` in its metadata.

    Attributes:
        colbert: A core retriever; no index is needed (`ColBERT.from_pretrained`).
        top_n: Documents kept.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    colbert: ColBERT
    top_n: int = 3

    @classmethod
    def from_pretrained(cls, model: str | Path, *, top_n: int = 3, **settings: Any) -> ColBERTRerank:
        """A reranker for `model` (local folder or hub id); `settings` are encoder settings."""
        return cls(colbert=ColBERT.from_pretrained(model, **settings), top_n=top_n)

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        if not documents:
            return []
        hits = self.colbert.rerank(query, [doc.page_content for doc in documents], k=self.top_n)
        out = []
        for hit in hits:
            doc = documents[hit.position]
            metadata = {**doc.metadata, "score": hit.score, "rank": hit.rank}
            out.append(Document(id=doc.id, page_content=doc.page_content, metadata=metadata))
        return out
