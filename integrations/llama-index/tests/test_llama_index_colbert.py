from __future__ import annotations

import asyncio
from pathlib import Path

import llama_index.retrievers.colbert as package
import pytest
from llama_index.core import Document, Settings
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import QueryFusionRetriever
from llama_index.core.schema import NodeRelationship, NodeWithScore, QueryBundle, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters
from llama_index.retrievers.colbert import ColBERTRerank, ColBERTRetriever

from colbert_retriever import ColBERT, DocumentNotFoundError, QdrantConfig


def test_all_is_pinned() -> None:
    assert sorted(package.__all__) == ["ColBERTIndex", "ColBERTRerank", "ColBERTRetriever"]


def test_retrieve_returns_nodes_with_scores(colbert: ColBERT) -> None:
    nodes = ColBERTRetriever(colbert, similarity_top_k=3).retrieve("Which hormone controls blood sugar?")
    assert nodes[0].node.node_id == "insulin"
    assert [n.node.metadata["rank"] for n in nodes] == [1, 2, 3]
    assert nodes[0].node.metadata["doc_id"] == "insulin"
    expected = colbert.search("Which hormone controls blood sugar?", k=3)
    assert [(n.node.node_id, n.score) for n in nodes] == [(h.doc_id, h.normalized_score) for h in expected]
    assert "score" not in nodes[0].node.get_content(metadata_mode="llm")  # result keys stay out of prompts
    assert "Insulin" in nodes[0].node.get_content(metadata_mode="llm")


def test_async_retrieve(colbert: ColBERT) -> None:
    nodes = asyncio.run(ColBERTRetriever(colbert, similarity_top_k=1).aretrieve("Who wrote Hamlet?"))
    assert nodes[0].node.node_id == "shakespeare"


def test_metadata_filters(colbert: ColBERT) -> None:
    filters = MetadataFilters(filters=[MetadataFilter(key="title", value="Coffee")])
    nodes = ColBERTRetriever(colbert, similarity_top_k=5, filters=filters).retrieve("a drink")
    assert [n.node.node_id for n in nodes] == ["coffee"]
    ranged = MetadataFilters(
        filters=[
            MetadataFilter(key="title", value="V", operator=FilterOperator.GTE),
            MetadataFilter(key="title", value="Vo", operator=FilterOperator.LT),
        ]
    )
    nodes = ColBERTRetriever(colbert, similarity_top_k=10, filters=ranged).retrieve("health")
    assert {n.node.node_id for n in nodes} == {"vaccines", "vitamin-d"}
    either = MetadataFilters(
        filters=[
            MetadataFilter(key="title", value=["Coffee", "Insulin"], operator=FilterOperator.IN),
            MetadataFilters(filters=[MetadataFilter(key="title", value="TCP")]),
        ],
        condition=FilterCondition.OR,
    )
    nodes = ColBERTRetriever(colbert, similarity_top_k=10, filters=either).retrieve("a drink")
    assert {n.node.node_id for n in nodes} == {"coffee", "insulin", "tcp"}
    negated = MetadataFilters(filters=[MetadataFilter(key="title", value="Coffee")], condition=FilterCondition.NOT)
    nodes = ColBERTRetriever(colbert, similarity_top_k=30, filters=negated).retrieve("a drink")
    assert len(nodes) == 19
    assert "coffee" not in {n.node.node_id for n in nodes}
    everything = ColBERTRetriever(colbert, similarity_top_k=30).retrieve("a drink")
    for empty in (MetadataFilters(filters=[]), MetadataFilters(filters=[MetadataFilters(filters=[])])):
        nodes = ColBERTRetriever(colbert, similarity_top_k=30, filters=empty).retrieve("a drink")  # no filter
        assert [n.node.node_id for n in nodes] == [n.node.node_id for n in everything]
    unsupported = MetadataFilters(filters=[MetadataFilter(key="title", value="A", operator=FilterOperator.TEXT_MATCH)])
    with pytest.raises(ValueError, match="cannot filter with operator"):
        ColBERTRetriever(colbert, filters=unsupported)


