from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import langchain_colbert
import pytest
from langchain_colbert import ColBERTRerank, ColBERTRetriever
from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests

from colbert_retriever import ColBERT, DocumentNotFoundError, QdrantConfig


def test_all_is_pinned() -> None:
    assert sorted(langchain_colbert.__all__) == ["ColBERTRerank", "ColBERTRetriever", "ColBERTVectorStore"]


class TestStandardRetriever(RetrieversIntegrationTests):
    """LangChain's own standard retriever suite."""

    @pytest.fixture(autouse=True)
    def _use_example_index(self, colbert: ColBERT) -> None:
        self.colbert = colbert

    @property
    def retriever_constructor(self) -> type[ColBERTRetriever]:
        return ColBERTRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"colbert": self.colbert}

    @property
    def retriever_query_example(self) -> str:
        return "Who wrote Hamlet?"


def test_documents_carry_id_score_rank_and_metadata(colbert: ColBERT) -> None:
    docs = ColBERTRetriever(colbert=colbert, k=3).invoke("Which hormone controls blood sugar?")
    assert [d.metadata["rank"] for d in docs] == [1, 2, 3]
    assert docs[0].id == docs[0].metadata["doc_id"] == "insulin"
    assert docs[0].metadata["title"] == "Insulin"
    assert docs[0].metadata["score"] > docs[1].metadata["score"]
    expected = colbert.search("Which hormone controls blood sugar?", k=3)
    assert [(d.id, d.metadata["score"]) for d in docs] == [(h.doc_id, h.score) for h in expected]


def test_filter_and_search_kwargs(colbert: ColBERT) -> None:
    retriever = ColBERTRetriever(colbert=colbert, filter={"title": "Coffee"}, search_kwargs={"k": 10})
    assert [d.id for d in retriever.invoke("a drink")] == ["coffee"]
    retriever = ColBERTRetriever(colbert=colbert, filter=lambda m: m["title"].startswith("M"))
    assert {d.id for d in retriever.invoke("anything", k=10)} == {"mitochondria", "everest"}
    # the core's filter language passes through as it is
    retriever = ColBERTRetriever(colbert=colbert, filter={"title": {"$in": ["Coffee", "Insulin"]}}, k=10)
    assert {d.id for d in retriever.invoke("a drink")} == {"coffee", "insulin"}
    retriever = ColBERTRetriever(colbert=colbert, filter={"title": {"$gte": "V", "$lt": "Vo"}}, k=10)
    assert {d.id for d in retriever.invoke("health")} == {"vaccines", "vitamin-d"}


def test_async_search_runs_off_the_event_loop(colbert: ColBERT) -> None:
    retriever = ColBERTRetriever(colbert=colbert, k=2)
    loop_thread: list[int] = []
    search_threads: list[int] = []
    original = colbert.search

    def spy(*args, **kwargs):
        search_threads.append(threading.get_ident())
        time.sleep(0.2)
        return original(*args, **kwargs)

    async def main() -> list[Document]:
        loop_thread.append(threading.get_ident())
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        docs = await retriever.ainvoke("Who wrote Hamlet?")
        task.cancel()
        assert ticks >= 5  # the loop kept running while the search slept in its thread
        return docs

    colbert.search = spy
    try:
        docs = asyncio.run(main())
    finally:
        del colbert.search
    assert docs[0].id == "shakespeare"
    assert search_threads
    assert search_threads[0] != loop_thread[0]


