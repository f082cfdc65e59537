"""Concurrent writers of one Qdrant collection: no document is lost or doubled, and readers
see exactly one committed version of each document."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("qdrant_client")

from colbert_retriever import QdrantConfig
from colbert_retriever.stores.protocol import DocumentBatch
from colbert_retriever.stores.qdrant.collection import visible
from colbert_retriever.stores.qdrant.store import QdrantStore

DIM = 8
MODEL = {"name": "random"}
ROUNDS = 100


@pytest.fixture(params=["local", "edge"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> QdrantStore:
    if request.param == "edge":
        pytest.importorskip("qdrant_edge")
        config = QdrantConfig(path=str(tmp_path / "edge"), edge=True, show_progress=False, retries=0)
    else:
        config = QdrantConfig(path=str(tmp_path / "local"), show_progress=False, retries=0)
    made = QdrantStore.create(config, model=MODEL, dim=DIM)
    yield made
    made.close()


def one(doc_id: str, text: str, passages: int = 1) -> DocumentBatch:
    rng = np.random.default_rng(abs(hash(text)) % 2**32)
    vectors = [rng.standard_normal((3, DIM)).astype(np.float32) for _ in range(passages)]
    parts = [f"{text} part {i}" for i in range(passages)]
    starts = [sum(len(p) for p in parts[:i]) for i in range(passages)]
    return DocumentBatch(
        ids=[doc_id] * passages,
        texts=parts,
        metadata=[{"text": text}] * passages,
        vectors=vectors,
        passages=list(range(passages)),
        starts=starts,
    )


def _check_one_version(store: QdrantStore, doc_id: str, texts: set[str]) -> None:
    assert store.doc_ids() == [doc_id]
    (document,) = store.get([doc_id])
    assert document.metadata["text"] in texts
    reader = store.reader()
    rows = reader.document_rows([doc_id])[0]
    assert {r.metadata["text"] for r in reader.read(rows)} == {document.metadata["text"]}
    points = list(store.collection.scroll(visible(), payload=["doc_id", "version"]))
    assert len({p.payload["version"] for p in points}) == 1, "an old version is still visible"
    assert store.collection.count(None) == len(points), "points were left behind"


def test_two_threads_upserting_one_id_never_lose_it(store: QdrantStore) -> None:
    errors: list[BaseException] = []

    def write(text: str, passages: int) -> None:
        try:
            store.write([one("doc", text, passages)], upsert=True)
        except BaseException as exc:
            errors.append(exc)

    for round_ in range(ROUNDS):
        texts = {f"first {round_}", f"second {round_}"}
        threads = [threading.Thread(target=write, args=(t, 1 + i)) for i, t in enumerate(sorted(texts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        _check_one_version(store, "doc", texts)


def test_asyncio_writers_of_one_id_never_lose_it(store: QdrantStore) -> None:
    async def race(round_: int) -> None:
        await asyncio.gather(
            *(asyncio.to_thread(store.write, [one("doc", f"{who} {round_}", 2)], upsert=True) for who in "ab")
        )

    for round_ in range(ROUNDS // 2):
        asyncio.run(race(round_))
        _check_one_version(store, "doc", {f"a {round_}", f"b {round_}"})


def test_a_reader_beside_a_writer_sees_one_whole_version(store: QdrantStore) -> None:
    store.write([one("doc", "v0", 3)], upsert=True)
    stop, seen, errors = threading.Event(), [], []

    def read() -> None:
        while not stop.is_set():
            try:
                reader = store.reader()
                query = np.ones((2, DIM), dtype=np.float32)
                found = reader.best_late([query], 10, documents=10)[0]
                seen.append({r.metadata["text"] for r in reader.read([f.row for f in found])})
            except BaseException as exc:
                errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for i in range(1, 40):
            store.write([one("doc", f"v{i}", 3)], upsert=True)
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert seen
    assert all(len(texts) == 1 for texts in seen), [t for t in seen if len(t) != 1][:3]


def test_a_second_process_is_refused_with_a_store_error(store: QdrantStore) -> None:
    store.write([one("doc", "kept")])
    config = store.config
    code = (
        "import sys\n"
        "from colbert_retriever import QdrantConfig, StoreError\n"
        "from colbert_retriever.stores.qdrant.store import QdrantStore\n"
        f"config = QdrantConfig(path={str(config.path)!r}, edge={config.edge}, show_progress=False)\n"
        "try:\n"
        "    QdrantStore.open(config).delete(['doc'])\n"
        "except StoreError as exc:\n"
        "    print(exc); sys.exit(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 3, done.stderr[-2000:]
    assert str(config.path) in done.stdout or "lock" in done.stdout.lower() or "access" in done.stdout.lower()
    assert store.get(["doc"])[0].metadata == {"text": "kept"}


def test_what_a_writer_killed_after_its_commit_left_is_cleaned(store: QdrantStore, monkeypatch) -> None:
    store.write([one("doc", "old", 2)])

    def dies(*args) -> None:
        raise KeyboardInterrupt  # the process dies between its commit and its clean-up

    with monkeypatch.context() as patched:
        patched.setattr("colbert_retriever.stores.qdrant.store.prune", dies)
        with pytest.raises(KeyboardInterrupt):
            store.write([one("doc", "new", 1)], upsert=True)
    assert store.get(["doc"])[0].metadata == {"text": "new"}
    store.write([one("other", "x")])  # the next write cleans up
    assert len(store) == 2
    points = list(store.collection.scroll(visible(), payload=["doc_id"]))
    assert sorted(p.payload["doc_id"] for p in points) == ["doc", "other"]
    assert store.collection.count(None) == 2


def test_what_a_writer_killed_before_its_commit_left_is_cleaned(store: QdrantStore, monkeypatch) -> None:
    store.write([one("doc", "old", 2)])
    with monkeypatch.context() as patched:
        patched.setattr(store.collection, "set_payload", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
        patched.setattr(store, "_discard", lambda token: None)  # dead: it cannot clean up
        with pytest.raises(KeyboardInterrupt):
            store.write([one("doc", "new", 3)], upsert=True)
    assert store.collection.count(None) == 2 + 3  # the dead write's points, invisible
    assert store.get(["doc"])[0].metadata == {"text": "old"}
    store.close()
    reopened = QdrantStore.open(store.config)  # this process owns the folder: opening cleans up
    try:
        assert reopened.collection.count(None) == 2
        assert reopened.get(["doc"])[0].metadata == {"text": "old"}
    finally:
        reopened.close()


def test_writers_sharing_no_lock_keep_one_version_by_the_protocol_alone(tmp_path: Path) -> None:
    """Writers in two processes of a server share no lock: two handles made to act so (each
    its own writer lock, the collection not theirs alone) must still keep exactly one whole
    version of a document, and their readers must show only it."""
    config = QdrantConfig(path=str(tmp_path / "local"), show_progress=False, retries=0)
    handles = [QdrantStore.create(config, model=MODEL, dim=DIM), QdrantStore.open(config)]
    for handle in handles:
        handle.collection.exclusive = False
        handle.collection.writer = threading.RLock()
    try:
        seen: list[set[str]] = []
        for round_ in range(ROUNDS // 2):
            texts = [f"{who} {round_}" for who in "ab"]
            threads = [
                threading.Thread(target=h.write, args=([one("doc", t, 1 + i)],), kwargs={"upsert": True})
                for i, (h, t) in enumerate(zip(handles, texts, strict=True))
            ]
            for thread in threads:
                thread.start()
            reader = handles[0].reader()
            found = reader.best_late([np.ones((2, DIM), dtype=np.float32)], 10, documents=10)[0]
            seen.append({r.metadata["text"] for r in reader.read([f.row for f in found])})
            for thread in threads:
                thread.join()
            _check_one_version(handles[round_ % 2], "doc", set(texts))
        assert all(len(texts) <= 1 for texts in seen)
    finally:
        for handle in handles:
            handle.close()
