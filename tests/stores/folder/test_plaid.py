from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from colbert_retriever import ConfigError
from colbert_retriever.maxsim import maxsim
from colbert_retriever.stores.folder.codec import ResidualCodec
from colbert_retriever.stores.folder.plaid import PlaidParams, plaid_search
from colbert_retriever.stores.folder.segment import Segment, load_segment, write_compressed_segment
from colbert_retriever.stores.protocol import Row


def corpus(n_docs: int, dim: int = 64, n_topics: int = 50, seed: int = 0):
    """Documents whose tokens cluster around a few topic centres each, like real passages."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((n_topics, dim))
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    lengths = rng.integers(20, 60, n_docs)
    docs = []
    for length in lengths:
        mine = topics[rng.choice(n_topics, 3, replace=False)]
        x = mine[rng.integers(0, 3, length)] + 0.35 * rng.standard_normal((length, dim)) / np.sqrt(dim)
        docs.append(x / np.linalg.norm(x, axis=1, keepdims=True))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return np.concatenate(docs).astype(np.float32), offsets, topics, rng


def query(topics: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    q = topics[rng.choice(len(topics), 2, replace=False)][rng.integers(0, 2, 16)]
    q = q + 0.35 * rng.standard_normal(q.shape) / np.sqrt(q.shape[1])
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def compressed_segment(folder: Path, embeddings: np.ndarray, offsets: np.ndarray, codec: ResidualCodec) -> Segment:
    codes, residuals = codec.encode(embeddings)
    n = len(offsets) - 1
    ids = [str(i) for i in range(n)]
    entry = write_compressed_segment(
        folder,
        [Row(i, i) for i in ids],
        np.diff(offsets),
        codes,
        residuals,
        codec.norms(codes, residuals),
        len(codec.centroids),
        lexical=False,
    )
    return load_segment(folder, entry, verify=True)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory):
    embeddings, offsets, topics, rng = corpus(2_000)
    codec = ResidualCodec.train(embeddings, n_centroids=256, nbits=2)
    segment = compressed_segment(tmp_path_factory.mktemp("plaid") / "seg", embeddings, offsets, codec)
    return codec, segment, offsets, topics, rng


def test_inverted_lists_hold_every_document_of_each_centroid(indexed) -> None:
    _, segment, offsets, _, _ = indexed
    compressed = segment.compressed
    for centroid in (0, 17, 255):
        listed = compressed.ivf_docs[compressed.ivf_offsets[centroid] : compressed.ivf_offsets[centroid + 1]]
        expected = {d for d in range(len(offsets) - 1) if centroid in compressed.codes[offsets[d] : offsets[d + 1]]}
        assert set(listed.tolist()) == expected
        assert len(listed) == len(set(listed.tolist()))


def test_candidate_stages_lose_nothing_against_exhaustive_search(indexed) -> None:
    """Stages 1-2 (cells, centroid interaction) against scoring every document's decompressed
    vectors: what PLAID's shortcuts cost, apart from compression itself."""
    codec, segment, offsets, topics, rng = indexed
    decompressed = codec.decode(segment.compressed.codes, segment.compressed.residuals)
    allowed = [np.ones(len(offsets) - 1, dtype=bool)]
    queries = [query(topics, rng) for _ in range(20)]
    # 2,000 documents over 50 topics: ~40 near-ties per topic, so a wider budget than for_k(10)
    found = plaid_search(codec, [segment], queries, allowed, k=10, params=PlaidParams(8, None, 512))
    recalls = []
    for q, (scores, rows) in zip(queries, found, strict=True):
        everything = maxsim(q[None], decompressed, offsets)[0]
        assert len(rows) == 10
        assert np.all(np.diff(scores) <= 0)
        np.testing.assert_allclose(scores, everything[rows], rtol=5e-4)  # stage 3 is exact, up to float16 norms
        recalls.append(len(set(rows.tolist()) & set(np.argsort(-everything)[:10].tolist())) / 10)
    assert np.mean(recalls) >= 0.95
    # the test can fail: with one cell per token and 10 reranked candidates recall drops
    starved = plaid_search(codec, [segment], queries, allowed, k=10, params=PlaidParams(1, None, 10))
    worse = [
        len(set(rows.tolist()) & set(np.argsort(-maxsim(q[None], decompressed, offsets)[0])[:10].tolist())) / 10
        for q, (_, rows) in zip(queries, starved, strict=True)
    ]
    assert np.mean(worse) < np.mean(recalls)


