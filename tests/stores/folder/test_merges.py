"""Many small writes: segments merge as they come, descriptors stay bounded, readers see
other handles' commits, and a committed write is never reported as failed."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from test_index import DIM, MODEL, batch, vectors_for

from colbert_retriever import Index, IndexCorruptError
from colbert_retriever.pipeline.search import search as pipeline_search
from colbert_retriever.stores.folder import merges, transaction
from colbert_retriever.stores.folder.manifest import read_manifest
from colbert_retriever.stores.folder.segment import load_segment

IDS = [f"doc-{i}" for i in range(300)]
linux_only = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc/self/fd")


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@contextmanager
def _open_files_limit(limit: int) -> Iterator[None]:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture(scope="module")
def one_at_a_time(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 documents, each added by its own write, under a 256-descriptor limit."""
    path = tmp_path_factory.mktemp("single") / "idx"
    index = Index.create(path, model=MODEL, dim=DIM)
    limit = _open_files_limit(256) if sys.platform != "win32" else _no_limit()
    with limit:
        for doc_id in IDS:
            index.write([batch([doc_id])])
    return path


@contextmanager
def _no_limit() -> Iterator[None]:
    yield


def test_single_writes_merge_into_few_segments_with_every_document(one_at_a_time: Path) -> None:
    index = Index.open(one_at_a_time, verify=True)
    assert len(index) == 300
    assert sorted(index.doc_ids()) == sorted(IDS)
    tiers = [merges.tier(entry) for entry in read_manifest(one_at_a_time).segments]
    assert len(tiers) <= 3 * (merges.MERGE_FACTOR - 1)  # 300 rows: tiers 0, 1 and 2 at most
    assert all(tiers.count(t) < merges.MERGE_FACTOR for t in set(tiers))


def test_single_writes_search_like_one_bulk_write(one_at_a_time: Path, tmp_path: Path) -> None:
    bulk = Index.create(tmp_path / "bulk", model=MODEL, dim=DIM)
    bulk.write([batch(IDS)])
    single = Index.open(one_at_a_time)
    queries = [vectors_for(f"query-{i}", 3) for i in range(5)]
    for mine, theirs in zip(single.search(queries, k=10), bulk.search(queries, k=10), strict=True):
        assert [h.doc_id for h in mine] == [h.doc_id for h in theirs]
        np.testing.assert_allclose([h.score for h in mine], [h.score for h in theirs], atol=1e-5)


@linux_only
def test_an_index_of_300_single_writes_holds_few_descriptors(one_at_a_time: Path) -> None:
    before = _open_descriptors()
    index = Index.open(one_at_a_time)
    index.search([vectors_for("q")], k=5, mode="hybrid", texts=["text of doc-7"])
    assert _open_descriptors() - before <= 64


@linux_only
@pytest.mark.parametrize("stage", ["manifest", "segment"])
def test_running_out_of_descriptors_is_an_os_error_not_a_damaged_index(tmp_path: Path, stage: str) -> None:
    path = tmp_path / "idx"
    Index.create(path, model=MODEL, dim=DIM).write([batch(["a"])])
    if stage == "segment":  # the manifest reads; the segment's files do not open
        manifest = read_manifest(path)
        (segment,) = manifest.segments
        opening = lambda: load_segment(path / "segments" / segment.name, segment, verify=False)  # noqa: E731
    else:
        opening = lambda: Index.open(path)  # noqa: E731
    held = []
    with _open_files_limit(_open_descriptors() + 8):
        try:
            while True:  # every descriptor taken: the process is at its limit
                held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        try:
            with pytest.raises(OSError, match="open-files limit") as raised:
                opening()
        finally:
            for fd in held:
                os.close(fd)
    assert not isinstance(raised.value, IndexCorruptError)
    assert len(Index.open(path)) == 1


def test_a_committed_write_is_reported_as_written_even_if_reloading_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "idx"
    index = Index.create(path, model=MODEL, dim=DIM)

    def fails(*args: object, **kwargs: object) -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(transaction, "load_snapshot", fails)
    index.write([batch(["a"])])  # no error: it committed
    monkeypatch.undo()
    assert "a" in Index.open(path)
    assert "a" in index  # the handle loads it as soon as it can


