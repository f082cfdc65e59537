from __future__ import annotations

import numpy as np

from colbert_retriever.maxsim import maxsim, pad_queries


def _loop_maxsim(query: np.ndarray, doc: np.ndarray) -> float:
    """Plain-loop reference in float64."""
    total = 0.0
    for q in query.astype(np.float64):
        total += max(float(q @ d) for d in doc.astype(np.float64))
    return total


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_hand_computed_three_by_two() -> None:
    query = np.array([[[1, 0], [0, 1], [0.6, 0.8]]], dtype=np.float32)
    doc = np.array([[0.8, 0.6], [0, -1]], dtype=np.float32)
    # token maxima: 0.8, 0.6, 0.48 + 0.48 = 0.96 -> 2.36
    assert np.isclose(maxsim(query, doc, np.array([0, 2]))[0, 0], 2.36, atol=1e-6)


def test_matches_plain_loop_in_float32_and_float16() -> None:
    rng = np.random.default_rng(0)
    lens = rng.integers(1, 30, size=25)
    docs = [_unit(rng, n, 16) for n in lens]
    queries = [_unit(rng, n, 16) for n in (8, 3, 5)]
    offsets = np.concatenate([[0], np.cumsum(lens)])
    block = np.concatenate(docs)
    expected = np.array([[_loop_maxsim(q, d) for d in docs] for q in queries])
    np.testing.assert_allclose(maxsim(pad_queries(queries), block, offsets), expected, atol=1e-4)
    # float16 storage: similarities rounded to ~2.5e-4 each, summed over <= 8 query tokens
    got16 = maxsim(pad_queries(queries), block.astype(np.float16), offsets)
    np.testing.assert_allclose(got16, expected, atol=8 * 2e-3)


def test_padding_rows_add_nothing_even_for_negative_similarities() -> None:
    query = np.array([[-1.0, 0.0]], dtype=np.float32)
    doc = np.array([[1.0, 0.0]], dtype=np.float32)
    padded = pad_queries([query, np.ones((3, 2), dtype=np.float32) / np.sqrt(2)])
    assert padded.shape == (2, 3, 2)
    assert np.isclose(maxsim(padded, doc, np.array([0, 1]))[0, 0], -1.0)
