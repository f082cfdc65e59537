"""The write transaction: staging outside the writer lock, commits built from the state read
under it, whose errors are whose, and staging folders of dead writers collected."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_index import DIM, MODEL, batch, vectors_for

from colbert_retriever import DocumentBatch, Index, IndexConfig, IndexWriteError, PlaidConfig

# A writer in its own process: adds `count` documents one batch at a time, touching `marker`
# once the first batch is handed over, then sleeping `pause` seconds between batches.
WRITER = textwrap.dedent(
    """
    import pathlib, sys, time
    sys.path.insert(0, {tests!r})
    from test_index import batch
    from colbert_retriever import Index
    index = Index.open({path!r})
    def slow():
        for i in range({count}):
            yield batch([f"long{{i}}"])
            pathlib.Path({marker!r}).touch()
            time.sleep({pause})
    index.write(slow())
    """
)


def start_writer(path: Path, marker: Path, *, count: int, pause: float) -> subprocess.Popen[bytes]:
    script = WRITER.format(
        tests=str(Path(__file__).parent), path=str(path), marker=str(marker), count=count, pause=pause
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline = time.monotonic() + 60
    while not marker.exists():  # the writer is mid-add: its first batch is staged
        assert proc.poll() is None, "the writer died before staging"
        assert time.monotonic() < deadline, "the writer did not start"
        time.sleep(0.02)
    return proc


def create(path: Path, kind: str) -> Index:
    return Index.create(path, model=MODEL, dim=DIM, index_type=kind, plaid=PlaidConfig(n_centroids=8))


@pytest.mark.parametrize("kind", ["exact", "plaid"])
def test_compact_from_a_stale_handle_keeps_the_newer_write(tmp_path: Path, kind: str) -> None:
    a = create(tmp_path / "idx", kind)
    a.write([batch([f"d{i}" for i in range(40)] + ["x"])])
    a.delete(["d0"])  # something for compaction to drop
    b = Index.open(a.path)
    x_v2 = DocumentBatch(ids=["x"], texts=["x v2"], metadata=[{"v": 2}], vectors=[vectors_for("x v2")])
    b.write([x_v2], upsert=True)
    a.compact()  # a's snapshot predates b's upsert: it must compact the state on disk, not its own
    for handle in (a, Index.open(a.path)):
        assert handle.get(["x"])[0].text == "x v2"
        assert sorted(handle.doc_ids()) == sorted([f"d{i}" for i in range(1, 40)] + ["x"])
        assert handle.info().deleted == 0


def test_retrain_from_a_stale_handle_keeps_the_newer_write(tmp_path: Path) -> None:
    a = create(tmp_path / "idx", "plaid")
    a.write([batch([f"d{i}" for i in range(40)])])
    b = Index.open(a.path)
    b.write([batch(["late"])])
    b.delete(["d5"])
    a.retrain()
    assert sorted(Index.open(a.path).doc_ids()) == sorted([f"d{i}" for i in range(40) if i != 5] + ["late"])


def test_a_small_add_goes_through_during_a_long_add(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM, index_type="exact")
    index.write([batch(["first"])])
    writer = start_writer(index.path, tmp_path / "started", count=30, pause=0.1)  # ~3 s of "encoding"
    other = Index.open(index.path, config=IndexConfig(lock_timeout=1.0))
    start = time.monotonic()
    other.write([batch(["small"])])  # before: IndexLockedError after 1 s, the lock held by the long add
    waited = time.monotonic() - start
    assert writer.poll() is None  # the long add was still staging
    print(f"the small add committed in {waited * 1000:.0f} ms during the long one")
    assert writer.wait(timeout=60) == 0
    assert sorted(Index.open(index.path).doc_ids()) == sorted(["first", "small", *(f"long{i}" for i in range(30))])


def test_killed_writer_leaves_previous_state_and_its_staging_is_collected(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM, index_type="exact")
    index.write([batch(["a", "b"])])
    writer = start_writer(index.path, tmp_path / "started", count=1000, pause=0.01)
    deadline = time.monotonic() + 60
    while sum(1 for _ in (index.path / "staging").glob("*/*")) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)  # several segments staged
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    reopened = Index.open(index.path, verify=True)
    assert sorted(reopened.doc_ids()) == ["a", "b"]
    assert any((index.path / "staging").iterdir())  # the dead writer's folder and lock file
    # the lock died with the writer; the next write succeeds and collects what it left
    reopened.write([batch(["c"])])
    assert sorted(Index.open(index.path).doc_ids()) == ["a", "b", "c"]
    assert len(list((index.path / "segments").iterdir())) == 2
    assert not any((index.path / "staging").iterdir())


def test_a_live_writers_staging_is_left_alone(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM, index_type="exact")
    writer = start_writer(index.path, tmp_path / "started", count=20, pause=0.1)
    for i in range(5):  # each write collects garbage: never the live writer's staged segments
        Index.open(index.path).write([batch([f"other{i}"])])
    assert writer.wait(timeout=60) == 0
    assert len(Index.open(index.path)) == 25


def test_the_callers_own_errors_pass_through_unchanged(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM)
    index.write([batch(["a"])])

    def from_a_missing_file() -> Iterator[DocumentBatch]:
        yield batch(["b"])
        with open(tmp_path / "no-such-input.jsonl", encoding="utf-8") as f:  # the caller's I/O, not ours
            yield batch([f.read()])

    with pytest.raises(FileNotFoundError) as caught:
        index.write(from_a_missing_file())
    assert not isinstance(caught.value, IndexWriteError)  # before: "cannot write to the index"
    assert "no-such-input.jsonl" in str(caught.value)

    def interrupted() -> Iterator[DocumentBatch]:
        yield batch(["c"])
        msg = "the caller may not read its corpus"
        raise PermissionError(msg)

    with pytest.raises(PermissionError, match="the caller may not read"):
        index.write(interrupted())
    assert Index.open(index.path).doc_ids() == ["a"]
    assert not any((index.path / "staging").iterdir())


def test_storage_errors_during_staging_are_write_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM)
    index.write([batch(["a"])])
    manifest = json.loads((index.path / "manifest.json").read_text())

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", full)  # every array this write would stage
    with pytest.raises(IndexWriteError, match="No space left"):
        index.write([batch(["b"])])
    monkeypatch.undo()
    assert json.loads((index.path / "manifest.json").read_text()) == manifest
    assert not any((index.path / "staging").iterdir())
