from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from colbert_retriever import (
    ConfigError,
    DimensionMismatchError,
    DocumentBatch,
    DocumentNotFoundError,
    DuplicateIdError,
    Index,
    IndexConfig,
    IndexCorruptError,
    IndexExistsError,
)
from colbert_retriever.stores.folder.documents import DocumentTable

DIM = 8
MODEL = {"name": "test", "format": "transformers", "dim": DIM, "digest": "x", "layout": {}}


def vectors_for(doc_id: str, n_tokens: int = 4) -> np.ndarray:
    """Deterministic unit vectors per id, so a reloaded index can be checked exactly."""
    rng = np.random.default_rng(abs(hash(doc_id)) % 2**32)
    x = rng.standard_normal((n_tokens, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def batch(ids: list[str], meta: list[dict] | None = None) -> DocumentBatch:
    return DocumentBatch(
        ids=ids,
        texts=[f"text of {i}" for i in ids],
        metadata=meta or [{} for _ in ids],
        vectors=[vectors_for(i, 2 + len(i) % 5) for i in ids],
    )


@pytest.fixture
def index(tmp_path: Path) -> Index:
    return Index.create(tmp_path / "idx", model=MODEL, dim=DIM)


def test_add_get_delete_keep_ids_stable(index: Index, tmp_path: Path) -> None:
    index.write([batch(["a", "b", "c"], [{"n": 1}, {"n": 2}, {"n": 3}])])
    index.write([batch(["d", "e"])])
    index.delete(["b"])
    assert sorted(index.doc_ids()) == ["a", "c", "d", "e"]
    assert [d.metadata for d in index.get(["c", "a"])] == [{"n": 3}, {"n": 1}]
    reopened = Index.open(tmp_path / "idx")
    assert sorted(reopened.doc_ids()) == ["a", "c", "d", "e"]
    assert reopened.get(["c"])[0].text == "text of c"
    # searching with a document's own vectors finds it first, before and after compaction
    for idx in (reopened, index):
        idx.compact()
        for doc_id in ["a", "c", "d", "e"]:
            assert idx.search([vectors_for(doc_id, 2 + len(doc_id) % 5)], k=1)[0][0].doc_id == doc_id


def test_opening_reads_no_document(index: Index, monkeypatch: pytest.MonkeyPatch) -> None:
    index.write([batch([f"d{i}" for i in range(50)], [{"i": i} for i in range(50)])])

    def refuse(*args: object) -> None:
        pytest.fail("a document was read")

    monkeypatch.setattr(DocumentTable, "read", refuse)
    monkeypatch.setattr(DocumentTable, "read_ids", refuse)
    reopened = Index.open(index.path)
    assert (len(reopened), reopened.info().documents, reopened.n_tokens) == (50, 50, index.n_tokens)


def test_upsert_replaces_and_add_refuses_existing(index: Index) -> None:
    index.write([batch(["a", "b"])])
    with pytest.raises(DuplicateIdError, match="already in the index"):
        index.write([batch(["b", "c"])])
    assert sorted(index.doc_ids()) == ["a", "b"]  # nothing of the failed add landed
    replaced = DocumentBatch(ids=["b"], texts=["new b"], metadata=[{"v": 2}], vectors=[vectors_for("zz", 3)])
    index.write([replaced], upsert=True)
    assert len(index) == 2
    assert index.get(["b"])[0].text == "new b"
    assert index.search([vectors_for("zz", 3)], k=1)[0][0].doc_id == "b"


def test_duplicate_ids_across_batches_of_one_add(index: Index) -> None:
    with pytest.raises(DuplicateIdError, match="twice"):
        index.write([batch(["a", "b"]), batch(["c", "a"])])
    assert len(index) == 0
    assert not any((index.path / "segments").iterdir())  # the written segment was removed


def test_unknown_ids_and_bad_input_change_nothing(index: Index) -> None:
    index.write([batch(["a"])])
    manifest = (index.path / "manifest.json").read_bytes()
    with pytest.raises(DocumentNotFoundError, match="zzz"):
        index.delete(["zzz"])
    with pytest.raises(DocumentNotFoundError):
        index.get(["a", "zzz"])
    with pytest.raises(ConfigError):
        index.write([DocumentBatch(ids=["b"], texts=["  "], metadata=[{}], vectors=[vectors_for("b")])])
    with pytest.raises(ConfigError, match="NaN"):
        index.write([DocumentBatch(ids=["b"], texts=["t"], metadata=[{"x": float("nan")}], vectors=[vectors_for("b")])])
    with pytest.raises(DimensionMismatchError):
        index.write([DocumentBatch(ids=["b"], texts=["t"], metadata=[{}], vectors=[np.ones((3, DIM + 1))])])
    with pytest.raises(ConfigError):
        index.delete("a")  # a bare string is not a list of ids
    with pytest.raises(ConfigError, match="0 metadata entries"):
        index.write([DocumentBatch(ids=["b"], texts=["t"], vectors=[vectors_for("b")])])
    two = {"metadata": [{}, {}], "vectors": [vectors_for("b")] * 2, "starts": [0, 1]}
    with pytest.raises(ConfigError, match="passage 2 does not follow passage 1"):
        index.write([DocumentBatch(ids=["b", "b"], texts=["t", "u"], passages=[0, 2], **two)])
    assert (index.path / "manifest.json").read_bytes() == manifest


def test_search_errors_and_k(index: Index) -> None:
    index.write([batch(["a", "b", "c"])])
    for bad_k in (0, -1, 1.5, True):
        with pytest.raises(ConfigError):
            index.search([vectors_for("q")], k=bad_k)
    with pytest.raises(DimensionMismatchError):
        index.search([np.ones((2, DIM + 1), dtype=np.float32)], k=1)
    hits = index.search([vectors_for("q")], k=10)[0]
    assert [h.rank for h in hits] == [1, 2, 3]
    assert all(-1 <= h.normalized_score <= 1 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize("index_type", ["exact", "plaid"])
def test_an_index_without_documents_gives_no_hits(tmp_path: Path, index_type: str) -> None:
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM, index_type=index_type)
    assert index.search([vectors_for("q")], k=3) == [[]]
    index.write([batch([f"d{i}" for i in range(40)])])
    index.delete([f"d{i}" for i in range(40)])  # every document deleted (was EmptyIndexError)
    assert index.search([vectors_for("q"), vectors_for("r")], k=3) == [[], []]
    with pytest.raises(DimensionMismatchError):  # the query is still checked
        index.search([np.ones((2, DIM + 1), dtype=np.float32)], k=1)


def test_filters_apply_before_topk(index: Index) -> None:
    ids = [f"d{i}" for i in range(30)]
    index.write([batch(ids, [{"lang": "en" if i % 10 == 0 else "fr", "i": i} for i in range(30)])])
    query = vectors_for("q")
    hits = index.search([query], k=5, filters={"lang": "en"})[0]
    assert sorted(h.doc_id for h in hits) == ["d0", "d10", "d20"]
    hits = index.search([query], k=30, filters=lambda m: m["i"] >= 25)[0]
    assert sorted(h.doc_id for h in hits) == [f"d{i}" for i in range(25, 30)]
    assert index.search([query], k=3, filters={"missing": 1}) == [[]]
    with pytest.raises(ConfigError, match="filters"):
        index.search([query], k=3, filters=["lang"])


def test_create_refuses_to_overwrite(index: Index, tmp_path: Path) -> None:
    index.write([batch(["a"])])
    with pytest.raises(IndexExistsError):
        Index.create(index.path, model=MODEL, dim=DIM)
    assert len(Index.create(index.path, model=MODEL, dim=DIM, exist_ok=True)) == 1
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not an empty folder"):
        Index.create(tmp_path / "full", model=MODEL, dim=DIM)


def test_one_document_corpus(index: Index) -> None:
    index.write([batch(["only"])])
    assert [h.doc_id for h in index.search([vectors_for("q")], k=5)[0]] == ["only"]


def test_concurrent_searches_see_whole_writes(index: Index) -> None:
    index.write([batch([f"base{i}" for i in range(20)])])
    stop = threading.Event()
    errors: list[BaseException] = []
    seen_sizes: set[int] = set()

    def searcher() -> None:
        try:
            while not stop.is_set():
                hits = index.search([vectors_for("q")], k=1000)[0]
                ids = {h.doc_id for h in hits}
                # a write adds a group of 5 whole: never part of one
                groups = {i.split("-")[0] for i in ids if "-" in i}
                for g in groups:
                    assert sum(1 for i in ids if i.startswith(g + "-")) == 5
                seen_sizes.add(len(ids))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for t in threads:
        t.start()
    for g in range(15):
        index.write([batch([f"g{g}-{j}" for j in range(5)])])
        if g % 3 == 2:
            index.delete([f"g{g}-{j}" for j in range(5)])
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert len(index) == 20 + 5 * 10


def test_second_writer_times_out_with_a_clear_error(index: Index, tmp_path: Path) -> None:
    from colbert_retriever import IndexLockedError
    from colbert_retriever.atomic import writer_lock

    other = Index.open(index.path, config=IndexConfig(lock_timeout=0.2))
    with writer_lock(index.path, 1.0), pytest.raises(IndexLockedError, match="another process"):
        other.write([batch(["a"])])
    assert len(Index.open(index.path)) == 0


def test_other_handles_see_new_writes_at_their_next_read(index: Index) -> None:
    reader = Index.open(index.path)
    index.write([batch(["a", "b"])])
    assert len(reader) == 2  # the manifest changed: the handle loads the new state
    assert sorted(reader.doc_ids()) == ["a", "b"]
    reader.delete(["a"])  # a stale writer reloads the latest state under the lock first
    index.write([batch(["c"])])
    assert sorted(Index.open(index.path).doc_ids()) == ["b", "c"]


@pytest.mark.parametrize("mode", ["late", "hybrid"])
def test_a_callable_filters_own_error_is_the_callers_not_a_damaged_index(tmp_path: Path, mode: str) -> None:
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM)
    index.write([batch(["a", "b"], [{"year": "2021"}, {"year": "n/a"}])])

    def recent(metadata: dict) -> bool:
        return int(metadata["year"]) > 2020  # raises on "n/a"

    with pytest.raises(ValueError, match="invalid literal for int") as raised:
        index.search([vectors_for("a")], k=1, filters=recent, mode=mode, texts=["text"])  # type: ignore[arg-type]
    assert not isinstance(raised.value, IndexCorruptError)
    (hits,) = index.search([vectors_for("a")], k=2, filters=lambda m: m["year"] != "n/a")
    assert [h.doc_id for h in hits] == ["a"]
