from __future__ import annotations

from pathlib import Path

import pytest

import colbert_retriever
from colbert_retriever import (
    ColBERT,
    ConfigError,
    DimensionMismatchError,
    Document,
    DuplicateIdError,
    IndexConfig,
    ModelMismatchError,
    QdrantConfig,
)

TEXTS = [
    "the eiffel tower is in paris, the capital of france.",
    "a plant turns sun light and water into energy.",
    "vitamin d helps the bone and the protein.",
    "the cat sat on the mat.",
    "late interaction search with a query index is fast.",
]


@pytest.fixture
def retriever(tmp_path: Path, checkpoints) -> ColBERT:
    return ColBERT.create(tmp_path / "idx", model=checkpoints["stanford"], show_progress=False)


def test_public_api_is_pinned() -> None:
    assert set(colbert_retriever.__all__) == {
        "CheckpointError",
        "Chunking",
        "ColBERT",
        "ColbertRetrieverError",
        "ConfigError",
        "DimensionMismatchError",
        "Document",
        "DocumentBatch",
        "DocumentNotFoundError",
        "DuplicateIdError",
        "EmptyIndexError",
        "Encoder",
        "EncoderConfig",
        "Explanation",
        "Filter",
        "Hit",
        "Index",
        "IndexConfig",
        "IndexCorruptError",
        "IndexExistsError",
        "IndexInfo",
        "IndexLockedError",
        "IndexNotFoundError",
        "IndexVersionError",
        "IndexWriteError",
        "MissingDependencyError",
        "ModelMismatchError",
        "QdrantConfig",
        "Mode",
        "PlaidConfig",
        "RerankHit",
        "SearchConfig",
        "StoreError",
        "Store",
        "TokenMatch",
        "__version__",
    }
    for name in colbert_retriever.__all__:  # each resolves, the heavy ones on first use
        assert getattr(colbert_retriever, name) is not None


def test_index_search_reopen(retriever: ColBERT, tmp_path: Path) -> None:
    ids = retriever.add(TEXTS, ids=[f"d{i}" for i in range(5)], metadata=[{"i": i} for i in range(5)])
    assert ids == [f"d{i}" for i in range(5)]
    assert len(retriever) == 5
    # a document's own text is its best match (late interaction with itself)
    for i, text in enumerate(TEXTS):
        hits = retriever.search(text, k=3)
        assert hits[0].doc_id == f"d{i}"
        assert hits[0].metadata == {"i": i}
        assert text[hits[0].start : hits[0].end] == hits[0].text  # the passage that scored
        assert retriever.get([f"d{i}"])[0].text == text  # the whole document
    reopened = ColBERT.open(tmp_path / "idx", show_progress=False)
    assert [h.doc_id for h in reopened.search(TEXTS[2], k=5)] == [h.doc_id for h in retriever.search(TEXTS[2], k=5)]
    batch = reopened.search_batch([TEXTS[0], TEXTS[3]], k=2)
    assert [hits[0].doc_id for hits in batch] == ["d0", "d3"]


def test_scores_match_rerank_and_are_normalised(retriever: ColBERT) -> None:
    retriever.chunking = None  # rerank reads each text cut at doc_maxlen, as the index then stores it
    retriever.add(TEXTS, ids=[f"d{i}" for i in range(5)])
    query = "where is the eiffel tower?"
    hits = retriever.search(query, k=5, mode="late")
    reranked = retriever.rerank(query, TEXTS)
    by_text = {h.text: h.score for h in reranked}
    for hit in hits:  # float16 storage vs float32: within 8 tokens x 2e-3
        assert abs(hit.score - by_text[hit.text]) < 0.016
        assert abs(hit.normalized_score - hit.score / 8) < 1e-6  # 8 query tokens with expansion
    assert [h.rank for h in reranked] == [1, 2, 3, 4, 5]
    assert [TEXTS[h.position] for h in reranked] == [h.text for h in reranked]  # positions in the input
    assert [h.position for h in retriever.rerank(query, TEXTS, k=2)] == [h.position for h in reranked[:2]]


