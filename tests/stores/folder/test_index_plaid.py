"""The compressed (PLAID) index: build, add, drift, delete, compact, retrain, reload, auto,
filters, faults, and its agreement with the exact index on the same vectors."""

from __future__ import annotations

import ctypes
import hashlib
import io
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import colbert_retriever.stores.folder.compression as compression
from colbert_retriever import ConfigError, DocumentBatch, Index, IndexCorruptError, IndexWriteError, PlaidConfig

DIM = 32
MODEL = {"name": "test", "format": "transformers", "dim": DIM, "digest": "x", "layout": {}}
TOPICS = np.random.default_rng(0).standard_normal((40, DIM))


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def docs(ids: list[str], *, topics: np.ndarray = TOPICS, seed: int = 0) -> DocumentBatch:
    """Passages of 10-30 tokens near 3 topics each; metadata: {"group": number % 10}."""
    rng = np.random.default_rng(seed)
    vectors = []
    for _ in ids:
        mine = topics[rng.choice(len(topics), 3, replace=False)]
        length = int(rng.integers(10, 30))
        vectors.append(unit(mine[rng.integers(0, 3, length)] + 0.5 * rng.standard_normal((length, DIM))))
    meta = [{"group": int(doc_id.split("-")[-1]) % 10} for doc_id in ids]
    return DocumentBatch(ids=ids, texts=[f"text {i}" for i in ids], metadata=meta, vectors=vectors)


def query_for(batch: DocumentBatch, row: int, seed: int = 1) -> np.ndarray:
    """A query paraphrasing one document: its tokens with fresh noise."""
    rng = np.random.default_rng(seed)
    tokens = batch.vectors[row]
    return unit(tokens[rng.integers(0, len(tokens), 8)] + 0.3 * rng.standard_normal((8, DIM)))


def ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


def create(path: Path, kind: str = "plaid", **plaid) -> Index:
    return Index.create(path, model=MODEL, dim=DIM, index_type=kind, plaid=PlaidConfig(**plaid))


@pytest.fixture(scope="module")
def corpus() -> DocumentBatch:
    return docs(ids("d", 600))


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, corpus: DocumentBatch) -> tuple[Index, Index]:
    root = tmp_path_factory.mktemp("pair")
    exact, plaid = create(root / "exact", "exact"), create(root / "plaid", nbits=4)
    exact.write([corpus])
    plaid.write([corpus])
    return exact, plaid


def test_build_writes_a_codec_and_compressed_tokens(pair: tuple[Index, Index]) -> None:
    exact, plaid = pair
    manifest = json.loads((plaid.path / "manifest.json").read_text())  # as other tools read it
    assert manifest["index_type"] == "plaid"
    # 16 sqrt(12k tokens) = 1,744, capped at tokens / 32 = 371, rounded down to a power of two
    assert manifest["codec"]["n_centroids"] == plaid.info().centroids == 256
    (segment,) = manifest["segments"]
    assert set(segment["files"]) >= {"codes.npy", "residuals.npy", "ivf_offsets.npy", "ivf_docs.npy"}
    assert "embeddings.npy" not in segment["files"]
    assert [p.name for p in (plaid.path / "segments").iterdir()] == [segment["name"]]  # staging removed
    info = plaid.info()
    assert (info.nbits, info.tokens, info.tokens_at_training) == (4, exact.n_tokens, exact.n_tokens)
    # 4 + 32 * 4 / 8 = 20 bytes per token against 64 in float16, plus the same documents file
    assert info.bytes < 0.5 * exact.info().bytes


def test_agrees_with_exact_search(pair: tuple[Index, Index], corpus: DocumentBatch) -> None:
    exact, plaid = pair
    queries = [query_for(corpus, row, seed=row) for row in range(0, 600, 30)]
    overlap, top1 = [], []
    for want, got in zip(exact.search(queries, k=10), plaid.search(queries, k=10), strict=True):
        assert len(got) == 10
        overlap.append(len({h.doc_id for h in want} & {h.doc_id for h in got}) / 10)
        top1.append(want[0].doc_id == got[0].doc_id)
        assert abs(want[0].score - got[0].score) < 0.03 * want[0].score
        assert abs(want[-1].score - got[-1].score) < 0.03 * want[-1].score  # what is missed is a near-tie
    # 600 documents over 40 topics are full of near-ties: measured 0.95 and 0.895
    assert np.mean(top1) >= 0.9
    assert np.mean(overlap) >= 0.85


