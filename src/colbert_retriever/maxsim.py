"""MaxSim scoring on arrays: no model, no files.

score(q, d) = sum over query tokens i of max over document tokens j of <q_i, d_j>.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def pad_queries(queries: Sequence[np.ndarray]) -> np.ndarray:
    """Stack per-query (n_tokens, dim) arrays into (n_queries, max_tokens, dim) float32.

    Missing rows are zero vectors: their similarity to every document token is 0, so they
    add exactly 0 to every MaxSim score.
    """
    length = max(len(q) for q in queries)
    out = np.zeros((len(queries), length, queries[0].shape[1]), dtype=np.float32)
    for i, q in enumerate(queries):
        out[i, : len(q)] = q
    return out


def maxsim(
    queries: np.ndarray,
    embeddings: np.ndarray,
    offsets: np.ndarray,
    dtype: torch.dtype | None = None,
    device: torch.device | None = None,
) -> np.ndarray:
    """MaxSim of every query against every document of a token block.

    Args:
        queries: (n_queries, q_len, dim) float32 or float16, zero rows for padding.
        embeddings: (n_tokens, dim) float16 or float32 document vectors back to back.
        offsets: (n_docs + 1,) int64; document i is rows offsets[i]:offsets[i+1] of
            `embeddings`; offsets[0] must be 0 and every document non-empty.
        dtype: The type the similarities are computed in (default: the embeddings'):
            float16 on vectors stored in float16 stays within ~2.5e-4 of float32, but is
            emulated and 17x slower on CPUs without half-precision units
            (`precision.scoring_dtype` picks).
        device: Where the similarities are computed (default: the CPU).

    Returns:
        (n_queries, n_docs) float32 scores, summed in float32.

    >>> q = np.array([[[1, 0], [0, 1]]], dtype=np.float32)  # one query, two tokens
    >>> d = np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)
    >>> maxsim(q, d, np.array([0, 2, 3])).astype(np.float64).round(3).tolist()  # docs: rows 0-1, row 2
    [[1.8, 1.0]]
    """
    n_queries, q_len, dim = queries.shape
    block = torch.from_numpy(np.ascontiguousarray(embeddings))
    block = block.to(device=device, dtype=dtype or block.dtype)
    flat = torch.from_numpy(np.ascontiguousarray(queries.reshape(n_queries * q_len, dim))).to(block.device, block.dtype)
    sims = (flat @ block.T).float().cpu().numpy()  # (n_queries * q_len, n_tokens) float32
    best = np.maximum.reduceat(sims, offsets[:-1], axis=1)  # (n_queries * q_len, n_docs)
    return best.reshape(n_queries, q_len, -1).sum(axis=1)