def test_generator_input_in_many_segments_is_one_commit(tmp_path: Path, checkpoints) -> None:
    retriever = ColBERT.create(
        tmp_path / "idx",
        model=checkpoints["stanford"],
        index_config=IndexConfig(docs_per_segment=2),
        show_progress=False,
    )
    ids = retriever.add(t for t in TEXTS)  # generated ids, any iterable
    assert len(set(ids)) == 5
    assert len(retriever) == 5
    assert len(list((tmp_path / "idx" / "segments").iterdir())) >= 3  # two rows (passages) a segment

    def bad():
        yield from ["good one", "good two", "good three"]
        yield ""  # invalid in the second chunk: nothing may land

    with pytest.raises(ConfigError, match=r"empty|blank"):
        retriever.add(bad())
    assert len(ColBERT.open(tmp_path / "idx", show_progress=False)) == 5


def test_add_documents_takes_a_stream_of_records(retriever: ColBERT) -> None:
    records = (Document(doc_id=f"d{i}", text=text, metadata={"i": i}) for i, text in enumerate(TEXTS))
    assert retriever.add_documents(records) == [f"d{i}" for i in range(5)]
    assert retriever.get(["d3"])[0] == Document(doc_id="d3", text=TEXTS[3], metadata={"i": 3})
    with pytest.raises(DuplicateIdError, match="upsert"):
        retriever.add_documents([Document(doc_id="d0", text="again")])
    retriever.add_documents([Document(doc_id="d0", text="the eiffel tower.")], upsert=True)
    assert retriever.get(["d0"])[0].text == "the eiffel tower."
    for bad in (["plain text"], "plain text", Document(doc_id="x", text="y")):
        with pytest.raises(ConfigError, match="Document"):
            retriever.add_documents(bad)
    assert len(retriever) == 5


def test_bad_inputs(retriever: ColBERT) -> None:
    with pytest.raises(ConfigError):
        retriever.add("just a string")
    with pytest.raises(ConfigError, match="got 2 texts, 1 ids; they must match"):
        retriever.add(["a", "b"], ids=["only-one"])
    with pytest.raises(ConfigError, match="got 1 texts, 2 metadata"):
        retriever.add(["a"], metadata=[None, None])
    # streams: the message counts the whole input, not the chunk where the mismatch showed
    with pytest.raises(ConfigError, match="got 5 texts but 2 ids"):
        retriever.add(iter(["a", "b", "c", "d", "e"]), ids=iter(["1", "2"]))
    with pytest.raises(ConfigError, match="got 1 texts but 3 ids"):
        retriever.add(iter(["a"]), ids=iter(["1", "2", "3"]))
    with pytest.raises(ConfigError, match="got 2 texts but 1 metadata entries"):
        retriever.add(iter(["a", "b"]), metadata=iter([None]))
    with pytest.raises(DuplicateIdError, match="twice in one add"):
        retriever.add(["a", "b"], ids=["x", "x"])
    with pytest.raises(DuplicateIdError, match="twice in one upsert"):
        retriever.upsert(["a", "b"], ids=["x", "x"])
    with pytest.raises(ConfigError):
        retriever.add([None])
    with pytest.raises(ConfigError):
        retriever.search(["a list"])
    for blank in ("   ", "\u200b", "\u200b \u2060\ufeff"):  # invisible characters only: blank too
        with pytest.raises(ConfigError, match="empty or whitespace"):
            retriever.search(blank)
    assert len(retriever) == 0


def test_repr_info_and_plaid_settings_in_the_wrong_place(retriever: ColBERT, tmp_path: Path, checkpoints) -> None:
    assert (
        repr(retriever)
        == f"ColBERT(model={retriever.encoder.fingerprint.name!r}, dim=16, index={str(retriever.index.path)!r})"
    )  # type: ignore[attr-defined]
    assert retriever.info().documents == 0
    assert "no index" in repr(ColBERT.from_pretrained(checkpoints["stanford"]))
    with pytest.raises(ConfigError, match=r"nbits is a PlaidConfig setting: pass plaid=PlaidConfig\(nbits=...\)"):
        ColBERT.create(tmp_path / "other", model=checkpoints["stanford"], nbits=3)
    assert not (tmp_path / "other").exists()


def test_upsert_and_delete(retriever: ColBERT) -> None:
    retriever.add(TEXTS[:2], ids=["a", "b"])
    retriever.upsert([TEXTS[3]], ids=["a"])
    assert retriever.get(["a"])[0].text == TEXTS[3]
    retriever.delete(["b"])
    assert [h.doc_id for h in retriever.search(TEXTS[1], k=5)] == ["a"]


