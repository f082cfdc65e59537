"""`ColBERTIndex`: the managed index inside LlamaIndex's own machinery."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core import Document
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.vector_stores import FilterOperator, MetadataFilter, MetadataFilters
from llama_index.retrievers.colbert import ColBERTIndex, ColBERTRerank

DOCS = [
    Document(id_="tcp", text="TCP guarantees that data arrives in order.", metadata={"topic": "network"}),
    Document(id_="udp", text="UDP sends datagrams without delivery guarantees.", metadata={"topic": "network"}),
    Document(id_="bread", text="Bread rises because yeast produces carbon dioxide.", metadata={"topic": "food"}),
]


def test_build_query_insert_update_delete_and_reopen(model_path: Path, tmp_path: Path) -> None:
    index = ColBERTIndex.from_documents(DOCS, model=model_path, index_path=tmp_path / "idx")
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=1)
    response = engine.query("Which protocol keeps data in order?")
    assert [n.node.node_id for n in response.source_nodes] == ["tcp"]
    assert "TCP guarantees" in str(response)  # MockLLM echoes the prompt: the passage reached it

    index.insert(Document(id_="pasta", text="Pasta is boiled in salted water.", metadata={"topic": "food"}))
    food = MetadataFilters(filters=[MetadataFilter(key="topic", value="food")])
    found = index.as_retriever(similarity_top_k=5, filters=food).retrieve("how to cook pasta")
    assert [n.node.node_id for n in found] == ["pasta", "bread"]

    index.update_ref_doc(Document(id_="bread", text="Sourdough bread uses wild yeast.", metadata={"topic": "food"}))
    (bread,) = index.as_retriever(similarity_top_k=1).retrieve("sourdough")
    assert bread.node.get_content() == "Sourdough bread uses wild yeast."
    index.delete_ref_doc("udp")
    index.close()

    reopened = ColBERTIndex(index_path=tmp_path / "idx")  # the model recorded in the index
    ids = {n.node.node_id for n in reopened.as_retriever(similarity_top_k=10).retrieve("anything")}
    assert ids == {"tcp", "bread", "pasta"}
    reranked = reopened.as_query_engine(
        llm=MockLLM(), similarity_top_k=3, node_postprocessors=[ColBERTRerank(colbert=reopened.colbert, top_n=1)]
    ).query("yeast")
    assert [n.node.node_id for n in reranked.source_nodes] == ["bread"]
    with pytest.raises(TypeError, match="unexpected arguments: top_k"):
        reopened.as_retriever(top_k=3)


def test_transformations_make_nodes_that_keep_their_document(model_path: Path) -> None:
    long_doc = Document(
        id_="guide",
        text=" ".join(f"Sentence {i} is about the gardens of Paris." for i in range(30)) + " The Louvre is a museum.",
    )
    index = ColBERTIndex.from_documents(
        [long_doc], model=model_path, transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=0)]
    )
    nodes = index.as_retriever(similarity_top_k=3).retrieve("Which building is a museum?")
    assert len({n.node.node_id for n in nodes}) == 3  # the splitter's nodes, stored one by one
    assert "Louvre" in nodes[0].node.get_content()
    assert all(n.node.ref_doc_id == "guide" for n in nodes)
    assert nodes[0].node.prev_node is not None  # the splitter's links survive the index
    index.update_ref_doc(Document(id_="guide", text="The Orsay is a museum."))
    (only,) = index.as_retriever(similarity_top_k=5).retrieve("museum")
    assert only.node.get_content() == "The Orsay is a museum."
    index.delete_ref_doc("guide")
    assert index.as_retriever().retrieve("museum") == []
    index.close()


def test_filters_with_operators_through_the_index(model_path: Path) -> None:
    index = ColBERTIndex.from_documents(DOCS, model=model_path)
    not_food = MetadataFilters(filters=[MetadataFilter(key="topic", value="food", operator=FilterOperator.NE)])
    found = index.as_retriever(similarity_top_k=5, filters=not_food).retrieve("bread")
    assert {n.node.node_id for n in found} == {"tcp", "udp"}
    with pytest.raises(ValueError, match="needs model="):
        ColBERTIndex()
    index.close()