def test_reload_gives_identical_results(pair: tuple[Index, Index], corpus: DocumentBatch) -> None:
    _, plaid = pair
    q = [query_for(corpus, 7)]
    reopened = Index.open(plaid.path, verify=True)
    assert [(h.doc_id, h.score) for h in reopened.search(q, k=20)[0]] == [
        (h.doc_id, h.score) for h in plaid.search(q, k=20)[0]
    ]


def test_codewords_index_agrees_with_exact_grows_and_reopens(
    pair: tuple[Index, Index], corpus: DocumentBatch, tmp_path: Path
) -> None:
    """Product-quantised residuals (a sample of 12k tokens, enough for 256 codewords per
    byte) through the index: written, searched, grown with their codewords, reopened."""
    exact, _ = pair
    index = create(tmp_path / "pq", nbits=2, n_centroids=512)
    index.write([corpus])
    codec = json.loads((index.path / "manifest.json").read_text())["codec"]
    assert set(codec["files"]) == {"centroids.npy", "codebooks.npy"}
    queries = [query_for(corpus, row, seed=row) for row in range(0, 600, 30)]
    found = index.search(queries, k=10)
    overlap = [
        len({h.doc_id for h in want} & {h.doc_id for h in got}) / 10
        for want, got in zip(exact.search(queries, k=10), found, strict=True)
    ]
    assert np.mean(overlap) >= 0.8  # measured 0.82; buckets at nbits 2 get 0.805 on this corpus
    added = docs(ids("b", 40), seed=5)
    index.write([added])
    assert index.search([query_for(added, 4)], k=5)[0][0].doc_id == "b-4"
    reopened = Index.open(index.path, verify=True)
    assert [[h.doc_id for h in hits] for hits in reopened.search(queries, k=10)] == [
        [h.doc_id for h in hits] for hits in index.search(queries, k=10)
    ]


def test_k_is_never_capped_and_selective_filters_fill_k(pair: tuple[Index, Index], corpus: DocumentBatch) -> None:
    _, plaid = pair
    q = [query_for(corpus, 3)]
    assert len(plaid.search(q, k=600)[0]) == 600
    assert len(plaid.search(q, k=1000)[0]) == 600
    hits = plaid.search(q, k=50, filters={"group": 7})[0]  # 60 of 600 pass
    assert len(hits) == 50
    assert all(h.metadata["group"] == 7 for h in hits)


def test_add_reuses_the_codec_and_finds_new_documents(tmp_path: Path) -> None:
    index = create(tmp_path / "idx")
    index.write([docs(ids("a", 300))])
    codec = index._snapshot.manifest.codec.name
    added = docs(ids("b", 50), seed=5)
    index.write([added])
    assert index._snapshot.manifest.codec.name == codec  # same distribution: no new centroids
    assert index.info().segments == 2
    hits = index.search([query_for(added, 4)], k=5)[0]
    assert hits[0].doc_id == "b-4"


