"""`ColBERTRetriever`: a LangChain retriever over a colbert-retriever index.

It converts types only: search, filtering and storage are the core's.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from colbert_retriever import ColBERT, Filter, Hit, Mode, QdrantConfig


def hit_to_document(hit: Hit) -> Document:
    """A core `Hit` as a LangChain `Document` holding the passage that scored. The metadata
    gets doc_id, score, rank and where the passage lies in the source document (`passage`,
    `start`, `end`: character offsets, for citations); with highlights, `highlights`: the
    matched words' [start, end] spans in `page_content`."""
    return Document(id=hit.doc_id, page_content=hit.text, metadata=hit.cited_metadata())


class ColBERTRetriever(BaseRetriever):
    """Late-interaction (ColBERT) retrieval as a LangChain retriever.

    Example:
        .. code-block:: python

            retriever = ColBERTRetriever.from_texts(texts, model="colbert-ir/colbertv2.0", k=4)
            docs = retriever.invoke("what is late interaction?")

    Attributes:
        colbert: The core retriever (an index plus its encoder).
        k: Documents returned per query; `invoke(query, k=...)` overrides it.
        filter: A core filter-language object, e.g. `{"year": {"$gte": 2020}}` (see
            `colbert_retriever.filters`), or a callable(metadata) -> bool.
        highlights: Put the matched words' spans into each document's metadata.
        mode: "hybrid" (late interaction fused with BM25, the default on an index with a
            full-text side), "late" or "lexical"; `invoke(query, mode=...)` overrides it.
        search_kwargs: Extra keyword arguments for `ColBERT.search` (e.g. {"k": 8}).

    Long texts are indexed as passages (the core's default chunking); each result is the
    best passage of a distinct source document, with its span in that document.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    colbert: ColBERT
    k: int = 4
    filter: Filter | None = None
    highlights: bool = False
    mode: Mode | None = None
    search_kwargs: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        metadatas: Iterable[dict[str, Any]] | None = None,
        ids: Iterable[str] | None = None,
        *,
        model: str | Path,
        index_path: str | Path | QdrantConfig | None = None,
        k: int = 4,
        **kwargs: Any,
    ) -> ColBERTRetriever:
        """Encode `texts` into a new index at `index_path` (a folder, or a `QdrantConfig`
        naming a Qdrant collection; a temporary folder if None).

        `model` is a local checkpoint folder or a Hugging Face id, as in the core.
        Other keyword arguments are fields of this class (`filter`, `search_kwargs`).
        """
        colbert = ColBERT.create(index_path, model=model)
        colbert.add(texts, ids=ids, metadata=metadatas)
        return cls(colbert=colbert, k=k, **kwargs)

    @classmethod
    def from_documents(
        cls,
        documents: Sequence[Document],
        *,
        model: str | Path,
        index_path: str | Path | QdrantConfig | None = None,
        k: int = 4,
        **kwargs: Any,
    ) -> ColBERTRetriever:
        """Like `from_texts`, with each document's `id` (when set) as its id."""
        texts, metadatas, ids = _unpack(documents)
        return cls.from_texts(texts, metadatas, fill_ids(ids), model=model, index_path=index_path, k=k, **kwargs)

    @classmethod
    def from_index(
        cls, index_path: str | Path | QdrantConfig, *, model: str | Path | None = None, k: int = 4, **kwargs: Any
    ) -> ColBERTRetriever:
        """Open an existing index, a folder or a `QdrantConfig` (with the model recorded in it
        unless `model` is given)."""
        return cls(colbert=ColBERT.open(index_path, model=model), k=k, **kwargs)

    def add_documents(self, documents: Sequence[Document], *, ids: Sequence[str | None] | None = None) -> list[str]:
        """Add documents, all or nothing; return their ids: `ids` if given, else each
        document's `id`, with a new one generated only where that is missing."""
        texts, metadatas, own_ids = _unpack(documents)
        return self.colbert.add(texts, ids=fill_ids(own_ids if ids is None else ids), metadata=metadatas)

    def close(self) -> None:
        """Release the index (and delete it if it lives in a temporary folder)."""
        self.colbert.close()

    def delete(self, ids: Sequence[str]) -> None:
        """Delete documents by id (every passage of each)."""
        self.colbert.delete(list(ids))

    def _search_args(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The search's arguments: the fields, then `search_kwargs`, then `invoke`'s own
        (`filter` is the field's name, `filters` the core's; both are accepted)."""
        args = {"k": self.k, "filters": self.filter, "highlights": self.highlights, "mode": self.mode}
        for given in (self.search_kwargs, kwargs):
            given = dict(given)
            if "filter" in given:
                given["filters"] = given.pop("filter")
            unknown = sorted(set(given) - set(args))
            if unknown:
                known = ", ".join([*args, "filter"])
                msg = f"ColBERTRetriever got unexpected search arguments: {', '.join(unknown)} (known: {known})"
                raise TypeError(msg)
            args |= given
        return args

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return [hit_to_document(hit) for hit in self.colbert.search(query, **self._search_args(kwargs))]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        # The search is CPU-bound: run it in a worker thread, never on the event loop.
        hits = await asyncio.to_thread(self.colbert.search, query, **self._search_args(kwargs))
        return [hit_to_document(hit) for hit in hits]


def _unpack(documents: Sequence[Document]) -> tuple[list[str], list[dict[str, Any]], list[str | None]]:
    texts = [doc.page_content for doc in documents]
    return texts, [dict(doc.metadata) for doc in documents], [doc.id for doc in documents]


def fill_ids(ids: Sequence[str | None]) -> list[str]:
    """The given ids, with a random one wherever an id is missing (None or empty)."""
    return [doc_id or uuid.uuid4().hex for doc_id in ids]