def _location(where: str, tmp_path: Path) -> Path | QdrantConfig:
    """An index folder, or a Qdrant collection in local mode: the adapters take either."""
    if where == "folder":
        return tmp_path / "idx"
    pytest.importorskip("qdrant_client")
    return QdrantConfig(path=str(tmp_path / "qdrant"), show_progress=False)


@pytest.mark.parametrize("where", ["folder", "qdrant"])
def test_builders_insert_and_delete(model_path: Path, tmp_path: Path, where: str) -> None:
    docs = [
        Document(id_="a", text="The cat sat on the mat.", metadata={"kind": "pet"}),
        Document(id_="b", text="Stock markets fell sharply on Monday.", metadata={"kind": "news"}),
    ]
    location = _location(where, tmp_path)
    retriever = ColBERTRetriever.from_documents(docs, model=model_path, index_path=location, similarity_top_k=1)
    assert retriever.retrieve("where did the cat sit?")[0].node.node_id == "a"
    assert retriever.insert([TextNode(id_="c", text="Dogs love to fetch sticks.")]) == ["c"]
    reopened = ColBERTRetriever.from_index(location, similarity_top_k=5)
    assert {n.node.node_id for n in reopened.retrieve("dogs")} == {"a", "b", "c"}
    reopened.delete(["a"])
    assert {n.node.node_id for n in reopened.retrieve("cat")} == {"b", "c"}
    with pytest.raises(DocumentNotFoundError):
        reopened.delete(["a"])
    reopened.delete(["b", "c"])
    assert reopened.retrieve("cat") == []  # every document deleted: no hits, no error
    nodes = [TextNode(id_="x", text="one passage"), TextNode(id_="y", text="another passage")]
    assert len(ColBERTRetriever.from_nodes(nodes, model=model_path).retrieve("passage")) == 2


def test_rerank_postprocessor(model_path: Path) -> None:
    reranker = ColBERTRerank.from_pretrained(model_path, top_n=2, show_progress=False)
    nodes = [
        NodeWithScore(node=TextNode(id_="0", text="Bananas are yellow."), score=0.9),
        NodeWithScore(node=TextNode(id_="1", text="The Eiffel Tower stands in Paris."), score=0.1),
        NodeWithScore(node=TextNode(id_="2", text="Paris is the capital of France."), score=0.5),
    ]
    kept = reranker.postprocess_nodes(nodes, query_str="Where is the Eiffel Tower?")
    assert [n.node.node_id for n in kept] == ["1", "2"]
    assert kept[0].score > kept[1].score
    with pytest.raises(ValueError, match="query"):
        reranker.postprocess_nodes(nodes)


def test_inside_query_engine_and_fusion(colbert: ColBERT) -> None:
    Settings.llm = MockLLM()
    retriever = ColBERTRetriever(colbert, similarity_top_k=2)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
    response = engine.query("Which protocol guarantees that data arrives in order?")
    assert response.source_nodes[0].node.node_id == "tcp"
    fusion = QueryFusionRetriever([retriever], similarity_top_k=2, num_queries=1, llm=MockLLM(), use_async=False)
    assert fusion.retrieve(QueryBundle("Who wrote Hamlet?"))[0].node.node_id == "shakespeare"


@pytest.mark.parametrize("where", ["folder", "qdrant"])
def test_passages_keep_their_source_and_leave_with_it(model_path: Path, tmp_path: Path, where: str) -> None:
    tail = " ".join(f"Sentence {i} is about gardening and the growing of tomatoes." for i in range(40))
    report = Document(text=f"{tail}\n\nThe Eiffel Tower was finished in 1889.", id_="report")
    node = TextNode(text="The Louvre is a museum in Paris.", id_="louvre-node")
    node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id="guide")
    retriever = ColBERTRetriever.from_documents([report], model=model_path, index_path=_location(where, tmp_path))
    retriever.insert([node])
    nodes = retriever.retrieve("When was the Eiffel Tower finished?")
    assert nodes[0].node.ref_doc_id == "report"
    assert "1889" in nodes[0].node.get_content()
    meta = nodes[0].node.metadata
    assert report.text[meta["start"] : meta["end"]] == nodes[0].node.get_content()
    louvre = next(n for n in retriever.retrieve("a museum in Paris") if n.node.node_id == "louvre-node")
    assert louvre.node.ref_doc_id == "guide"
    retriever.delete_ref_doc("guide")  # the node inserted from it
    retriever.delete_ref_doc("report")  # the document, every passage
    assert retriever.retrieve("Eiffel Tower museum") == []


