"""The Qdrant store on qdrant-client's local mode: the same semantics and hits as an index folder."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("qdrant_client")

from qdrant_client.http.exceptions import UnexpectedResponse

from colbert_retriever import (
    ColBERT,
    ConfigError,
    DocumentNotFoundError,
    DuplicateIdError,
    IndexExistsError,
    IndexNotFoundError,
    IndexWriteError,
    ModelMismatchError,
    QdrantConfig,
    SearchConfig,
)
from colbert_retriever.stores.qdrant.collection import point_id, visible
from colbert_retriever.stores.qdrant.store import QdrantStore

TEXTS = [
    "the eiffel tower is in paris, the capital of france.",
    "a plant turns sun light and water into energy.",
    "vitamin d helps the bone and the protein.",
    "the cat sat on the mat.",
    "late interaction search with a query index is fast. the plant needs sun light and water, "
    "the bone needs vitamin and protein, and music plays in the green house by the river.",  # several passages
    "the red car and the blue train go to the green house with music.",
]
IDS = [f"d{i}" for i in range(len(TEXTS))]
QUERIES = ["where is the eiffel tower", "fast late interaction search", "the cat and the dog", "green music house"]


def memory(**settings: Any) -> QdrantConfig:
    return QdrantConfig(path=":memory:", show_progress=False, **settings)


@pytest.fixture(params=["local", "edge"])
def qdrant_config(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., QdrantConfig]:
    """QdrantConfig(**settings) for qdrant-client's local mode, then for Qdrant Edge."""
    if request.param == "local":
        return memory
    pytest.importorskip("qdrant_edge")
    return lambda **settings: QdrantConfig(path=str(tmp_path / "edge"), edge=True, show_progress=False, **settings)


@pytest.fixture
def pair(tmp_path: Path, checkpoints, qdrant_config: Callable[..., QdrantConfig]) -> tuple[ColBERT, ColBERT]:
    """The same documents in an exact index folder and in Qdrant (prefetching every passage)."""
    folder = ColBERT.create(tmp_path / "idx", model=checkpoints["stanford"], index_type="exact", show_progress=False)
    qdrant = ColBERT.create(qdrant_config(prefetch_min=1000), model=checkpoints["stanford"], show_progress=False)
    for retriever in (folder, qdrant):
        retriever.add(TEXTS, ids=IDS, metadata=[{"n": i} for i in range(len(TEXTS))])
    return folder, qdrant


def _points(store: Any) -> int:
    """Every point of the collection, visible or not."""
    return int(store.collection.count(None))


@pytest.mark.parametrize("unit", ["document", "passage"])
def test_late_search_gives_the_hits_of_an_exact_index(pair: tuple[ColBERT, ColBERT], unit: str) -> None:
    folder, qdrant = pair
    for query in QUERIES:
        expected = folder.search(query, k=4, unit=unit, mode="late")
        found = qdrant.search(query, k=4, unit=unit, mode="late")
        assert [(h.doc_id, h.passage, h.start, h.end, h.text) for h in found] == [
            (h.doc_id, h.passage, h.start, h.end, h.text) for h in expected
        ]
        np.testing.assert_allclose([h.score for h in found], [h.score for h in expected], rtol=1e-3)
        np.testing.assert_allclose(
            [h.normalized_score for h in found], [h.normalized_score for h in expected], rtol=1e-3
        )
        assert [h.metadata for h in found] == [h.metadata for h in expected]


def test_hybrid_and_lexical_search_use_the_sparse_side(pair: tuple[ColBERT, ColBERT]) -> None:
    _, qdrant = pair
    (top,) = qdrant.search("eiffel", k=1, mode="lexical")
    assert top.doc_id == "d0"
    assert top.late_score is not None  # every hit is scored by late interaction too
    late = {h.doc_id: h for h in qdrant.search("eiffel", k=len(TEXTS), mode="late")}
    assert top.normalized_score == pytest.approx(late["d0"].normalized_score)
    assert top.lexical_score == top.score > 0
    hits = qdrant.search("paris capital", k=len(TEXTS))  # hybrid: the default with a lexical side
    assert all(h.late_score is not None and h.lexical_score is not None for h in hits)
    assert all(0 <= h.score <= 1 for h in hits)
    assert {h.doc_id for h in hits if h.lexical_score} == {"d0"}  # no other document has either word
    store = qdrant.index
    assert isinstance(store, QdrantStore)
    lexical_only = ColBERT(qdrant.encoder, QdrantStore(store.collection, store.layout, SearchConfig(late_weight=0)))
    assert lexical_only.search("paris capital", k=3)[0].doc_id == "d0"
    late_only = ColBERT(qdrant.encoder, QdrantStore(store.collection, store.layout, SearchConfig(late_weight=1)))
    assert [h.doc_id for h in late_only.search("paris capital", k=3)] == [
        h.doc_id for h in qdrant.search("paris capital", k=3, mode="late")
    ]
    passages = qdrant.search("paris capital music", k=4, unit="passage")
    assert len({(h.doc_id, h.passage) for h in passages}) == 4
    assert all(h.late_score is not None and h.lexical_score is not None for h in passages)
    assert any(h.lexical_score for h in passages)
    assert qdrant.search("energies", k=1, mode="lexical")[0].doc_id == "d1"  # stemmed as FTS5's porter does
    assert qdrant.search("!!!", k=3, mode="lexical") == []


