"""`ColBERTVectorStore`: LangChain's standard vector-store suite, unmodified, then what it
does beyond the suite (filters, scores, MMR, retrievers, persistence)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_colbert import ColBERTVectorStore
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_tests.integration_tests import VectorStoreIntegrationTests


class TestColBERTVectorStore(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, model_path: Path, tmp_path: Path) -> Iterator[ColBERTVectorStore]:  # type: ignore[override]
        store = ColBERTVectorStore(index_path=tmp_path / "index", model=model_path)
        yield store
        store.close()


TEXTS = [
    "The Eiffel Tower is a wrought-iron tower in Paris.",
    "The Eiffel Tower in Paris was finished in 1889.",
    "Paris hosts the Eiffel Tower, an iron lattice tower.",
    "Bananas are a yellow fruit rich in potassium.",
    "Glaciers are slow rivers of ice that carve valleys.",
]
METADATAS = [{"topic": "paris", "n": i} for i in range(3)] + [{"topic": "fruit", "n": 3}, {"topic": "ice", "n": 4}]


@pytest.fixture
def store(model_path: Path, tmp_path: Path) -> Iterator[ColBERTVectorStore]:
    ids = [f"d{i}" for i in range(len(TEXTS))]
    built = ColBERTVectorStore.from_texts(
        TEXTS, metadatas=METADATAS, ids=ids, index_path=tmp_path / "i", model=model_path
    )
    yield built
    built.close()


def test_scores_filters_and_relevance(store: ColBERTVectorStore) -> None:
    scored = store.similarity_search_with_score("When was the Eiffel Tower finished?", k=2)
    assert scored[0][0].id == "d1"
    assert scored[0][1] > scored[1][1]
    hits = store.colbert.search("When was the Eiffel Tower finished?", k=2)
    assert [s for _, s in scored] == [h.score for h in hits]
    found = store.similarity_search("tower", k=5, filter={"n": {"$in": [0, 3]}})
    assert {doc.id for doc in found} == {"d0", "d3"}
    assert store.similarity_search("tower", k=5, filter={"topic": "ice", "n": {"$gte": 4}})[0].metadata == METADATAS[4]
    relevant = store.similarity_search_with_relevance_scores("yellow fruit", k=5, mode="late")
    assert relevant[0][0].id == "d3"
    assert all(0 <= score <= 1 for _, score in relevant)
    assert [score for _, score in relevant] == sorted((score for _, score in relevant), reverse=True)


def test_a_document_of_passages_comes_back_whole_and_survives_being_written_back(store: ColBERTVectorStore) -> None:
    topics = ["volcanoes erupt lava", "owls hunt mice at night", "tides follow the moon", "bread rises with yeast"]
    long_text = " ".join(
        f"Part {i}: {topic}. " + "Filler words about nothing in particular. " * 40 for i, topic in enumerate(topics)
    )
    store.add_texts([long_text], metadatas=[{"topic": "long"}], ids=["long"])
    passages = len(store.colbert.index.passages("long"))
    assert passages > 1
    (found,) = store.similarity_search("owls hunt mice at night", k=1, filter={"topic": "long"})
    assert found.page_content == long_text
    start, end = found.metadata["start"], found.metadata["end"]
    assert "owls hunt mice" in long_text[start:end]
    assert found.metadata["topic"] == "long"
    store.add_documents([found])  # written back: the whole text stays
    (again,) = store.get_by_ids(["long"])
    assert again.page_content == long_text
    assert len(store.colbert.index.passages("long")) == passages


def test_mmr_trades_relevance_for_diversity(store: ColBERTVectorStore) -> None:
    query = "Eiffel Tower in Paris"
    top = [doc.id for doc in store.similarity_search(query, k=2, mode="late")]
    assert set(top) <= {"d0", "d1", "d2"}  # the near-duplicates fill the plain top 2
    diverse = [doc.id for doc in store.max_marginal_relevance_search(query, k=2, fetch_k=5, lambda_mult=0.3)]
    assert diverse[0] == top[0]  # the most relevant comes first
    assert diverse[1] in {"d3", "d4"}  # then the least like it, not another Eiffel Tower text
    relevant = [doc.id for doc in store.max_marginal_relevance_search(query, k=2, fetch_k=5, lambda_mult=1.0)]
    assert relevant == [doc.id for doc in store.similarity_search(query, k=2, mode="late")]  # relevance: normalized


def test_as_retriever_search_types(store: ColBERTVectorStore) -> None:
    plain = store.as_retriever(search_kwargs={"k": 1, "filter": {"topic": "ice"}})
    assert [doc.id for doc in plain.invoke("a tower")] == ["d4"]
    mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 5, "lambda_mult": 0.3})
    assert len({doc.metadata["topic"] for doc in mmr.invoke("Eiffel Tower in Paris")}) == 2
    threshold = store.as_retriever(
        search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.99, "k": 5, "mode": "late"}
    )
    assert threshold.invoke("yellow fruit") == []  # nothing is that close
    loose = store.as_retriever(search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.0})
    assert len(loose.invoke("yellow fruit")) == 4
    assert asyncio.run(plain.ainvoke("a tower"))[0].id == "d4"


def test_reopens_by_path_and_refuses_what_it_cannot_do(store: ColBERTVectorStore, tmp_path: Path) -> None:
    reopened = ColBERTVectorStore(index_path=tmp_path / "i")  # the model recorded in the index
    assert [doc.id for doc in reopened.get_by_ids(["d4", "missing", "d0"])] == ["d4", "d0"]
    with pytest.raises(TypeError, match="unexpected keyword arguments: fiter"):
        reopened.similarity_search("ice", fiter={"topic": "ice"})
    with pytest.raises(NotImplementedError):
        reopened.similarity_search_by_vector([0.1, 0.2])
    with pytest.raises(ValueError, match="pass model="):
        ColBERTVectorStore.from_texts(["x"], DeterministicFakeEmbedding(size=4), index_path=tmp_path / "j")
    with pytest.raises(ValueError, match="needs model="):
        ColBERTVectorStore(index_path=None)
    reopened.delete()  # everything
    assert reopened.similarity_search("ice") == []
    reopened.close()