def test_the_search_mode_passes_through(colbert: ColBERT) -> None:
    query = "Who wrote Hamlet?"
    for mode in ("hybrid", "late", "lexical"):
        nodes = ColBERTRetriever(colbert, similarity_top_k=3, mode=mode).retrieve(query)  # type: ignore[arg-type]
        expected = colbert.search(query, k=3, mode=mode)  # type: ignore[arg-type]
        assert [(n.node.node_id, n.score) for n in nodes] == [(h.doc_id, h.normalized_score) for h in expected]
    nodes = ColBERTRetriever(colbert, similarity_top_k=3).retrieve(query)
    assert nodes[0].node.metadata["lexical_score"] > 0  # hybrid: the default on a new index
    assert "lexical_score" not in nodes[0].node.get_content(metadata_mode="llm")


# Regression tests for defects found by using the adapter as a new user would.


def test_results_keep_the_users_keys_and_what_they_hid(model_path: Path, tmp_path: Path) -> None:
    doc = Document(
        id_="g",
        text="Glaciers carve valleys.",
        metadata={"rank": "gold", "score": "A+", "file_path": "/home/me/secret.txt"},
        excluded_llm_metadata_keys=["file_path"],
        excluded_embed_metadata_keys=["file_path", "rank"],
    )
    retriever = ColBERTRetriever.from_documents([doc], model=model_path, index_path=tmp_path / "i")
    (found,) = retriever.retrieve("How are valleys carved?")
    assert {key: found.node.metadata[key] for key in doc.metadata} == doc.metadata  # user keys win
    prompt = found.node.get_content(metadata_mode="llm")
    assert "secret.txt" not in prompt  # what the user hid stays hidden
    assert "gold" in prompt  # the user's own `rank` is not hidden as a result key
    assert "passage" not in prompt  # result keys are
    assert "gold" not in found.node.get_content(metadata_mode="embed")


def test_nodes_come_back_with_their_relationships(model_path: Path, tmp_path: Path) -> None:
    node = TextNode(text="The Louvre is a museum in Paris.", id_="louvre", metadata={"city": "Paris"})
    node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id="guide")
    node.relationships[NodeRelationship.NEXT] = RelatedNodeInfo(node_id="orsay")
    node.relationships[NodeRelationship.PREVIOUS] = RelatedNodeInfo(node_id="intro")
    retriever = ColBERTRetriever.from_nodes([node], model=model_path, index_path=tmp_path / "i")
    (found,) = retriever.retrieve("a museum")
    assert found.node.ref_doc_id == "guide"
    assert found.node.next_node is not None
    assert found.node.next_node.node_id == "orsay"
    assert found.node.prev_node is not None
    assert found.node.prev_node.node_id == "intro"
    assert found.node.metadata["city"] == "Paris"


def test_a_temporary_index_is_removed_when_closed_or_collected(model_path: Path) -> None:
    import gc

    closed = ColBERTRetriever.from_nodes([TextNode(id_="x", text="one text")], model=model_path)
    folder = Path(closed.colbert.index.path)  # type: ignore[attr-defined]
    closed.close()
    assert not folder.exists()
    dropped = ColBERTRetriever.from_nodes([TextNode(id_="x", text="one text")], model=model_path)
    folder = Path(dropped.colbert.index.path)  # type: ignore[attr-defined]
    del dropped
    gc.collect()
    assert not folder.exists()