def test_without_a_lexical_side_hybrid_is_refused(checkpoints, qdrant_config: Callable[..., QdrantConfig]) -> None:
    qdrant = ColBERT.create(qdrant_config(), model=checkpoints["stanford"], lexical=False, show_progress=False)
    qdrant.add(TEXTS[:2])
    assert qdrant.search("paris", k=1)[0].late_score is not None  # late by default
    with pytest.raises(ConfigError, match="lexical=False"):
        qdrant.search("paris", k=1, mode="hybrid")


def test_get_returns_whole_documents_and_passages_their_vectors(pair: tuple[ColBERT, ColBERT]) -> None:
    folder, qdrant = pair
    assert qdrant.get(["d4", "d0"]) == folder.get(["d4", "d0"])
    with pytest.raises(DocumentNotFoundError, match="nope"):
        qdrant.get(["d0", "nope"])
    passages = qdrant.index.passages("d4")
    assert len(passages) > 1
    assert [row for row, _ in passages] == [row for row, _ in folder.index.passages("d4")]
    for (_, got), (_, stored) in zip(passages, folder.index.passages("d4"), strict=True):
        np.testing.assert_allclose(got, stored, atol=2e-3)  # the folder keeps float16
    explained = qdrant.explain("fast late interaction search", "d4")
    assert explained.score == pytest.approx(folder.explain("fast late interaction search", "d4").score, rel=1e-3)


def test_point_ids_are_uuid5_of_the_id_and_the_write_with_the_id_in_the_payload(pair: tuple[ColBERT, ColBERT]) -> None:
    store = pair[1].index
    assert isinstance(store, QdrantStore)
    points = {str(p.id): p.payload for p in store.collection.scroll(visible(), payload=True)}
    write = next(p["write"] for p in points.values() if p["doc_id"] == "d3")
    assert points[point_id("d3", 0, write)]["doc_id"] == "d3"
    assert points[point_id("d3", 0, write)]["text"] == TEXTS[3]
    assert point_id("d3", 0, write) == point_id("d3", 0, write) != point_id("d3", 0, "another write")


def test_add_upsert_delete_keep_the_index_semantics(pair: tuple[ColBERT, ColBERT]) -> None:
    _, qdrant = pair
    store = qdrant.index
    with pytest.raises(DuplicateIdError, match="d0"):
        qdrant.add(["again"], ids=["d0"])
    with pytest.raises(DuplicateIdError, match="twice"):
        qdrant.add(["x", "y"], ids=["new", "new"])
    assert len(qdrant) == len(TEXTS)
    assert isinstance(store, QdrantStore)
    passages, replaced = store.n_passages, len(store.passages("d4"))
    assert replaced > 1
    qdrant.upsert(["the dog sat on the mat."], ids=["d4"], metadata=[{"n": 99}])  # several passages -> 1
    assert qdrant.get(["d4"])[0].text == "the dog sat on the mat."
    assert store.n_passages == passages - replaced + 1
    assert _points(store) == store.n_passages  # the old version's passages are gone
    hits = qdrant.search("fast late interaction search", k=100, unit="passage", mode="late")
    assert [h.metadata for h in hits if h.doc_id == "d4"] == [{"n": 99}]
    qdrant.delete(["d0"])
    assert len(qdrant) == len(TEXTS) - 1
    with pytest.raises(DocumentNotFoundError, match="d0"):
        qdrant.delete(["d0"])
    store.delete(["d0", "d1"], missing_ok=True)
    assert sorted(h.doc_id for h in qdrant.search("the", k=10, mode="late")) == ["d2", "d3", "d4", "d5"]
    qdrant.add(["back again"], ids=["d0"])  # a deleted id can be added
    assert qdrant.get(["d0"])[0].text == "back again"


