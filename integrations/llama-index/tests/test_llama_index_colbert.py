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
    assert sorted(package.__all__) == ["ColBERTRerank", "ColBERTRetriever"]


def test_retrieve_returns_nodes_with_scores(colbert: ColBERT) -> None:
    nodes = ColBERTRetriever(colbert, similarity_top_k=3).retrieve("Which hormone controls blood sugar?")
    assert nodes[0].node.node_id == "insulin"
    assert [n.node.metadata["rank"] for n in nodes] == [1, 2, 3]
    assert nodes[0].node.metadata["doc_id"] == "insulin"
    expected = colbert.search("Which hormone controls blood sugar?", k=3)
    assert [(n.node.node_id, n.score) for n in nodes] == [(h.doc_id, h.score) for h in expected]
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
        assert [(n.node.node_id, n.score) for n in nodes] == [(h.doc_id, h.score) for h in expected]
    nodes = ColBERTRetriever(colbert, similarity_top_k=3).retrieve(query)
    assert nodes[0].node.metadata["lexical_score"] > 0  # hybrid: the default on a new index
    assert "lexical_score" not in nodes[0].node.get_content(metadata_mode="llm")
