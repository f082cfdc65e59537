"""Prefetch vectors and the BM25 sparse side, arrays in and out."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("Stemmer")

from colbert_retriever.bm25 import K1
from colbert_retriever.stores.qdrant.vectors import (
    FDE_DIM,
    bm25_document,
    bm25_query,
    fde,
    mean_vector,
    prefetch_vector,
)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.mark.parametrize("kind", ["mean", "fde"])
def test_a_passage_holding_the_query_tokens_outranks_random_ones(kind: str) -> None:
    rng = np.random.default_rng(0)
    query = _unit(rng.normal(size=(8, 32)))
    holder = _unit(np.concatenate([query, rng.normal(size=(22, 32))]))
    others = [_unit(rng.normal(size=(30, 32))) for _ in range(50)]
    q = prefetch_vector(query, kind, query=True)
    scores = [q @ prefetch_vector(d, kind, query=False) for d in [holder, *others]]
    assert int(np.argmax(scores)) == 0


def test_fde_is_fixed_size_deterministic_and_sums_queries() -> None:
    rng = np.random.default_rng(1)
    tokens = _unit(rng.normal(size=(5, 16))).astype(np.float32)
    assert fde(tokens, query=False).shape == (FDE_DIM,)
    np.testing.assert_array_equal(fde(tokens, query=True), fde(tokens.copy(), query=True))
    # a query's encoding is the sum of its tokens' encodings (bucket sums are linear)
    np.testing.assert_allclose(
        fde(tokens, query=True), sum(fde(t[None], query=True) for t in tokens), rtol=1e-5, atol=1e-6
    )
    # a passage of one token fills every bucket with it: no bucket is left empty
    assert np.count_nonzero(fde(tokens[:1], query=False)) > FDE_DIM * 0.9


def test_mean_vector_is_the_normalised_mean() -> None:
    tokens = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(mean_vector(tokens), [2**-0.5, 2**-0.5], rtol=1e-6)


def test_bm25_weights_stem_saturate_and_normalise_length() -> None:
    indices, values = bm25_document("Running runs RUN.")
    assert len(indices) == 1  # one stem, three times
    assert values[0] < 3 * bm25_document("run")[1][0]  # term frequency saturates
    assert values[0] < K1 + 1
    short = dict(zip(*bm25_document("energy of the sun"), strict=True))
    long = dict(zip(*bm25_document("energy of the sun " + "other words " * 100), strict=True))
    shared = set(short) & set(long)
    assert shared
    assert all(long[i] < short[i] for i in shared)
    query_indices, query_values = bm25_query("energies energy, ENERGY")
    assert query_indices == bm25_document("energy")[0]
    assert query_values == [1.0]
    assert bm25_query("!!! ???") == ([], [])
