from __future__ import annotations

import numpy as np

from colbert_retriever.maxsim import maxsim
from colbert_retriever.search.codec import ResidualCodec
from colbert_retriever.search.plaid import PlaidParams, _gather, compress, search


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


def test_gather() -> None:
    offsets = np.array([0, 3, 5, 9])
    tokens, local = _gather(offsets, np.array([2, 0]))
    assert tokens.tolist() == [5, 6, 7, 8, 0, 1, 2]
    assert local.tolist() == [0, 4, 7]


def test_inverted_lists_hold_every_document_of_each_centroid() -> None:
    embeddings, offsets, _, _ = corpus(200)
    codec = ResidualCodec.train(embeddings, n_centroids=64, nbits=2)
    arrays = compress(codec, embeddings, offsets)
    for centroid in (0, 17, 63):
        listed = arrays.ivf_docs[arrays.ivf_offsets[centroid] : arrays.ivf_offsets[centroid + 1]]
        expected = {d for d in range(200) if centroid in arrays.codes[offsets[d] : offsets[d + 1]]}
        assert set(listed.tolist()) == expected
        assert len(listed) == len(set(listed.tolist()))


def test_candidate_stages_lose_nothing_against_exhaustive_search() -> None:
    """Stages 1-2 (cells, centroid interaction, pruning) against scoring every document's
    decompressed vectors: what PLAID's shortcuts cost, apart from compression itself."""
    embeddings, offsets, topics, rng = corpus(2_000)
    codec = ResidualCodec.train(embeddings, n_centroids=256, nbits=2)
    arrays = compress(codec, embeddings, offsets)
    decompressed = codec.decode(arrays.codes, arrays.residuals)
    recalls = []
    for _ in range(20):
        q = topics[rng.choice(len(topics), 2, replace=False)][rng.integers(0, 2, 16)]
        q = q + 0.35 * rng.standard_normal(q.shape) / np.sqrt(q.shape[1])
        q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
        everything = maxsim(q[None], decompressed, offsets)[0]
        scores, rows = search(arrays, q, k=10, params=PlaidParams.for_k(10))
        assert len(rows) == 10
        assert np.all(np.diff(scores) <= 0)
        np.testing.assert_allclose(scores, everything[rows], rtol=1e-5)  # stage 3 is exact
        recalls.append(len(set(rows.tolist()) & set(np.argsort(-everything)[:10].tolist())) / 10)
    assert np.mean(recalls) >= 0.95