@pytest.mark.parametrize("where", ["folder", "qdrant"])
def test_builders_add_and_delete(model_path: Path, tmp_path: Path, where: str) -> None:
    docs = [
        Document(id="a", page_content="The cat sat on the mat.", metadata={"kind": "pet"}),
        Document(id="b", page_content="Stock markets fell sharply on Monday.", metadata={"kind": "news"}),
    ]
    if where == "qdrant":
        pytest.importorskip("qdrant_client")
    location = tmp_path / "idx" if where == "folder" else QdrantConfig(path=str(tmp_path / "q"), show_progress=False)
    retriever = ColBERTRetriever.from_documents(docs, model=model_path, index_path=location, k=1)
    assert retriever.invoke("where did the cat sit?")[0].id == "a"
    assert retriever.add_documents([Document(id="c", page_content="Dogs love to fetch sticks.")]) == ["c"]
    reopened = ColBERTRetriever.from_index(location, k=5)
    assert {d.id for d in reopened.invoke("dogs")} == {"a", "b", "c"}
    reopened.delete(["a"])
    assert {d.id for d in reopened.invoke("cat", k=5)} == {"b", "c"}
    with pytest.raises(DocumentNotFoundError):  # core errors pass through unchanged
        reopened.delete(["a"])
    reopened.delete(["b", "c"])
    assert reopened.invoke("cat") == []  # every document deleted: no hits, no error
    in_temp = ColBERTRetriever.from_texts(["one text", "another text"], ids=["x", "y"], model=model_path, k=2)
    assert {d.id for d in in_temp.invoke("text")} == {"x", "y"}


def test_rerank_reorders_and_keeps_top_n(model_path: Path) -> None:
    reranker = ColBERTRerank.from_pretrained(model_path, top_n=2, show_progress=False)
    docs = [
        Document(page_content="Bananas are yellow.", metadata={"n": 0}),
        Document(page_content="The Eiffel Tower stands in Paris.", metadata={"n": 1}),
        Document(page_content="Paris is the capital of France.", metadata={"n": 2}),
    ]
    kept = reranker.compress_documents(docs, "Where is the Eiffel Tower?")
    assert [d.metadata["n"] for d in kept] == [1, 2]
    assert [d.metadata["rank"] for d in kept] == [1, 2]
    assert kept[0].metadata["score"] > kept[1].metadata["score"]
    assert reranker.compress_documents([], "q") == []


def test_contextual_compression_over_another_retriever(colbert: ColBERT, model_path: Path) -> None:
    from langchain_classic.retrievers import ContextualCompressionRetriever
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.vectorstores import InMemoryVectorStore

    texts = [hit.text for hit in colbert.search("anything", k=20)]
    store = InMemoryVectorStore.from_texts(texts, DeterministicFakeEmbedding(size=16))  # random-quality retriever
    base = store.as_retriever(search_kwargs={"k": 20})
    reranker = ColBERTRerank(colbert=colbert, top_n=1)
    pipeline = ContextualCompressionRetriever(base_compressor=reranker, base_retriever=base)
    (best,) = pipeline.invoke("Which protocol guarantees that data arrives in order?")
    assert best.page_content.startswith("TCP")


def test_long_documents_come_back_as_cited_passages(model_path: Path, tmp_path: Path) -> None:
    intro = "Paris is the capital of France. " * 3
    tail = " ".join(f"Sentence {i} is about gardening and the growing of tomatoes." for i in range(40))
    long_text = f"{intro}\n\n{tail}\n\nThe Eiffel Tower was finished in 1889 for the world fair."
    retriever = ColBERTRetriever.from_texts(
        [long_text, "Bananas are yellow."], ids=["report", "fruit"], model=model_path, index_path=tmp_path / "i", k=2
    )
    docs = retriever.invoke("When was the Eiffel Tower finished?")
    assert [d.id for d in docs] == ["report", "fruit"]  # one result per document
    top = docs[0]
    assert "1889" in top.page_content
    assert len(top.page_content) < len(long_text)
    assert long_text[top.metadata["start"] : top.metadata["end"]] == top.page_content
    assert top.metadata["passage"] > 0
    lit = ColBERTRetriever(colbert=retriever.colbert, k=1, highlights=True).invoke(
        "When was the Eiffel Tower finished?"
    )
    spans = lit[0].metadata["highlights"]
    assert any(lit[0].page_content[s:e] == "Eiffel" for s, e in spans)
    retriever.delete(["report"])  # every passage of it
    assert [d.id for d in retriever.invoke("Eiffel Tower")] == ["fruit"]