def test_opening_with_another_model_is_refused(retriever: ColBERT, tmp_path: Path, checkpoints) -> None:
    retriever.add(TEXTS[:1])
    with pytest.raises(DimensionMismatchError, match="dim=16"):
        ColBERT.open(tmp_path / "idx", model=checkpoints["plain"])  # 32-dim token states
    # same format, same dim, other weights: the fingerprint tells them apart
    other = tmp_path / "idx2"
    ColBERT.create(other, model=checkpoints["plain"], show_progress=False).add(TEXTS[:1])
    with pytest.raises(ModelMismatchError, match="fingerprint"):
        ColBERT.open(other, model=checkpoints["other"])
    # the same weights in the PyLate layout are the same model
    assert len(ColBERT.open(tmp_path / "idx", model=checkpoints["pylate"])) == 1


def test_retriever_without_index(checkpoints) -> None:
    reranker = ColBERT.from_pretrained(checkpoints["pylate"], show_progress=False)
    assert reranker.rerank("the cat", ["a dog", "the cat sat"])[0].position == 1
    with pytest.raises(ConfigError, match="no index"):
        reranker.search("the cat")


def test_a_temporary_index_lives_as_long_as_its_retriever(checkpoints) -> None:
    import gc

    closed = ColBERT.create(None, model=checkpoints["stanford"], show_progress=False)
    closed.add(["the cat sat on the mat."], ids=["cat"])
    folder = Path(closed.index.path)  # type: ignore[attr-defined]
    assert closed.search("cat", k=1)[0].doc_id == "cat"
    closed.close()
    assert not folder.exists()
    dropped = ColBERT.create(None, model=checkpoints["stanford"], show_progress=False)
    folder = Path(dropped.index.path)  # type: ignore[attr-defined]
    del dropped
    gc.collect()
    assert not folder.exists()
    kept = ColBERT.create(folder, model=checkpoints["stanford"], show_progress=False)
    kept.close()
    assert folder.is_dir()  # a folder the caller named is never removed


def test_result_fields_leave_the_users_metadata_keys_alone() -> None:
    from colbert_retriever import Hit

    hit = Hit("d", 2.0, 0.5, 1, "text", metadata={"rank": "gold", "doc_id": "mine"}, passage=1, start=3, end=7)
    assert hit.cited_metadata() == {
        **{"rank": "gold", "doc_id": "mine", "score": 2.0, "normalized_score": 0.5},
        **{"passage": 1, "start": 3, "end": 7},
    }


@pytest.mark.parametrize("change", ["delete", "upsert"])
@pytest.mark.parametrize("where", ["folder", "qdrant"])
def test_highlights_come_from_the_state_the_search_read(
    tmp_path: Path, checkpoints, monkeypatch: pytest.MonkeyPatch, where: str, change: str
) -> None:
    """A write that lands between a search and the explanation of its hits changes neither:
    the hit is explained from the passage the search scored."""
    if where == "qdrant":
        pytest.importorskip("qdrant_client")
    location = QdrantConfig(path=":memory:", show_progress=False) if where == "qdrant" else tmp_path / "idx"
    retriever = ColBERT.create(location, model=checkpoints["stanford"], show_progress=False)
    retriever.add(["the cat sat on the mat.", "the red car and the blue train."], ids=["cat", "car"])
    query_tokens, writes = retriever.encoder.query_tokens, []

    def write_first(query: str) -> list[str]:  # runs after the search, before its hits are explained
        if not writes:
            writes.append(change)
            if change == "delete":
                retriever.delete(["cat"])
            else:
                retriever.upsert(["music plays in the green house."], ids=["cat"])
        return query_tokens(query)

    monkeypatch.setattr(retriever.encoder, "query_tokens", write_first)
    (hit,) = retriever.search("the cat on the mat", k=1, mode="late", highlights=True)
    assert writes == [change]
    assert hit.doc_id == "cat"
    assert hit.explanation is not None
    assert hit.explanation.text == hit.text == "the cat sat on the mat."
    assert hit.explanation.score == pytest.approx(hit.passage_score, abs=1e-2)
    assert hit.highlights