def test_drifting_documents_get_new_centroids(tmp_path: Path) -> None:
    index = create(tmp_path / "idx")
    index.write([docs(ids("a", 300))])
    before, old = index.info().centroids, index._snapshot.codec
    old_codec = index._snapshot.manifest.codec.name
    elsewhere = docs(ids("far", 200), topics=np.random.default_rng(9).standard_normal((20, DIM)), seed=2)
    index.write([elsewhere])
    manifest = index._snapshot.manifest
    assert index.info().centroids > before
    assert manifest.codec.name != old_codec
    assert old_codec in manifest.retired  # kept one commit for readers of the previous state
    # the drifted documents are stored closer to their vectors than the old centroids allowed
    original = np.concatenate(elsewhere.vectors)
    segment = index._snapshot.segments[-1]
    stored = index._snapshot.codec.decode(segment.compressed.codes, segment.compressed.residuals)
    with_old = old.decode(*old.encode(original))
    assert np.mean(np.sum(stored * original, axis=1)) > np.mean(np.sum(with_old * original, axis=1)) + 0.01
    found = [index.search([query_for(elsewhere, row)], k=1)[0][0].doc_id for row in range(0, 200, 10)]
    assert np.mean([doc_id == f"far-{row}" for doc_id, row in zip(found, range(0, 200, 10), strict=True)]) >= 0.8
    index.delete(["a-0"])  # the write after the next collects the retired codec
    index.delete(["a-1"])
    assert sorted(p.name for p in (index.path / "codecs").iterdir()) == [index._snapshot.manifest.codec.name]


def test_delete_compact_and_retrain(tmp_path: Path) -> None:
    index = create(tmp_path / "idx")
    first = docs(ids("a", 300))
    index.write([first])
    index.write([docs(ids("b", 100), seed=3)])
    index.delete(ids("a", 100))
    q = [query_for(first, 150)]
    before = [(h.doc_id, h.score) for h in index.search(q, k=10)[0]]
    assert not any(doc_id in ids("a", 100) for doc_id, _ in before)
    index.compact()
    info = index.info()
    assert (info.documents, info.segments, info.deleted) == (300, 1, 0)
    after = [(h.doc_id, h.score) for h in index.search(q, k=10)[0]]
    assert after == before  # compressed tokens copied as they were: same scores
    index.retrain()
    info = index.info()
    assert info.tokens_at_training == info.tokens
    assert index.search(q, k=1)[0][0].doc_id == "a-150"
    reopened = Index.open(index.path)
    assert sorted(reopened.doc_ids()) == sorted(ids("a", 300)[100:] + ids("b", 100))


def test_auto_stays_exact_until_large_then_converts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compression, "AUTO_PLAID_TOKENS", 5_000)
    index = create(tmp_path / "idx", "auto")
    small = docs(ids("a", 100))
    index.write([small])
    assert index.info().centroids == 0  # exact: under 5,000 tokens
    assert "embeddings.npy" in index._snapshot.manifest.segments[0].files
    index.write([docs(ids("b", 300), seed=4)])
    info = index.info()
    assert info.centroids > 0
    assert (info.documents, info.segments) == (400, 1)  # old and new documents in one compressed segment
    assert index.search([query_for(small, 42)], k=1)[0][0].doc_id == "a-42"


def test_a_failed_compression_leaves_the_previous_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = create(tmp_path / "idx")
    index.write([docs(ids("a", 200))])
    folders = sorted(p.name for p in (index.path / "segments").iterdir())

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(compression, "write_compressed_segment", full_disk)
    with pytest.raises(IndexWriteError, match="No space left"):
        index.write([docs(ids("b", 50), seed=1)])
    assert sorted(p.name for p in (index.path / "segments").iterdir()) == folders  # staging cleaned up
    assert len(Index.open(index.path)) == 200


def test_damaged_codec_is_reported(tmp_path: Path) -> None:
    index = create(tmp_path / "idx")
    index.write([docs(ids("a", 200))])
    (centroids,) = (index.path / "codecs").glob("*/centroids.npy")
    data = bytearray(centroids.read_bytes())
    data[-1] ^= 0xFF
    centroids.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match=r"centroids\.npy"):
        Index.open(index.path, verify=True)
    with pytest.raises(IndexCorruptError, match=r"centroids\.npy"):
        Index.open(index.path).verify()


def test_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="index_type"):
        Index.create(tmp_path / "a", model=MODEL, dim=DIM, index_type="ivf")
    with pytest.raises(ConfigError, match="nbits"):
        PlaidConfig(nbits=3)
    with pytest.raises(ConfigError, match="multiple of 8"):
        Index.create(tmp_path / "b", model=MODEL, dim=12, index_type="plaid", plaid=PlaidConfig(nbits=1))
    exact = create(tmp_path / "c", "exact")
    exact.write([docs(ids("a", 5))])
    with pytest.raises(ConfigError, match="exact"):
        exact.retrain()