def test_the_search_mode_passes_through(colbert: ColBERT) -> None:
    query = "Who wrote Hamlet?"
    hybrid = ColBERTRetriever(colbert=colbert, k=3).invoke(query)  # the default on a new index
    assert all(d.metadata["late_score"] is not None for d in hybrid)
    assert hybrid[0].metadata["lexical_score"] > 0
    lexical = ColBERTRetriever(colbert=colbert, k=3, mode="lexical").invoke(query)
    expected = colbert.search(query, k=3, mode="lexical")
    assert [(d.id, d.metadata["score"]) for d in lexical] == [(h.doc_id, h.score) for h in expected]
    late = ColBERTRetriever(colbert=colbert, k=3, mode="lexical").invoke(query, mode="late")  # per call
    assert "lexical_score" not in late[0].metadata
    assert [d.id for d in late] == [h.doc_id for h in colbert.search(query, k=3, mode="late")]


# Regression tests for defects found by using the adapter as a new user would.


def test_result_fields_never_overwrite_the_users_metadata(model_path: Path, tmp_path: Path) -> None:
    own = {"rank": "gold", "score": "A+", "doc_id": "mine", "id": 7}
    retriever = ColBERTRetriever.from_texts(
        ["Glaciers carve valleys.", "Deserts are dry."],
        [own, {}],
        ["g", "d"],
        model=model_path,
        index_path=tmp_path / "i",
    )
    glacier, desert = retriever.invoke("How are valleys carved?", k=2)
    assert {key: glacier.metadata[key] for key in own} == own
    assert (desert.metadata["rank"], desert.metadata["doc_id"]) == (2, "d")  # added where absent
    reranker = ColBERTRerank(colbert=retriever.colbert, top_n=2)
    kept = reranker.compress_documents([Document(page_content="Glaciers carve valleys.", metadata=own)], "valleys")
    assert {key: kept[0].metadata[key] for key in own} == own
    assert 0 < kept[0].metadata["relevance_score"] <= 1


def test_add_documents_keeps_given_ids_and_fills_the_missing(model_path: Path, tmp_path: Path) -> None:
    retriever = ColBERTRetriever.from_texts(["Seed text."], ids=["seed"], model=model_path, index_path=tmp_path / "i")
    ids = retriever.add_documents([Document(id="glacier", page_content="Ice moves."), Document(page_content="Sand.")])
    assert ids[0] == "glacier"
    assert ids[1] not in ("", "glacier")
    assert [doc.text for doc in retriever.colbert.get(ids)] == ["Ice moves.", "Sand."]
    assert retriever.add_documents([Document(page_content="Rock.")], ids=["rock"]) == ["rock"]


def test_invoke_takes_the_filter_field_by_name_with_operators(colbert: ColBERT) -> None:
    retriever = ColBERTRetriever(colbert=colbert, k=10)
    docs = retriever.invoke("a drink", filter={"title": {"$in": ["Coffee", "Insulin"]}})
    assert {d.id for d in docs} == {"coffee", "insulin"}
    with pytest.raises(TypeError, match="unexpected search arguments: fiter"):
        retriever.invoke("a drink", fiter={"title": "Coffee"})  # a typo is an error, not ignored
    with pytest.raises(TypeError, match="unexpected search arguments: where"):
        ColBERTRetriever(colbert=colbert, search_kwargs={"where": {}}).invoke("a drink")


def test_a_temporary_index_is_removed_when_closed_or_collected(model_path: Path) -> None:
    import gc

    closed = ColBERTRetriever.from_texts(["one text"], model=model_path)
    folder = Path(closed.colbert.index.path)
    assert folder.is_dir()
    closed.close()
    assert not folder.exists()
    dropped = ColBERTRetriever.from_texts(["one text"], model=model_path)
    folder = Path(dropped.colbert.index.path)
    del dropped
    gc.collect()
    assert not folder.exists()


def test_rerank_is_built_from_a_model_name_like_other_rerankers(model_path: Path) -> None:
    reranker = ColBERTRerank(model=str(model_path), top_n=1)
    docs = [Document(page_content="Bananas are yellow."), Document(page_content="The Eiffel Tower is in Paris.")]
    (best,) = reranker.compress_documents(docs, "Where is the Eiffel Tower?")
    assert best.page_content.startswith("The Eiffel")
    with pytest.raises(ValueError, match="exactly one of model="):
        ColBERTRerank(top_n=1)