def test_a_handle_sees_another_handles_commit_before_it_searches(tmp_path: Path) -> None:
    path = tmp_path / "idx"
    reader = Index.create(path, model=MODEL, dim=DIM)
    reader.write([batch(["a"])])
    assert len(reader) == 1
    Index.open(path).write([batch(["b"])])  # another handle (or process) commits
    (hits,) = reader.search([vectors_for("b")], k=2)
    assert {h.doc_id for h in hits} == {"a", "b"}
    assert len(reader) == 2


def test_an_empty_write_commits_nothing(tmp_path: Path) -> None:
    path = tmp_path / "idx"
    index = Index.create(path, model=MODEL, dim=DIM)
    index.write([batch(["a"])])
    generation = json.loads((path / "manifest.json").read_text())["generation"]
    index.write([])
    index.write([], delete=["missing"], missing_ok=True)
    assert json.loads((path / "manifest.json").read_text())["generation"] == generation


@pytest.mark.shared_data
@pytest.mark.real_model
def test_300_scifact_documents_one_per_write_search_like_one_bulk_write(
    shared: Path, minilm_path: Path, tmp_path: Path
) -> None:
    """The same top 10 in every mode, and the same BM25 scores, whatever the write history;
    after deleting 60, the same as a bulk write of the 240 left."""
    from colbert_retriever import Document, Encoder
    from colbert_retriever.config import Chunking
    from colbert_retriever.text.corpus import read_corpus, read_queries
    from colbert_retriever.text.passages import encode_documents

    data = shared / "data" / "scifact"
    documents = [doc for _, doc in zip(range(300), read_corpus(data / "corpus.jsonl"), strict=False)]
    _, queries = read_queries(data / "queries.jsonl")
    queries = queries[:30]
    encoder = Encoder.from_pretrained(minilm_path, precision="float32", show_progress=False)
    batches = list(encode_documents(encoder, iter(documents), Chunking(), size=1, total=None, upsert=False, written=[]))
    assert len(batches) == 300  # one document per batch (passages included)
    vectors = encoder.encode_queries(queries)
    model = encoder.fingerprint.to_dict()

    def build(name: str, keep: list[Document]) -> Index:
        index = Index.create(tmp_path / name, model=model, dim=encoder.dim)
        kept = {doc.doc_id for doc in keep}
        index.write([b for b in batches if b.ids[0] in kept])
        return index

    single = Index.create(tmp_path / "single", model=model, dim=encoder.dim)
    with _open_files_limit(256) if sys.platform != "win32" else _no_limit():
        for batch_ in batches:
            single.write([batch_])

    def same_answers(mine: Index, bulk: Index) -> None:
        for mode in ("late", "lexical", "hybrid"):
            found = mine.search(vectors, k=10, mode=mode, texts=queries)  # type: ignore[arg-type]
            expected = bulk.search(vectors, k=10, mode=mode, texts=queries)  # type: ignore[arg-type]
            for query, a, b in zip(queries, found, expected, strict=True):
                assert [h.doc_id for h in a] == [h.doc_id for h in b], (mode, query)
                if mode == "lexical":
                    np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-4)

    same_answers(single, build("bulk", documents))
    single.delete([doc.doc_id for doc in documents[::5]])  # 60 of them
    same_answers(single, build("bulk240", [doc for i, doc in enumerate(documents) if i % 5]))


def test_a_commit_removes_the_folders_it_retires_and_older_readers_still_read(tmp_path: Path) -> None:
    path = tmp_path / "idx"
    index = Index.create(path, model=MODEL, dim=DIM)
    for doc_id in ["a", "b", "c"]:
        index.write([batch([doc_id])])
    old_reader = index.reader()
    before = {p.name for p in (path / "segments").iterdir()}
    index.compact()
    after = {p.name for p in (path / "segments").iterdir()}
    assert len(after) == 1
    assert not before & after  # the retired folders are gone at once, not at the next write
    (hits,) = pipeline_search(old_reader, [vectors_for("b")], k=3, config=index.search_config, mode="late")
    assert {h.doc_id for h in hits} == {"a", "b", "c"}
    assert old_reader.passages("b")[0][0].text == "text of b"
