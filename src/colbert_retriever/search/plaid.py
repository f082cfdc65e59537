"""PLAID search over residual-compressed token vectors (Santhanam et al., 2022, "PLAID").

Groundwork for the compressed index of issue #4: pure functions on arrays, not yet wired to
storage, the front door or the CLI.

Stages, for one query of q_len token vectors:
1. candidate generation: each query token probes its `ncells` most similar centroids; the
   candidates are the documents in those centroids' inverted lists;
2. centroid interaction: a candidate's approximate score is MaxSim with every document token
   replaced by its centroid, ignoring tokens whose centroid scores below
   `centroid_score_threshold` for every query token; the best `ndocs` go on;
3. exact MaxSim on the vectors decompressed from centroid + residual; top k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from colbert_retriever.maxsim import maxsim
from colbert_retriever.search.codec import ResidualCodec


@dataclass(frozen=True)
class PlaidArrays:
    """A compressed corpus.

    Attributes:
        codec: Centroids and residual buckets.
        codes: (n_tokens,) int32 centroid id of every token.
        residuals: (n_tokens, dim * nbits / 8) uint8 packed residuals.
        offsets: (n_docs + 1,) int64; document i is tokens offsets[i]:offsets[i+1].
        ivf_offsets: (n_centroids + 1,) int64; centroid c lists documents
            ivf_docs[ivf_offsets[c]:ivf_offsets[c+1]].
        ivf_docs: int32 document rows, each at most once per centroid.
    """

    codec: ResidualCodec
    codes: np.ndarray
    residuals: np.ndarray
    offsets: np.ndarray
    ivf_offsets: np.ndarray
    ivf_docs: np.ndarray


@dataclass(frozen=True)
class PlaidParams:
    """Search knobs; `for_k` gives PLAID's defaults for a given k."""

    ncells: int
    centroid_score_threshold: float
    ndocs: int

    @classmethod
    def for_k(cls, k: int) -> PlaidParams:
        # PLAID's published defaults: k <= 10: (1, 0.5, 256); k <= 100: (2, 0.45, 1024); else (4, 0.4, max(4k, 4096))
        if k <= 10:
            return cls(ncells=1, centroid_score_threshold=0.5, ndocs=256)
        if k <= 100:
            return cls(ncells=2, centroid_score_threshold=0.45, ndocs=1024)
        return cls(ncells=4, centroid_score_threshold=0.4, ndocs=max(4 * k, 4096))


def compress(codec: ResidualCodec, embeddings: np.ndarray, offsets: np.ndarray) -> PlaidArrays:
    """Encode (n_tokens, dim) document vectors and build the centroid -> documents lists."""
    codes, residuals = codec.encode(embeddings)
    doc_of_token = np.repeat(np.arange(len(offsets) - 1, dtype=np.int32), np.diff(offsets))
    pairs = np.unique(codes.astype(np.int64) * (len(offsets) - 1) + doc_of_token)  # one (centroid, doc) each
    centroid_of_pair, ivf_docs = np.divmod(pairs, len(offsets) - 1)
    ivf_offsets = np.zeros(len(codec.centroids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(centroid_of_pair, minlength=len(codec.centroids)), out=ivf_offsets[1:])
    return PlaidArrays(
        codec, codes, residuals, np.asarray(offsets, dtype=np.int64), ivf_offsets, ivf_docs.astype(np.int32)
    )


def search(arrays: PlaidArrays, query: np.ndarray, *, k: int, params: PlaidParams) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores float32, document rows int64) for one (q_len, dim) query, best first."""
    centroid_scores = query.astype(np.float32) @ arrays.codec.centroids.T  # (q_len, n_centroids)
    cells = np.argpartition(-centroid_scores, params.ncells - 1, axis=1)[:, : params.ncells].ravel()
    starts, ends = arrays.ivf_offsets[cells], arrays.ivf_offsets[cells + 1]
    candidates = np.unique(np.concatenate([arrays.ivf_docs[s:e] for s, e in zip(starts, ends, strict=True)]))
    if len(candidates) == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)

    # centroid interaction, with tokens whose centroid is far from every query token pruned
    pruned = centroid_scores.max(axis=0) < params.centroid_score_threshold  # (n_centroids,)
    approx = _interaction(arrays, centroid_scores, np.where(pruned, -np.inf, 0.0), candidates)
    best = candidates[_top(approx, params.ndocs)]

    # exact MaxSim on decompressed vectors of the survivors
    tokens, local = _gather(arrays.offsets, best)
    vectors = arrays.codec.decode(arrays.codes[tokens], arrays.residuals[tokens])
    scores = maxsim(query[None].astype(np.float32), vectors, local)[0]
    order = _top(scores, k)
    order = order[np.argsort(-scores[order], kind="stable")]
    return scores[order], best[order].astype(np.int64)


def _interaction(arrays: PlaidArrays, centroid_scores: np.ndarray, penalty: np.ndarray, docs: np.ndarray) -> np.ndarray:
    tokens, local = _gather(arrays.offsets, docs)
    codes = arrays.codes[tokens]
    sims = centroid_scores[:, codes] + penalty[codes]  # (q_len, n_candidate_tokens)
    best = np.maximum.reduceat(sims, local[:-1], axis=1)  # (q_len, n_docs)
    return np.where(np.isfinite(best), best, 0.0).sum(axis=0)


def _gather(offsets: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Token indices of `docs`, document after document, and their (len(docs) + 1,) offsets
    within that list."""
    lengths = offsets[docs + 1] - offsets[docs]
    local = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=local[1:])
    return np.repeat(offsets[docs] - local[:-1], lengths) + np.arange(local[-1]), local


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    if len(scores) <= n:
        return np.arange(len(scores))
    return np.argpartition(-scores, n - 1)[:n]
