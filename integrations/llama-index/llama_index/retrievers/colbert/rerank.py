"""`ColBERTRerank`: reorder any LlamaIndex retriever's nodes by MaxSim (a node postprocessor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle
from llama_index.retrievers.colbert.base import annotate
from pydantic import Field, PrivateAttr

from colbert_retriever import ColBERT

dispatcher = get_dispatcher(__name__)


class ColBERTRerank(BaseNodePostprocessor):
    """Rerank the nodes of any retriever by MaxSim against the query; keep `top_n`.

    Example:
        .. code-block:: python

            reranker = ColBERTRerank(model="colbert-ir/colbertv2.0", top_n=3)
            engine = index.as_query_engine(node_postprocessors=[reranker])

    Each kept node's score becomes its MaxSim; its metadata gets `score` and `rank` (only
    where the node has no keys of those names, hidden from the LLM and embedder) and, with
    `keep_retrieval_score`, the score it came with as `retrieval_score`. Emits LlamaIndex's
    reranking events (`ReRankStartEvent`/`ReRankEndEvent`, `CBEventType.RERANKING`).
    """

    model: str = Field(default="", description="The checkpoint (folder or Hugging Face id) reranking.")
    top_n: int = Field(default=3, description="Nodes kept after reranking.")
    keep_retrieval_score: bool = Field(default=False, description="Record each node's incoming score.")
    _colbert: ColBERT = PrivateAttr()

    def __init__(
        self,
        model: str | Path | None = None,
        top_n: int = 3,
        *,
        colbert: ColBERT | None = None,
        keep_retrieval_score: bool = False,
        **kwargs: Any,
    ) -> None:
        if (model is None) == (colbert is None):
            msg = "ColBERTRerank needs exactly one of model= (a checkpoint) or colbert= (a loaded ColBERT)"
            raise ValueError(msg)
        colbert = colbert if colbert is not None else ColBERT.from_pretrained(model)  # type: ignore[arg-type]
        name = str(model) if model is not None else colbert.encoder.fingerprint.name
        super().__init__(model=name, top_n=top_n, keep_retrieval_score=keep_retrieval_score, **kwargs)
        self._colbert = colbert

    @classmethod
    def from_pretrained(cls, model: str | Path, *, top_n: int = 3, **settings: Any) -> ColBERTRerank:
        """A reranker for `model` (local folder or hub id); `settings` are encoder settings."""
        return cls(colbert=ColBERT.from_pretrained(model, **settings), top_n=top_n)

    @classmethod
    def class_name(cls) -> str:
        return "ColBERTRerank"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        if query_bundle is None:
            msg = "ColBERTRerank needs the query: call postprocess_nodes(nodes, query_str=...)"
            raise ValueError(msg)
        dispatcher.event(ReRankStartEvent(query=query_bundle, nodes=nodes, top_n=self.top_n, model_name=self.model))
        if not nodes:
            dispatcher.event(ReRankEndEvent(nodes=[]))
            return []
        payload: dict[str, Any] = {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: self.model,
            EventPayload.QUERY_STR: query_bundle.query_str,
            EventPayload.TOP_K: self.top_n,
        }
        with self.callback_manager.event(CBEventType.RERANKING, payload=payload) as event:
            texts = [item.node.get_content() for item in nodes]
            hits = self._colbert.rerank(query_bundle.query_str, texts, k=self.top_n)
            reranked = []
            for hit in hits:
                incoming = nodes[hit.position]
                node = incoming.node.model_copy(deep=True)
                kept = {"retrieval_score": incoming.score} if self.keep_retrieval_score else {}
                annotate(node, {"score": hit.score, "rank": hit.rank, **kept})
                reranked.append(NodeWithScore(node=node, score=hit.score))
            event.on_end(payload={EventPayload.NODES: reranked})
        dispatcher.event(ReRankEndEvent(nodes=reranked))
        return reranked
