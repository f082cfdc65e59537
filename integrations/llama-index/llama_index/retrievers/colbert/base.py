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
from llama_index.core.schema import BaseNode, NodeRelationship, NodeWithScore, QueryBundle, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from pydantic import Field, PrivateAttr

from colbert_retriever import ColBERT, Hit, Mode, QdrantConfig

# Added to each node's metadata, kept out of what the LLM and embedders see.
REF_DOC_KEY = "ref_doc_id"  # a node's source document, kept in the stored metadata
RESULT_KEYS = [
    *("doc_id", "score", "rank", "passage", "start", "end", "highlights", "late_score", "lexical_score"),
    REF_DOC_KEY,
]

# LlamaIndex operators as the core filter language's (colbert_retriever.filters)
_OPERATORS = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
    FilterOperator.CONTAINS: "$contains",
}


def to_core_filters(filters: MetadataFilters | None) -> dict[str, Any] | None:
    """LlamaIndex `MetadataFilters` in the core's filter language.

    Every comparison operator maps onto the core's, as do `ANY` / `ALL` (some / every value
    in a list field), `IS_EMPTY` and nested `MetadataFilters` under AND, OR or NOT. Text
    matching (`TEXT_MATCH`, `TEXT_MATCH_INSENSITIVE`) has no counterpart in the core and
    raises `ValueError`: a filter is never silently dropped.
    """
    if filters is None:
        return None
    parts = [_to_core(item) for item in filters.filters]
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.NOT:
        return {"$not": {"$and": parts}}
    return {"$or" if condition == FilterCondition.OR else "$and": parts}


def _to_core(item: MetadataFilter | MetadataFilters) -> dict[str, Any]:
    if isinstance(item, MetadataFilters):
        nested = to_core_filters(item)
        assert nested is not None
        return nested
    key, value, op = item.key, item.value, item.operator
    if op in _OPERATORS:
        return {key: {_OPERATORS[op]: value}}
    if op in (FilterOperator.ANY, FilterOperator.ALL) and isinstance(value, list):
        if not value:  # some of no values: nothing passes; all of them: everything does
            return {key: {"$in": []}} if op == FilterOperator.ANY else {}
        return {"$or" if op == FilterOperator.ANY else "$and": [{key: {"$contains": v}} for v in value]}
    if op == FilterOperator.IS_EMPTY:
        return {"$or": [{key: {"$exists": False}}, {key: None}, {key: []}]}
    msg = f"ColBERTRetriever cannot filter with operator {op!r} (on {key!r}); see colbert_retriever.filters"
    raise ValueError(msg)


def hit_to_node(hit: Hit) -> NodeWithScore:
    """A core `Hit` as a `NodeWithScore` holding the passage that scored: the node's id is
    the stored id, its SOURCE relationship (`ref_doc_id`) the document it came from (the
    inserted node's own source, else the stored document), score is MaxSim. The metadata
    gets the passage's span in the stored text (`passage`, `start`, `end`) and, with
    highlights, the matched words' [start, end] spans in the node's text."""
    source = str(hit.metadata.get(REF_DOC_KEY, hit.doc_id))
    node = TextNode(
        id_=hit.doc_id,
        text=hit.text,
        metadata=hit.cited_metadata(),
        excluded_llm_metadata_keys=RESULT_KEYS,
        excluded_embed_metadata_keys=RESULT_KEYS,
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=source)},
    )
    return NodeWithScore(node=node, score=hit.score)


class ColBERTRetriever(BaseRetriever):
    """Late-interaction (ColBERT) retrieval as a LlamaIndex retriever.

    Example:
        .. code-block:: python

            retriever = ColBERTRetriever.from_documents(documents, model="colbert-ir/colbertv2.0")
            nodes = retriever.retrieve("what is late interaction?")

    Documents are indexed whole: the core splits long ones into passages, and each result is
    the best passage of a distinct document. `highlights=True` adds the matched spans.
    `mode`: "hybrid" (late interaction fused with BM25, the default on an index with a
    full-text side), "late" or "lexical".
    """

    def __init__(
        self,
        colbert: ColBERT,
        similarity_top_k: int = 10,
        filters: MetadataFilters | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
        highlights: bool = False,
        mode: Mode | None = None,
    ) -> None:
        self.colbert = colbert
        self.similarity_top_k = similarity_top_k
        self.highlights = highlights
        self.mode = mode
        self._filters = to_core_filters(filters)
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    @classmethod
    def from_nodes(
        cls,
        nodes: Sequence[BaseNode],
        *,
        model: str | Path,
        index_path: str | Path | QdrantConfig | None = None,
        similarity_top_k: int = 10,
        **kwargs: Any,
    ) -> ColBERTRetriever:
        """Encode `nodes` (their ids, text and metadata) into a new index at `index_path`
        (a folder or a `QdrantConfig`; a temporary folder if None). `model` is a local folder or a Hugging Face id."""
        path = index_path if index_path is not None else Path(tempfile.mkdtemp(prefix="colbert-")) / "index"
        retriever = cls(ColBERT.create(path, model=model), similarity_top_k=similarity_top_k, **kwargs)
        retriever.insert(nodes)
        return retriever

    @classmethod
    def from_documents(cls, documents: Sequence[BaseNode], **kwargs: Any) -> ColBERTRetriever:
        """`from_nodes` for LlamaIndex `Document`s: each stored whole, long ones as passages."""
        return cls.from_nodes(documents, **kwargs)

    @classmethod
    def from_index(
        cls,
        index_path: str | Path | QdrantConfig,
        *,
        model: str | Path | None = None,
        similarity_top_k: int = 10,
        **kwargs: Any,
    ) -> ColBERTRetriever:
        """Open an existing index, a folder or a `QdrantConfig` (with the model recorded in it
        unless `model` is given)."""
        return cls(ColBERT.open(index_path, model=model), similarity_top_k=similarity_top_k, **kwargs)

    def insert(self, nodes: Sequence[BaseNode]) -> list[str]:
        """Add nodes or documents under their node ids; return the ids. A node with a
        source document keeps its id as `ref_doc_id` in the metadata."""
        return self.colbert.add(
            [node.get_content() for node in nodes],
            ids=[node.node_id for node in nodes],
            metadata=[
                {**node.metadata, REF_DOC_KEY: node.ref_doc_id} if node.ref_doc_id else dict(node.metadata)
                for node in nodes
            ],
        )

    def delete(self, ids: Sequence[str]) -> None:
        """Delete by node id (every passage of each)."""
        self.colbert.delete(list(ids))

    def delete_ref_doc(self, ref_doc_id: str) -> None:
        """Delete a source document: the one stored under `ref_doc_id` (all its passages)
        and every node inserted with it as `ref_doc_id`, in one write."""
        index = self.colbert.index
        ids = [*index.doc_ids({REF_DOC_KEY: ref_doc_id}), ref_doc_id]
        index.delete(list(dict.fromkeys(ids)), missing_ok=True)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.colbert.search(
            query_bundle.query_str,
            k=self.similarity_top_k,
            filters=self._filters,
            mode=self.mode,
            highlights=self.highlights,
        )
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
        return [NodeWithScore(node=nodes[hit.position].node, score=hit.score) for hit in hits]