def test_k_is_never_capped_and_filters_still_fill_k(indexed) -> None:
    codec, segment, offsets, topics, rng = indexed
    n = len(offsets) - 1
    q = [query(topics, rng)]
    every = plaid_search(codec, [segment], q, [np.ones(n, dtype=bool)], k=n, params=PlaidParams(1, None, 10))[0]
    assert sorted(every[1].tolist()) == list(range(n))  # all 2,000, though ncells=1 and ndocs=10
    # a selective filter: 300 rows, ndocs 64, one cell per token: the probe widens until k are found
    allowed = np.zeros(n, dtype=bool)
    allowed[rng.choice(n, 300, replace=False)] = True
    _scores, rows = plaid_search(codec, [segment], q, [allowed], k=100, params=PlaidParams(1, None, 64))[0]
    assert len(rows) == 100
    assert allowed[rows].all()


def test_documents_spread_over_segments_and_tombstones(tmp_path: Path) -> None:
    """Two segments give the same hits as one holding both, with positions across segments."""
    embeddings, offsets, topics, rng = corpus(600, seed=3)
    codec = ResidualCodec.train(embeddings, n_centroids=64, nbits=2)
    whole = compressed_segment(tmp_path / "whole", embeddings, offsets, codec)
    half = int(offsets[300])
    first = compressed_segment(tmp_path / "a", embeddings[:half], offsets[:301], codec)
    second = compressed_segment(tmp_path / "b", embeddings[half:], offsets[300:] - half, codec)
    queries = [query(topics, rng) for _ in range(5)]
    params = PlaidParams.for_k(10)
    one = plaid_search(codec, [whole], queries, [np.ones(600, dtype=bool)], k=10, params=params)
    two = plaid_search(codec, [first, second], queries, [np.ones(300, dtype=bool)] * 2, k=10, params=params)
    for (s1, p1), (s2, p2) in zip(one, two, strict=True):
        np.testing.assert_array_equal(p1, p2)
        np.testing.assert_allclose(s1, s2, rtol=1e-6)
    top = int(one[0][1][0])  # tombstone the best hit in whichever segment holds it
    dead = np.ones(300, dtype=bool)
    dead[top % 300] = False
    mask = [np.ones(300, dtype=bool), dead] if top >= 300 else [dead, np.ones(300, dtype=bool)]
    _, positions = plaid_search(codec, [first, second], queries[:1], mask, k=10, params=params)[0]
    assert top not in positions.tolist()
    assert set(positions.tolist()) == set(one[0][1].tolist()) - {top} | set(positions.tolist()[-1:])


def test_bad_params() -> None:
    with pytest.raises(ConfigError, match="ncells"):
        PlaidParams(0, None, 10)
    with pytest.raises(ConfigError, match="ndocs"):
        PlaidParams(1, None, -1)


def test_a_batch_searched_in_threads_equals_one_query_at_a_time(indexed, monkeypatch: pytest.MonkeyPatch) -> None:
    import colbert_retriever.stores.folder.plaid as plaid

    codec, segment, offsets, topics, rng = indexed
    allowed = [np.ones(len(offsets) - 1, dtype=bool)]
    queries = [query(topics, rng) for _ in range(12)]
    monkeypatch.setattr(plaid, "_WORKERS", 2)
    together = plaid_search(codec, [segment], queries, allowed, k=20, params=PlaidParams.for_k(20))
    alone = [plaid_search(codec, [segment], [q], allowed, k=20, params=PlaidParams.for_k(20))[0] for q in queries]
    for (scores, rows), (scores_1, rows_1) in zip(together, alone, strict=True):
        np.testing.assert_array_equal(rows, rows_1)
        np.testing.assert_array_equal(scores, scores_1)