def test_an_empty_write_trains_nothing(tmp_path: Path) -> None:
    index = create(tmp_path / "idx")
    index.write([])
    assert (len(index), index.info().centroids) == (0, 0)
    index.write([docs(ids("a", 50))])
    assert index.info().centroids > 0


def _tamper(index_path: Path, file: str, change: Callable[[np.ndarray], np.ndarray]) -> None:
    """Rewrite one array of the (single) segment and record its new size and checksum in the
    manifest: a file consistent with its checksum, wrong in content."""
    manifest = json.loads((index_path / "manifest.json").read_text())
    (entry,) = manifest["segments"]
    path = index_path / "segments" / entry["name"] / file
    buffer = io.BytesIO()
    np.save(buffer, change(np.load(path)))
    path.write_bytes(buffer.getvalue())
    entry["files"][file] = {"bytes": len(buffer.getvalue()), "sha256": hashlib.sha256(buffer.getvalue()).hexdigest()}
    (index_path / "manifest.json").write_text(json.dumps(manifest))


def _set(where: int | slice, value: int) -> Callable[[np.ndarray], np.ndarray]:
    def change(array: np.ndarray) -> np.ndarray:
        array = array.astype(np.result_type(array, np.min_scalar_type(value)))  # -1 in uint16 rows: int32
        array[where] = value
        return array

    return change


def _empty_first_document(doclens: np.ndarray) -> np.ndarray:
    return np.concatenate([[0, doclens[0] + doclens[1]], doclens[2:]]).astype(doclens.dtype)


@pytest.mark.parametrize(
    ("file", "change", "named"),
    [
        ("codes.npy", _set(0, 16_000), "centroid 16000"),
        ("ivf_docs.npy", _set(slice(None), 10_000), "ivf_docs.npy"),
        ("ivf_docs.npy", _set(slice(None), -1), "ivf_docs.npy"),
        ("ivf_offsets.npy", _set(slice(1, -1), 10**9), "ivf_offsets.npy"),
        ("doclens.npy", _empty_first_document, "without tokens"),
    ],
)
def test_verify_checks_structure_and_search_never_reads_out_of_range(
    tmp_path: Path, corpus: DocumentBatch, file: str, change: Callable[[np.ndarray], np.ndarray], named: str
) -> None:
    index = create(tmp_path / "idx", nbits=2)
    index.write([corpus])
    query = query_for(corpus, 0)
    index.compact()  # one segment
    _tamper(index.path, file, change)
    damaged = Index.open(index.path)
    with pytest.raises(IndexCorruptError, match=re.escape(named)):
        damaged.verify()  # was: passed, the checksums being right
    if file == "doclens.npy":  # other token boundaries, all within range: a search still runs
        assert len(damaged.search([query], k=10)[0]) == 10
        return
    with pytest.raises(IndexCorruptError):  # was: IndexError, or (-1) a silently wrong row
        damaged.search([query], k=10, filters={"group": {"$gte": 0}})


def _rss_mb() -> float:
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024


@pytest.mark.skipif(sys.platform != "linux" or not hasattr(ctypes.CDLL(None), "malloc_trim"), reason="glibc only")
def test_freed_heap_pages_go_back_to_the_system_before_training() -> None:
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    size = 64 << 10  # below glibc's mmap threshold: from the heap, as encoding's smaller activations
    blocks = [libc.malloc(size) for _ in range(3_000)]
    for block in blocks:
        ctypes.memset(block, 1, size)
    kept = blocks[1::10]  # in use between the others, which leave holes that free() keeps
    for i, block in enumerate(blocks):
        if i % 10 != 1:
            libc.free(block)
    before = _rss_mb()
    assert compression.release_freed_memory()
    assert _rss_mb() < before - 100  # of the ~170 MB in holes
    for block in kept:
        libc.free(block)
