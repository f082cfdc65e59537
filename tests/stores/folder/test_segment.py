"""Damaged index files are detected on open, with a message naming the file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_index import DIM, MODEL, batch

from colbert_retriever import Index, IndexCorruptError, IndexNotFoundError, IndexVersionError


@pytest.fixture
def built(tmp_path: Path) -> Path:
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM)
    index.write([batch(["a", "b", "c"])])
    return index.path


def _segment_file(path: Path, name: str) -> Path:
    (segment,) = (path / "segments").iterdir()
    return segment / name


@pytest.mark.parametrize("name", ["embeddings.npy", "doclens.npy", "documents.zlib", "documents.zdict"])
def test_truncated_file_is_named(built: Path, name: str) -> None:
    file = _segment_file(built, name)
    file.write_bytes(file.read_bytes()[:-3])
    with pytest.raises(IndexCorruptError, match=name):
        Index.open(built)


def test_bit_flip_fails_the_checksum(built: Path) -> None:
    file = _segment_file(built, "embeddings.npy")
    data = bytearray(file.read_bytes())
    data[-1] ^= 0x01
    file.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="checksum"):
        Index.open(built, verify=True)
    index = Index.open(built)  # sizes only: opening stays instant at any size, and cannot tell
    assert len(index) == 3
    with pytest.raises(IndexCorruptError, match=r"embeddings\.npy fails its sha256"):
        index.verify()


def test_missing_file_and_manifest(built: Path, tmp_path: Path) -> None:
    _segment_file(built, "doclens.npy").unlink()
    with pytest.raises(IndexCorruptError, match="missing"):
        Index.open(built)
    with pytest.raises(IndexNotFoundError):
        Index.open(tmp_path / "nowhere")
    os.remove(built / "manifest.json")
    with pytest.raises(IndexNotFoundError, match="manifest"):
        Index.open(built)


def test_truncated_manifest_and_newer_format(built: Path) -> None:
    manifest = (built / "manifest.json").read_text()
    (built / "manifest.json").write_text(manifest[: len(manifest) // 2])
    with pytest.raises(IndexCorruptError, match="manifest"):
        Index.open(built)
    data = json.loads(manifest)
    data["format_version"] = 99
    (built / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(IndexVersionError, match="upgrade"):
        Index.open(built)


def test_commit_that_fails_mid_way_leaves_old_state(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = Index.open(built)
    real_replace = os.replace

    def fail_on_manifest(src: str, dst: str) -> None:
        if str(dst).endswith("manifest.json"):
            msg = "simulated crash before the commit"
            raise OSError(msg)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_manifest)
    with pytest.raises(OSError, match="simulated"):
        index.write([batch(["d", "e"])], delete=["a"])
    monkeypatch.undo()
    assert sorted(Index.open(built).doc_ids()) == ["a", "b", "c"]
    assert sorted(index.doc_ids()) == ["a", "b", "c"]
    assert len(list((built / "segments").iterdir())) == 1  # the new segment was removed


def test_no_pickle_is_ever_loaded(built: Path) -> None:
    import pickle

    file = _segment_file(built, "embeddings.npy")
    payload = pickle.dumps(["not", "an", "array"])
    file.write_bytes(payload)
    manifest = json.loads((built / "manifest.json").read_text())
    entry = manifest["segments"][0]["files"]["embeddings.npy"]
    entry["bytes"] = len(payload)
    from colbert_retriever.atomic import sha256_file

    entry["sha256"] = sha256_file(file)  # even with a matching checksum
    (built / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="cannot read segment"):
        Index.open(built)


def test_a_loaded_segment_reads_its_documents_after_its_folder_is_removed(tmp_path: Path) -> None:
    """Regression: a search on a state two commits old failed (FileNotFoundError) when it
    first read a segment's documents after compaction had removed that segment's folder."""
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM)
    index.write([batch(["a", "b"])])
    old = Index.open(tmp_path / "idx")
    for folder in (tmp_path / "idx" / "segments").iterdir():
        shutil.rmtree(folder)  # what garbage collection does once two commits have passed
    (hit,) = old.search([np.ones((1, DIM), dtype=np.float32)], k=1, mode="late")[0]
    assert hit.doc_id in ("a", "b")
    assert old.search([np.ones((1, DIM), dtype=np.float32)], k=1, mode="lexical", texts=["text"])[0]
