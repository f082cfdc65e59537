"""`ColBERTIndex`: a colbert-retriever index as a LlamaIndex managed index.

A managed index owns its storage and its retrieval (LlamaIndex's shape for an engine with
its own vectors, like Vectara's or Google's): documents go in whole, the core encodes them
one vector per token, splits long ones into passages and keeps everything on disk. Nothing
is held in LlamaIndex's docstore or vector store.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.callbacks import CallbackManager
from llama_index.core.data_structs.data_structs import IndexDict
from llama_index.core.indices.managed.base import BaseManagedIndex
from llama_index.core.ingestion import run_transformations
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import BaseNode, Document, TransformComponent
from llama_index.retrievers.colbert.base import ColBERTRetriever

from colbert_retriever import ColBERT, QdrantConfig

_RETRIEVER_ARGS = ("similarity_top_k", "filters", "highlights", "mode", "verbose")


class ColBERTIndex(BaseManagedIndex):
    """Late-interaction (ColBERT) retrieval as a LlamaIndex index.

    Example:
        .. code-block:: python

            index = ColBERTIndex.from_documents(documents, model="colbert-ir/colbertv2.0", index_path="./idx")
            engine = index.as_query_engine(llm=llm, similarity_top_k=3)
            index.insert(Document(text="...", id_="new"))
            index = ColBERTIndex(index_path="./idx")          # reopened later, with its model

    Args:
        index_path: An index folder or a `QdrantConfig`: opened if an index is there, else
            created (with `model`). None: a temporary folder, deleted by `close` or when
            the index is garbage-collected.
        model: A checkpoint folder or Hugging Face id; needed to create an index, and by
            default the one recorded in an existing index.
        colbert: A core retriever to wrap instead of `index_path` / `model`.
        transformations: Node parsers run on each inserted document (e.g. a
            `SentenceSplitter`); by default none: documents are stored whole and the core
            splits long ones into passages, citing each by its span.

    The stored data is the index itself: it persists as it is written (every write is
    atomic) and `storage_context.persist()` has nothing to add.
    """

    def __init__(
        self,
        index_path: str | Path | QdrantConfig | None = None,
        model: str | Path | None = None,
        *,
        colbert: ColBERT | None = None,
        transformations: list[TransformComponent] | None = None,
        callback_manager: CallbackManager | None = None,
        show_progress: bool = False,
        **kwargs: Any,
    ) -> None:
        if colbert is not None:
            if index_path is not None or model is not None:
                msg = "give either colbert= or index_path/model, not both"
                raise ValueError(msg)
        elif model is not None:
            colbert = ColBERT.create(index_path, model=model, exist_ok=True)
        elif index_path is not None:
            colbert = ColBERT.open(index_path)
        else:
            msg = "ColBERTIndex needs model= to create an index (or index_path= of an existing one)"
            raise ValueError(msg)
        self.colbert = colbert
        self._node_parsers = list(transformations or [])
        super().__init__(
            index_struct=IndexDict(),
            callback_manager=callback_manager,
            transformations=self._node_parsers,
            show_progress=show_progress,
            **kwargs,
        )

    @classmethod
    def from_documents(  # type: ignore[override]
        cls,
        documents: Sequence[Document],
        *,
        model: str | Path,
        index_path: str | Path | QdrantConfig | None = None,
        transformations: list[TransformComponent] | None = None,
        callback_manager: CallbackManager | None = None,
        show_progress: bool = False,
        **kwargs: Any,
    ) -> ColBERTIndex:
        """A new index at `index_path` (see the class) holding `documents`, all or nothing."""
        index = cls(
            index_path,
            model,
            transformations=transformations,
            callback_manager=callback_manager,
            show_progress=show_progress,
            **kwargs,
        )
        index._insert(index._parse(documents))
        return index

    def _parse(self, documents: Sequence[Document]) -> Sequence[BaseNode]:
        if not self._node_parsers:
            return documents
        return run_transformations(list(documents), self._node_parsers, show_progress=self._show_progress)

    def _insert(self, nodes: Sequence[BaseNode], **insert_kwargs: Any) -> None:
        """Encode and store `nodes` under their ids, all or nothing."""
        self._retriever().insert(nodes, **insert_kwargs)

    def insert(self, document: Document, **insert_kwargs: Any) -> None:
        """Store one document (parsed into nodes first if the index has transformations)."""
        self._insert(self._parse([document]), **insert_kwargs)

    def delete_ref_doc(self, ref_doc_id: str, delete_from_docstore: bool = False, **delete_kwargs: Any) -> None:
        """Delete a document and every node inserted from it, in one write."""
        self._retriever().delete_ref_doc(ref_doc_id)

    def update_ref_doc(self, document: Document, **update_kwargs: Any) -> None:
        """Replace a document: stored whole, in one atomic write; with transformations,
        its old nodes are deleted, then the new ones stored (two writes)."""
        if self._node_parsers:
            self.delete_ref_doc(document.id_)
            self.insert(document)
        else:
            self._retriever().insert([document], upsert=True)

    def as_retriever(self, **kwargs: Any) -> ColBERTRetriever:
        """A `ColBERTRetriever` over this index: `similarity_top_k` (10), `filters`
        (`MetadataFilters`), `highlights`, `mode`, `verbose`."""
        unknown = sorted(set(kwargs) - set(_RETRIEVER_ARGS))
        if unknown:
            msg = f"ColBERTIndex.as_retriever got unexpected arguments: {', '.join(unknown)}"
            raise TypeError(msg)
        return ColBERTRetriever(self.colbert, callback_manager=self._callback_manager, **kwargs)

    def as_query_engine(self, llm: Any = None, **kwargs: Any) -> BaseQueryEngine:
        """A query engine: the retriever's arguments (see `as_retriever`) go to it, the
        rest (`response_mode`, `node_postprocessors`, ...) to `RetrieverQueryEngine`."""
        retriever_args = {key: kwargs.pop(key) for key in _RETRIEVER_ARGS if key in kwargs}
        retriever = self.as_retriever(**retriever_args)
        return RetrieverQueryEngine.from_args(retriever, llm=llm, callback_manager=self._callback_manager, **kwargs)

    def close(self) -> None:
        """Release the index (and delete it if it lives in a temporary folder)."""
        self.colbert.close()

    def _retriever(self) -> ColBERTRetriever:
        return ColBERTRetriever(self.colbert)
