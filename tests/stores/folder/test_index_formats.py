"""Indexes written by earlier versions: `fixtures/format3` was written by 0.2.0 (manifest
format 3: texts as plain JSON lines, float32 centroids, int32 inverted lists) with
`fixtures/make_format3_index.py`, which also recorded what that version answered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from colbert_retriever import DocumentBatch, Index

FIXTURE = Path(__file__).parent / "fixtures" / "format3"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())
QUERIES = [np.array(q, dtype=np.float32) for q in EXPECTED["queries"]]


@pytest.fixture
def old(tmp_path: Path) -> Path:
    path = tmp_path / "old"
    shutil.copytree(FIXTURE, path, ignore=shutil.ignore_patterns("expected.json"))
    (path / "staging").mkdir(exist_ok=True)  # git keeps no empty folder
    return path


def answers(index: Index) -> tuple[list, list, dict]:
    hits = index.search(QUERIES, k=5)
    lexical = index.search(QUERIES[:1], k=3, mode="lexical", texts=["café topic 7"])
    documents = {d.doc_id: [d.text, d.metadata] for d in index.get(["doc-0", "doc-7", "doc-119"])}
    return [[[h.doc_id, h.text, h.passage] for h in q] for q in hits], [h.doc_id for h in lexical[0]], documents


def expected_answers() -> tuple[list, list, dict]:
    hits = [[[doc_id, text, passage] for doc_id, _, text, passage in q] for q in EXPECTED["hits"]]
    return hits, EXPECTED["lexical"], EXPECTED["documents"]


def test_a_format_3_index_answers_as_it_did(old: Path) -> None:
    index = Index.open(old, verify=True)
    assert index.info().format_version == 3
    assert answers(index) == expected_answers()
    scores = [[h.score for h in q] for q in index.search(QUERIES, k=5)]
    np.testing.assert_allclose(scores, [[h[1] for h in q] for q in EXPECTED["hits"]], rtol=1e-6)


def test_writing_to_a_format_3_index_adds_format_4_segments_beside_its_own(old: Path) -> None:
    index = Index.open(old)
    centroids = np.load(next((old / "codecs").glob("*/centroids.npy")))
    assert centroids.dtype == np.float32
    rng = np.random.default_rng(9)
    far = rng.standard_normal((3, 16))  # new topics: the codec grows centroids for them
    vectors = [(far[i] + 0.3 * rng.standard_normal((12, 16))).astype(np.float32) for i in range(3)]
    vectors = [v / np.linalg.norm(v, axis=1, keepdims=True) for v in vectors]
    index.write([DocumentBatch(["new-0", "new-1", "new-2"], ["un", "deux", "trois"], [{}] * 3, vectors)])

    manifest = json.loads((old / "manifest.json").read_text())
    assert manifest["format_version"] == 5
    old_segment, new_segment = manifest["segments"]
    assert ("documents.jsonl" in old_segment["files"], "documents.zlib" in new_segment["files"]) == (True, True)
    assert np.load(old / "segments" / new_segment["name"] / "ivf_docs.npy").dtype == np.uint16
    grown = np.load(old / "codecs" / manifest["codec"]["name"] / "centroids.npy")
    assert grown.dtype == np.float32  # grown from float32 centroids, which are not float16 values
    assert len(grown) > len(centroids)
    np.testing.assert_array_equal(grown[: len(centroids)], centroids)  # old codes keep their meaning

    index = Index.open(old, verify=True)
    (top,) = index.search([vectors[1][:4]], k=1)
    assert (top[0].doc_id, top[0].text) == ("new-1", "deux")
    index.delete(["new-0", "new-1", "new-2"])
    assert answers(index) == expected_answers()
    index.compact()
    (segment,) = json.loads((old / "manifest.json").read_text())["segments"]
    assert set(segment["files"]) >= {"documents.zlib", "documents.zdict"}
    assert "documents.jsonl" not in segment["files"]
    assert answers(Index.open(old, verify=True)) == expected_answers()