def test_a_write_that_fails_midway_leaves_nothing_visible(pair: tuple[ColBERT, ColBERT]) -> None:
    _, qdrant = pair
    store = qdrant.index
    before = _points(store)

    def documents():
        yield from ([f"new text {i} about paris" for i in range(300)])  # more than one batch of 256
        raise RuntimeError("the source broke")  # noqa: EM101

    with pytest.raises(RuntimeError, match="source broke"):
        qdrant.add(documents())
    assert len(qdrant) == len(TEXTS)
    assert _points(store) == before  # the uploaded batch was removed, not just hidden
    assert all(not h.doc_id.startswith("new") for h in qdrant.search("paris", k=10))


def test_a_refused_upload_is_retried_then_reported(checkpoints, monkeypatch) -> None:
    qdrant = ColBERT.create(memory(), model=checkpoints["stanford"], show_progress=False)
    store = qdrant.index
    assert isinstance(store, QdrantStore)
    monkeypatch.setattr("colbert_retriever.stores.qdrant.collection.time.sleep", lambda _: None)
    upsert, calls = store.collection.client.upsert, []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise UnexpectedResponse(503, "Service Unavailable", b"busy", None)  # type: ignore[arg-type]
        return upsert(*args, **kwargs)

    monkeypatch.setattr(store.collection.client, "upsert", flaky)
    qdrant.add(["retried and stored"], ids=["r1"])
    assert qdrant.get(["r1"])[0].text == "retried and stored"
    assert len(calls) == 2

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise UnexpectedResponse(400, "Bad Request", b"wrong vector", None)  # type: ignore[arg-type]

    monkeypatch.setattr(store.collection.client, "upsert", refused)
    before = _points(store)
    with pytest.raises(IndexWriteError, match=r"HTTP 400.*wrong vector"):
        qdrant.add(["never stored"], ids=["r2"])
    assert _points(store) == before
    with pytest.raises(DocumentNotFoundError):
        qdrant.get(["r2"])


def test_the_collection_records_the_model_and_is_checked_at_open(tmp_path: Path, checkpoints) -> None:
    config = QdrantConfig(path=str(tmp_path / "q"), collection="docs", show_progress=False)
    with pytest.raises(IndexNotFoundError, match="docs"):
        ColBERT.open(config)
    created = ColBERT.create(config, model=checkpoints["stanford"], show_progress=False)
    created.add(TEXTS[:3], ids=IDS[:3])
    second = ColBERT.open(config, show_progress=False)  # handles in one process share the folder's client
    assert second.get(["d2"])[0].text == TEXTS[2]
    second.close()
    assert len(created) == 3  # still open: the client closes with its last handle
    other_process = (
        "from colbert_retriever import QdrantConfig, StoreError\n"
        "from colbert_retriever.stores.qdrant.store import QdrantStore\n"
        "try:\n"
        f"    QdrantStore.open(QdrantConfig(path={str(tmp_path / 'q')!r}, collection='docs'))\n"
        "except StoreError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", other_process], capture_output=True, text=True, check=True)
    assert "already accessed by another instance" in done.stdout  # local mode: one process per folder
    created.close()
    with pytest.raises(IndexExistsError):
        ColBERT.create(config, model=checkpoints["stanford"])
    reopened = ColBERT.open(config, show_progress=False)  # the model recorded in the collection
    assert reopened.get(["d1"])[0].text == TEXTS[1]
    assert reopened.info().documents == 3
    assert reopened.info().collection == "docs"
    assert reopened.info().index_type == "qdrant"
    reopened.close()
    with pytest.raises(ModelMismatchError, match="built with"):
        ColBERT.open(config, model=checkpoints["other"])
    same = ColBERT.create(config, model=checkpoints["stanford"], exist_ok=True, show_progress=False)
    assert len(same) == 3
    same.close()


def test_folder_settings_are_refused_for_qdrant(checkpoints) -> None:
    with pytest.raises(ConfigError, match="index_type applies to index folders"):
        ColBERT.create(memory(), model=checkpoints["stanford"], index_type="plaid")
    with pytest.raises(ConfigError, match="one of url"):
        QdrantConfig()
    with pytest.raises(ConfigError, match="prefetch"):
        QdrantConfig(path=":memory:", prefetch="max")  # type: ignore[arg-type]
    assert "secret" not in repr(QdrantConfig(url="http://localhost:6333", api_key="secret"))


def test_the_fde_prefetch_finds_the_same_top_hit(checkpoints, qdrant_config: Callable[..., QdrantConfig]) -> None:
    config = qdrant_config(prefetch="fde", prefetch_min=3)
    qdrant = ColBERT.create(config, model=checkpoints["stanford"], show_progress=False)
    qdrant.add(TEXTS, ids=IDS)
    assert qdrant.search("the eiffel tower is in paris", k=1, mode="late")[0].doc_id == "d0"
