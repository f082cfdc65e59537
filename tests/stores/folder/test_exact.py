from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from colbert_retriever.config import SearchConfig
from colbert_retriever.maxsim import maxsim, pad_queries
from colbert_retriever.stores.folder.documents import DocumentTable
from colbert_retriever.stores.folder.exact import exact_search
from colbert_retriever.stores.folder.segment import Segment


def _segment(rng: np.random.Generator, n_docs: int, dim: int, name: str) -> Segment:
    lens = rng.integers(1, 20, size=n_docs)
    emb = rng.standard_normal((int(lens.sum()), dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return Segment(
        name=name,
        embeddings=emb.astype(np.float16),
        offsets=np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
        deleted=np.zeros(n_docs, dtype=bool),
        documents=DocumentTable(Path(name), n_docs),  # never read: exact search scores vectors only
    )


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_chunked_running_topk_equals_scoring_everything(dtype: str) -> None:
    rng = np.random.default_rng(1)
    segments = [_segment(rng, 40, 8, "a"), _segment(rng, 25, 8, "b")]
    queries = [rng.standard_normal((n, 8)).astype(np.float32) for n in (4, 2, 3)]
    queries = [q / np.linalg.norm(q, axis=1, keepdims=True) for q in queries]
    allowed = [rng.random(40) > 0.3, rng.random(25) > 0.3]
    torch_dtype = getattr(torch, dtype)
    full = np.concatenate(
        [maxsim(pad_queries(queries), s.embeddings, s.offsets, torch_dtype) for s in segments], axis=1
    )
    full[:, ~np.concatenate(allowed)] = -np.inf
    for budget in (1, 7, 50, 10_000):  # 1: one document per chunk
        config = SearchConfig(budget, scoring_dtype=dtype)  # type: ignore[arg-type]
        scores, positions = exact_search(segments, queries, allowed, k=5, config=config)
        for q in range(3):
            order = np.argsort(-scores[q])
            np.testing.assert_array_equal(np.sort(positions[q]), np.sort(np.argsort(-full[q])[:5]))
            np.testing.assert_allclose(scores[q][order], np.sort(full[q])[::-1][:5], rtol=1e-6)


def test_k_larger_than_allowed_returns_only_allowed() -> None:
    rng = np.random.default_rng(2)
    segment = _segment(rng, 10, 4, "a")
    allowed = np.zeros(10, dtype=bool)
    allowed[[2, 7]] = True
    _scores, positions = exact_search([segment], [np.eye(4, dtype=np.float32)], [allowed], k=50, config=SearchConfig())
    assert sorted(positions[0].tolist()) == [2, 7]


def test_many_queries_in_blocks_keep_their_order() -> None:
    rng = np.random.default_rng(3)
    segments = [_segment(rng, 30, 8, "a")]
    queries = [rng.standard_normal((int(n), 8)).astype(np.float32) for n in rng.integers(2, 9, size=120)]
    allowed = [np.ones(30, dtype=bool)]
    scores, positions = exact_search(segments, queries, allowed, k=3, config=SearchConfig())
    for i in (0, 57, 119):
        alone_scores, alone_positions = exact_search(segments, [queries[i]], allowed, k=3, config=SearchConfig())
        np.testing.assert_array_equal(np.sort(positions[i]), np.sort(alone_positions[0]))
        np.testing.assert_allclose(np.sort(scores[i]), np.sort(alone_scores[0]), rtol=1e-6)
