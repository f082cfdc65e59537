from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from colbert_retriever import DimensionMismatchError, DocumentBatch, Index
from colbert_retriever.stores.folder.pooling import pool_tokens


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_shapes_norms_and_identity() -> None:
    rng = np.random.default_rng(0)
    docs = [unit(rng.standard_normal((n, 16))) for n in (1, 2, 7, 30, 181)]
    assert pool_tokens(docs, 1) == docs
    for factor in (2, 3):
        pooled = pool_tokens(docs, factor)
        assert [len(p) for p in pooled] == [-(-len(d) // factor) for d in docs]
        for p in pooled:
            np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1, rtol=1e-5)


def test_near_duplicate_tokens_merge_into_one() -> None:
    """Tokens that come in close pairs pool (factor 2) into one vector per pair, whatever their order."""
    rng = np.random.default_rng(1)
    distinct = unit(rng.standard_normal((6, 32)))
    twins = unit(distinct + 0.01 * rng.standard_normal((6, 32)))
    doc = np.concatenate([distinct, twins])[rng.permutation(12)]
    (pooled,) = pool_tokens([doc], 2)
    similarity = pooled @ distinct.T  # (6 pooled, 6 distinct)
    assert sorted(similarity.argmax(axis=1).tolist()) == list(range(6))
    assert similarity.max(axis=1).min() > 0.99


def test_index_stores_pooled_vectors_once(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    index = Index.create(tmp_path / "idx", model={"name": "m", "dim": 16}, dim=16, pool_factor=2)
    vectors = [unit(rng.standard_normal((n, 16))) for n in (10, 11, 4)]
    index.write([DocumentBatch(ids=["a", "b", "c"], texts=["a", "b", "c"], metadata=[{}] * 3, vectors=vectors)])
    assert index.n_tokens == 5 + 6 + 2
    assert index.info().pool_factor == 2
    index.delete(["c"])
    index.compact()
    assert index.n_tokens == 5 + 6  # compaction does not pool again


def test_bad_vectors_are_refused_before_pooling(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx", model={"name": "m", "dim": 16}, dim=16, pool_factor=2)
    bad = DocumentBatch(ids=["a"], texts=["a"], metadata=[{}], vectors=[np.ones((4, 8), np.float32)])
    with pytest.raises(DimensionMismatchError, match="shape"):
        index.write([bad])
