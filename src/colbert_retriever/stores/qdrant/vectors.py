"""What a passage becomes besides its token vectors in Qdrant: one prefetch vector and a
BM25 sparse vector. Arrays in, arrays out, no client.

Prefetch vectors stand for a multi-vector in one HNSW search that preselects candidates
for exact MaxSim (Qdrant advises no HNSW on the multi-vector itself):

- "mean": the mean of the token vectors. A query's mean against a passage's mean is the
  average of all token-pair similarities, a blunt proxy for MaxSim.
- "fde": a MUVERA fixed-dimensional encoding (Dhulipala et al., 2024). Tokens fall into
  2^K_SIM buckets by the signs of K_SIM random projections; a passage keeps the mean of its
  tokens in each bucket (an empty bucket takes the token nearest to it in Hamming
  distance), a query the sum; each bucket's vector is projected to D_PROJ dims and
  REPETITIONS such encodings are concatenated. Their dot product approximates the sum,
  over query tokens, of the similarity to a document token in the same bucket: MaxSim
  where the buckets catch the best match.

The BM25 side uses an index folder's words and formula (colbert_retriever/bm25.py): each
stem is hashed to a sparse index; a passage carries each stem's BM25 term-frequency weight,
Qdrant's IDF modifier supplies the inverse document frequency (the same formula, over the
collection), and a query is each of its stems once. What remains different: the weights are
fixed when a passage is written, so they use an assumed average length (`BM25_AVG_WORDS`)
where a folder uses its live rows' average at query time.
"""

from __future__ import annotations

import zlib
from collections import Counter
from functools import cache

import numpy as np

from colbert_retriever.bm25 import stems, term_weight

K_SIM = 3
D_PROJ = 16
REPETITIONS = 16
FDE_DIM = REPETITIONS * (1 << K_SIM) * D_PROJ
_FDE_SEED = 20240525

BM25_AVG_WORDS = 150  # a passage of ~180 word pieces; a document that fits is usually shorter


def mean_vector(vectors: np.ndarray) -> np.ndarray:
    """The (dim,) mean of (n_tokens, dim) vectors, L2-normalised."""
    mean = vectors.astype(np.float32).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


def fde(vectors: np.ndarray, *, query: bool) -> np.ndarray:
    """The (FDE_DIM,) fixed-dimensional encoding of (n_tokens, dim) vectors."""
    gaussians, projections = _fde_parameters(vectors.shape[1])
    vectors = vectors.astype(np.float32)
    powers = 1 << np.arange(K_SIM)
    n_buckets = 1 << K_SIM
    buckets = (np.einsum("td,rdk->rtk", vectors, gaussians) > 0) @ powers  # (R, T)
    projected = np.einsum("td,rdp->rtp", vectors, projections)  # (R, T, D_PROJ)
    out = np.zeros((REPETITIONS, n_buckets, D_PROJ), dtype=np.float32)
    for r in range(REPETITIONS):
        np.add.at(out[r], buckets[r], projected[r])
        if query:
            continue
        counts = np.bincount(buckets[r], minlength=n_buckets)
        out[r][counts > 0] /= counts[counts > 0, None]
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            distance = _popcount(buckets[r][:, None] ^ empty[None, :])  # (T, empty)
            out[r][empty] = projected[r][distance.argmin(axis=0)]
    return out.ravel()


def prefetch_vector(vectors: np.ndarray, kind: str, *, query: bool) -> np.ndarray:
    """The prefetch vector of `kind` ("mean" or "fde") for a passage or a query."""
    return mean_vector(vectors) if kind == "mean" else fde(vectors, query=query)


def bm25_document(text: str) -> tuple[list[int], list[float]]:
    """Sparse (indices, values) of a passage: BM25's term-frequency part of each stem."""
    counts = Counter(_hash(stem) for stem in stems(text))
    indices = sorted(counts)
    tf = np.array([counts[i] for i in indices], dtype=np.float64)
    return indices, term_weight(tf, sum(counts.values()), BM25_AVG_WORDS).tolist()


def bm25_query(text: str) -> tuple[list[int], list[float]]:
    """Sparse (indices, values) of a query: each of its stems once."""
    indices = sorted({_hash(stem) for stem in stems(text)})
    return indices, [1.0] * len(indices)


def _hash(stem: str) -> int:
    return zlib.crc32(stem.encode())


@cache
def _fde_parameters(dim: int) -> tuple[np.ndarray, np.ndarray]:
    """SimHash directions (R, dim, K_SIM) and ±1 projections (R, dim, D_PROJ), fixed by the seed."""
    rng = np.random.default_rng(_FDE_SEED)
    gaussians = rng.standard_normal((REPETITIONS, dim, K_SIM)).astype(np.float32)
    signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(REPETITIONS, dim, D_PROJ))
    return gaussians, signs / np.sqrt(D_PROJ, dtype=np.float32)


def _popcount(values: np.ndarray) -> np.ndarray:
    bits = (values[..., None] >> np.arange(K_SIM)) & 1
    return bits.sum(axis=-1)
