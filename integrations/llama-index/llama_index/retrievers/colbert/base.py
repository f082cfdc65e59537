"""`ColBERTRetriever` and `ColBERTRerank` for LlamaIndex.

They convert types only: search, filtering and storage are colbert-retriever's.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import BaseNode, NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from pydantic import Field, PrivateAttr

from colbert_retriever import ColBERT, Hit

# Added to each node's metadata, kept out of what the LLM and embedders see.
RESULT_KEYS = ["score", "rank"]


def to_core_filters(filters: MetadataFilters | None) -> dict[str, Any] | None:
    """LlamaIndex `MetadataFilters` as the core's equality filter.

    Supported: equality filters (`MetadataFilter` with `==`, or `ExactMatchFilter`)
    combined with AND. Anything else raises `ValueError`: it is not silently dropped.
    """
    if filters is None:
        return None
    if filters.condition not in (None, FilterCondition.AND):
        msg = f"ColBERTRetriever supports only AND-combined filters, got condition {filters.condition!r}"
        raise ValueError(msg)
    equalities: dict[str, Any] = {}
    for item in filters.filters:
        # ExactMatchFilter is a MetadataFilter whose operator is "=="
        if not isinstance(item, MetadataFilter) or item.operator != FilterOperator.EQ:
            msg = f"ColBERTRetriever supports only equality metadata filters for now, got {item!r}"
            raise ValueError(msg)
        equalities[item.key] = item.value
    return equalities


def hit_to_node(hit: Hit) -> NodeWithScore:
    """A core `Hit` as a `NodeWithScore`: the node's id is the document id, score is MaxSim."""
    node = TextNode(
        id_=hit.doc_id,
        text=hit.text,
        metadata={**hit.metadata, "score": hit.score, "rank": hit.rank},
        excluded_llm_metadata_keys=RESULT_KEYS,
        excluded_embed_metadata_keys=RESULT_KEYS,
    )
    return NodeWithScore(node=node, score=hit.score)


class ColBERTRetriever(BaseRetriever):
    """Late-interaction (ColBERT) retrieval as a LlamaIndex retriever.

    Example:
        .. code-block:: python

            retriever = ColBERTRetriever.from_documents(documents, model="colbert-ir/colbertv2.0")
            nodes = retriever.retrieve("what is late interaction?")
    """

    def __init__(
        self,
        colbert: ColBERT,
        similarity_top_k: int = 10,
        filters: MetadataFilters | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        self.colbert = colbert
        self.similarity_top_k = similarity_top_k
        self._filters = to_core_filters(filters)
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    @classmethod
    def from_nodes(
        cls,
        nodes: Sequence[BaseNode],
        *,
        model: str | Path,
        index_path: str | Path | None = None,
        similarity_top_k: int = 10,
        **kwargs: Any,
    ) -> ColBERTRetriever:
        """Encode `nodes` (their ids, text and metadata) into a new index at `index_path`
        (a temporary folder if None). `model` is a local folder or a Hugging Face id."""
        path = Path(index_path) if index_path is not None else Path(tempfile.mkdtemp(prefix="colbert-")) / "index"
        retriever = cls(ColBERT.create(path, model=model), similarity_top_k=similarity_top_k, **kwargs)
        retriever.insert(nodes)
        return retriever

    @classmethod
    def from_documents(cls, documents: Sequence[BaseNode], **kwargs: Any) -> ColBERTRetriever:
        """`from_nodes` for LlamaIndex `Document`s: one indexed passage per document (split
        long documents into nodes first, e.g. with a `SentenceSplitter`)."""
        return cls.from_nodes(documents, **kwargs)

    @classmethod
    def from_index(
        cls, index_path: str | Path, *, model: str | Path | None = None, similarity_top_k: int = 10, **kwargs: Any
    ) -> ColBERTRetriever:
        """Open an existing index (with the model recorded in it unless `model` is given)."""
        return cls(ColBERT.open(index_path, model=model), similarity_top_k=similarity_top_k, **kwargs)

    def insert(self, nodes: Sequence[BaseNode]) -> list[str]:
        """Add nodes or documents under their node ids; return the ids."""
        return self.colbert.add(
            [node.get_content() for node in nodes],
            ids=[node.node_id for node in nodes],
            metadata=[dict(node.metadata) for node in nodes],
        )

    def delete(self, ids: Sequence[str]) -> None:
        """Delete by node id."""
        self.colbert.delete(list(ids))

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.colbert.search(query_bundle.query_str, k=self.similarity_top_k, filters=self._filters)
        return [hit_to_node(hit) for hit in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # CPU-bound: run in a worker thread so the event loop stays free.
        return await asyncio.to_thread(self._retrieve, query_bundle)


class ColBERTRerank(BaseNodePostprocessor):
    """Rerank the nodes of any retriever by MaxSim against the query; keep `top_n`."""

    top_n: int = Field(default=3, description="Nodes kept after reranking.")
    _colbert: ColBERT = PrivateAttr()

    def __init__(self, colbert: ColBERT, top_n: int = 3, **kwargs: Any) -> None:
        super().__init__(top_n=top_n, **kwargs)
        self._colbert = colbert

    @classmethod
    def from_pretrained(cls, model: str | Path, *, top_n: int = 3, **settings: Any) -> ColBERTRerank:
        """A reranker for `model` (local folder or hub id); `settings` are encoder settings."""
        return cls(ColBERT.from_pretrained(model, **settings), top_n=top_n)

    @classmethod
    def class_name(cls) -> str:
        return "ColBERTRerank"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        if query_bundle is None:
            msg = "ColBERTRerank needs the query: call postprocess_nodes(nodes, query_str=...)"
            raise ValueError(msg)
        if not nodes:
            return []
        texts = [item.node.get_content() for item in nodes]
        hits = self._colbert.rerank(query_bundle.query_str, texts, k=self.top_n)
        return [NodeWithScore(node=nodes[int(hit.doc_id)].node, score=hit.score) for hit in hits]