def test_rerank_takes_model_records_score_rank_and_emits_events(model_path: Path) -> None:
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler

    seen: list[str] = []

    class Collect(BaseEventHandler):
        def handle(self, event, **kwargs) -> None:  # type: ignore[no-untyped-def]
            seen.append(event.class_name())

    get_dispatcher().add_event_handler(Collect())
    reranker = ColBERTRerank(model=str(model_path), top_n=1, keep_retrieval_score=True)
    nodes = [
        NodeWithScore(node=TextNode(id_="0", text="Bananas are yellow.", metadata={"rank": "mine"}), score=0.9),
        NodeWithScore(node=TextNode(id_="1", text="The Eiffel Tower stands in Paris."), score=0.1),
    ]
    (best,) = reranker.postprocess_nodes(nodes, query_str="Where is the Eiffel Tower?")
    assert best.node.node_id == "1"
    assert best.node.metadata["score"] == best.score
    assert best.node.metadata["rank"] == 1
    assert best.node.metadata["retrieval_score"] == 0.1
    assert "retrieval_score" not in best.node.get_content(metadata_mode="llm")
    assert nodes[1].node.metadata == {}  # the incoming node is not changed
    assert {"ReRankStartEvent", "ReRankEndEvent"} <= set(seen)
    (kept,) = ColBERTRerank(model=str(model_path), top_n=1).postprocess_nodes(nodes[:1], query_str="fruit")
    assert kept.node.metadata["rank"] == "mine"  # the user's key wins
    with pytest.raises(ValueError, match="exactly one of model="):
        ColBERTRerank(top_n=1)


@pytest.mark.parametrize("where", ["folder", "qdrant"])
def test_every_metadata_filter_operator(model_path: Path, tmp_path: Path, where: str) -> None:
    records = [
        ("a", {"year": 2019, "tags": ["ml", "nlp"], "lang": "en"}),
        ("b", {"year": 2021, "tags": ["ml"], "lang": "fr"}),
        ("c", {"year": 2023, "tags": [], "lang": "en"}),
        ("d", {"year": 2024, "lang": "de"}),
    ]
    nodes = [TextNode(id_=doc_id, text=f"Paper {doc_id} about retrieval.", metadata=meta) for doc_id, meta in records]
    location = _location(where, tmp_path)
    retriever = ColBERTRetriever.from_nodes(nodes, model=model_path, index_path=location, similarity_top_k=10)

    def ids(*items: MetadataFilter | MetadataFilters, condition: FilterCondition = FilterCondition.AND) -> set[str]:
        retriever_filters = MetadataFilters(filters=list(items), condition=condition)
        found = ColBERTRetriever(retriever.colbert, similarity_top_k=10, filters=retriever_filters).retrieve("paper")
        return {n.node.node_id for n in found}

    op = FilterOperator
    assert ids(MetadataFilter(key="lang", value="en", operator=op.EQ)) == {"a", "c"}
    assert ids(MetadataFilter(key="lang", value="en", operator=op.NE)) == {"b", "d"}
    assert ids(MetadataFilter(key="year", value=2021, operator=op.GT)) == {"c", "d"}
    assert ids(MetadataFilter(key="year", value=2021, operator=op.GTE)) == {"b", "c", "d"}
    assert ids(MetadataFilter(key="year", value=2021, operator=op.LT)) == {"a"}
    assert ids(MetadataFilter(key="year", value=2021, operator=op.LTE)) == {"a", "b"}
    assert ids(MetadataFilter(key="lang", value=["fr", "de"], operator=op.IN)) == {"b", "d"}
    assert ids(MetadataFilter(key="lang", value=["fr", "de"], operator=op.NIN)) == {"a", "c"}
    assert ids(MetadataFilter(key="tags", value="nlp", operator=op.CONTAINS)) == {"a"}
    assert ids(MetadataFilter(key="tags", value=["nlp", "ml"], operator=op.ANY)) == {"a", "b"}
    assert ids(MetadataFilter(key="tags", value=["nlp", "ml"], operator=op.ALL)) == {"a"}
    assert ids(MetadataFilter(key="tags", value=None, operator=op.IS_EMPTY)) == {"c", "d"}
    either = [MetadataFilter(key="lang", value="fr"), MetadataFilter(key="year", value=2024)]
    assert ids(*either, condition=FilterCondition.OR) == {"b", "d"}
    assert ids(*either, condition=FilterCondition.NOT) == {"a", "b", "c", "d"}  # not (fr and 2024)
    nested = MetadataFilters(filters=either, condition=FilterCondition.OR)
    assert ids(nested, MetadataFilter(key="year", value=2022, operator=op.GT)) == {"d"}
    for text_op in (op.TEXT_MATCH, op.TEXT_MATCH_INSENSITIVE):
        with pytest.raises(ValueError, match="cannot filter with operator"):
            ids(MetadataFilter(key="lang", value="e", operator=text_op))
