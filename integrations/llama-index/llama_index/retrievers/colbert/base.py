"""`ColBERTRetriever` for LlamaIndex, and the conversions between nodes and the core's records.

They convert types only: search, filtering and storage are colbert-retriever's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import BaseNode, NodeRelationship, NodeWithScore, QueryBundle, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from colbert_retriever import ColBERT, Hit, Mode, QdrantConfig

REF_DOC_KEY = "ref_doc_id"  # a node's source document, kept in the stored metadata
NODE_KEY = "_node_content"  # the whole node as LlamaIndex's vector stores keep it (JSON, no text)

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
    if filters is None or not filters.filters:  # MetadataFilters(filters=[]): no filter, as in LlamaIndex's stores
        return None
    parts = [_to_core(item) for item in filters.filters]
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.NOT:
        return {"$not": {"$and": parts}}
    return {"$or" if condition == FilterCondition.OR else "$and": parts}


def _to_core(item: MetadataFilter | MetadataFilters) -> dict[str, Any]:
    if isinstance(item, MetadataFilters):
        return to_core_filters(item) or {}  # an empty group constrains nothing
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


def node_to_metadata(node: BaseNode) -> dict[str, Any]:
    """What is stored for a node: its metadata at the top level (for filters), its source
    document as `ref_doc_id` and the rest of the node (relationships, excluded metadata
    keys, templates) as LlamaIndex's vector stores keep it, so a result is the node inserted.
    A node without a source gets no source keys (LlamaIndex would store the string "None")."""
    stored = node_to_metadata_dict(node, remove_text=True)
    if node.ref_doc_id is None:
        for key in ("document_id", "doc_id", REF_DOC_KEY):
            del stored[key]
    return stored


def hit_to_node(hit: Hit) -> NodeWithScore:
    """A core `Hit` as a `NodeWithScore` holding the passage that scored: the node inserted
    (id, metadata, relationships, excluded keys) with the passage as its text, scored by
    `Hit.normalized_score` (mean MaxSim per query token in every mode, so a cutoff such as
    `SimilarityPostprocessor(similarity_cutoff=...)` means one thing; `score` is in the metadata).

    The metadata gets the passage's span in the stored text (`passage`, `start`, `end`),
    `doc_id`, `score`, `rank` and, with highlights, the matched words' [start, end] spans,
    each only where the node has no key of that name; they are hidden from the LLM and
    the embedder. A node without a source (a document, or a record the core stored
    directly, which becomes a `TextNode`) gets the stored document as its SOURCE.
    """
    if NODE_KEY in hit.metadata:
        node, source = metadata_dict_to_node(hit.metadata, text=hit.text), hit.doc_id
    else:
        node = TextNode(id_=hit.doc_id, text=hit.text, metadata=dict(hit.metadata))
        source = str(hit.metadata.get(REF_DOC_KEY, hit.doc_id))
    if NodeRelationship.SOURCE not in node.relationships:
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=source)
    annotate(node, hit.result_fields())
    return NodeWithScore(node=node, score=hit.normalized_score)


def annotate(node: BaseNode, fields: dict[str, Any]) -> None:
    """Add result `fields` to the node's metadata where it has no key of that name (the
    user's keys win), hidden from the LLM and the embedder."""
    added = {key: value for key, value in fields.items() if key not in node.metadata}
    node.metadata.update(added)
    node.excluded_llm_metadata_keys = [*node.excluded_llm_metadata_keys, *added]
    node.excluded_embed_metadata_keys = [*node.excluded_embed_metadata_keys, *added]


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
        """Encode `nodes` into a new index at `index_path` (a folder or a `QdrantConfig`;
        None: a temporary folder, deleted by `close` or when the retriever is
        garbage-collected). `model` is a local folder or a Hugging Face id."""
        retriever = cls(ColBERT.create(index_path, model=model), similarity_top_k=similarity_top_k, **kwargs)
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

    def insert(self, nodes: Sequence[BaseNode], *, upsert: bool = False) -> list[str]:
        """Add nodes or documents under their node ids (`upsert`: an id already stored is
        replaced); return the ids. Each node comes back whole from a search (see
        `hit_to_node`); its source document's id is stored as `ref_doc_id`."""
        write = self.colbert.upsert if upsert else self.colbert.add
        return write(
            [node.get_content() for node in nodes],
            ids=[node.node_id for node in nodes],
            metadata=[node_to_metadata(node) for node in nodes],
        )

    def close(self) -> None:
        """Release the index (and delete it if it lives in a temporary folder)."""
        self.colbert.close()

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
