"""Score fusion, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from colbert_retriever.pipeline.fusion import blend, min_max, reciprocal_rank


def test_blend_matches_a_hand_computed_case() -> None:
    late = np.array([20.0, 18.0, 10.0])  # min-max: 1.0, 0.8, 0.0
    lexical = np.array([0.0, 4.0, 8.0])  # min-max: 0.0, 0.5, 1.0
    fused = blend(late, lexical, 0.7)
    assert fused.tolist() == pytest.approx([0.7, 0.7 * 0.8 + 0.3 * 0.5, 0.3])  # 0.7, 0.71, 0.3
    assert np.argsort(-fused).tolist() == [1, 0, 2]
    assert blend(late, lexical, 1.0).tolist() == pytest.approx(min_max(late).tolist())
    assert blend(late, lexical, 0.0).tolist() == pytest.approx(min_max(lexical).tolist())


def test_min_max_of_equal_or_no_scores() -> None:
    assert min_max(np.array([3.0, 3.0])).tolist() == [0.0, 0.0]
    assert min_max(np.array([])).tolist() == []


def test_reciprocal_rank_matches_a_hand_computed_case() -> None:
    late = np.array([9.0, 7.0, 8.0])  # ranks 1, 3, 2
    lexical = np.array([0.0, 5.0, 2.0])  # candidate 0 has no query word: ranks -, 1, 2
    fused = reciprocal_rank(late, lexical, 60)
    assert fused.tolist() == pytest.approx([1 / 61, 1 / 63 + 1 / 61, 1 / 62 + 1 / 62])
    assert np.argsort(-fused).tolist() == [1, 2, 0]


def test_reciprocal_rank_ties_share_the_better_rank() -> None:
    fused = reciprocal_rank(np.array([5.0, 5.0, 1.0]), np.zeros(3), 1)
    assert fused.tolist() == pytest.approx([1 / 2, 1 / 2, 1 / 4])
