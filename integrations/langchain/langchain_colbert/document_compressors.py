"""`ColBERTRerank`: reorder any retriever's documents by MaxSim (for ContextualCompressionRetriever)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, model_validator

from colbert_retriever import ColBERT


class ColBERTRerank(BaseDocumentCompressor):
    """Keep the `top_n` documents with the highest MaxSim against the query.

    Example:
        .. code-block:: python

            reranker = ColBERTRerank(model="colbert-ir/colbertv2.0", top_n=3)
            pipeline = ContextualCompressionRetriever(base_compressor=reranker, base_retriever=base)

    Each returned document is a copy whose metadata gets `relevance_score` (MaxSim divided
    by the query's tokens, the key LangChain's other compressors set; replaced by each
    reranker in a chain) and, unless the document already has keys of those names,
    `score` (raw MaxSim) and `rank`.

    Attributes:
        model: A checkpoint folder or Hugging Face id to load (or give `colbert`).
        colbert: A core retriever; no index is needed (`ColBERT.from_pretrained`).
        top_n: Documents kept.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    model: str | Path | None = None
    colbert: ColBERT | None = None
    top_n: int = 3

    @model_validator(mode="after")
    def _load(self) -> ColBERTRerank:
        if (self.model is None) == (self.colbert is None):
            msg = "ColBERTRerank needs exactly one of model= (a checkpoint) or colbert= (a loaded ColBERT)"
            raise ValueError(msg)
        if self.colbert is None:
            self.colbert = ColBERT.from_pretrained(self.model)  # type: ignore[arg-type]
        return self

    @classmethod
    def from_pretrained(cls, model: str | Path, *, top_n: int = 3, **settings: Any) -> ColBERTRerank:
        """A reranker for `model` (local folder or hub id); `settings` are encoder settings."""
        return cls(colbert=ColBERT.from_pretrained(model, **settings), top_n=top_n)

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        if not documents:
            return []
        assert self.colbert is not None  # set by _load
        hits = self.colbert.rerank(query, [doc.page_content for doc in documents], k=self.top_n)
        out = []
        for hit in hits:
            doc = documents[hit.position]
            metadata = {"score": hit.score, "rank": hit.rank, **doc.metadata, "relevance_score": hit.normalized_score}
            out.append(Document(id=doc.id, page_content=doc.page_content, metadata=metadata))
        return out
