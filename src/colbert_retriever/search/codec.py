"""ColBERTv2 residual compression: a token vector is stored as the id of its nearest centroid
plus its residual quantised to `nbits` per dimension.

Groundwork for the compressed (PLAID) index of issue #4; nothing uses it yet. With dim 128
and nbits 2 a token costs 4 + 32 = 36 bytes instead of 256 in float16.

Following ColBERTv2 (Santhanam et al., 2022, section 3.2): centroids come from spherical
k-means over a sample of token vectors; the bucket cutoffs are the quantiles of all residual
values of the sample at i / 2**nbits, and each bucket decodes to the quantile at its middle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from colbert_retriever.errors import ConfigError, MissingDependencyError

NBITS = (1, 2, 4)


@dataclass(frozen=True)
class ResidualCodec:
    """Centroids and residual buckets learned from a sample of token vectors.

    Attributes:
        centroids: (n_centroids, dim) float32, unit norm.
        cutoffs: (2**nbits - 1,) float32 ascending bucket boundaries of residual values.
        weights: (2**nbits,) float32 value each bucket decodes to.
        nbits: Bits per dimension of a residual (1, 2 or 4).
    """

    centroids: np.ndarray
    cutoffs: np.ndarray
    weights: np.ndarray
    nbits: int

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    @classmethod
    def train(
        cls, sample: np.ndarray, *, n_centroids: int, nbits: int = 2, seed: int = 0, niter: int = 20
    ) -> ResidualCodec:
        """Learn centroids (spherical k-means, FAISS) and residual buckets from `sample`.

        Args:
            sample: (n, dim) float32 unit vectors; n >= n_centroids.
            n_centroids: Number of centroids.
            nbits: Bits per residual dimension: 1, 2 or 4; dim * nbits must be a multiple of 8.
            seed: k-means seed (same seed and sample, same codec).
            niter: k-means iterations.
        """
        sample = np.ascontiguousarray(sample, dtype=np.float32)
        n, dim = sample.shape
        if nbits not in NBITS:
            msg = f"nbits must be one of {NBITS}, got {nbits!r}"
            raise ConfigError(msg)
        if (dim * nbits) % 8:
            msg = f"dim * nbits must be a multiple of 8 to pack residuals into bytes, got {dim} * {nbits}"
            raise ConfigError(msg)
        if not 1 <= n_centroids <= n:
            msg = f"need at least n_centroids={n_centroids} sample vectors (and n_centroids >= 1), got {n}"
            raise ConfigError(msg)
        try:
            import faiss
        except ImportError as exc:
            msg = "training centroids needs FAISS: pip install faiss-cpu"
            raise MissingDependencyError(msg) from exc
        kmeans = faiss.Kmeans(dim, n_centroids, niter=niter, seed=seed, spherical=True, verbose=False)
        kmeans.train(sample)
        centroids = (kmeans.centroids / np.linalg.norm(kmeans.centroids, axis=1, keepdims=True)).astype(np.float32)
        residuals = (sample - centroids[_nearest(sample, centroids)]).ravel()
        levels = 1 << nbits
        cutoffs = np.quantile(residuals, np.arange(1, levels) / levels).astype(np.float32)
        weights = np.quantile(residuals, (np.arange(levels) + 0.5) / levels).astype(np.float32)
        return cls(centroids, cutoffs, weights, nbits)

    def assign(self, vectors: np.ndarray) -> np.ndarray:
        """(n,) int32 id of each vector's most similar centroid."""
        return _nearest(vectors, self.centroids)

    def encode(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Compress (n, dim) vectors into codes (n,) int32 and residuals (n, dim * nbits / 8) uint8."""
        vectors = np.asarray(vectors, dtype=np.float32)
        codes = self.assign(vectors)
        buckets = np.searchsorted(self.cutoffs, vectors - self.centroids[codes], side="right")  # (n, dim)
        return codes, _pack(buckets.astype(np.uint8), self.nbits)

    def decode(self, codes: np.ndarray, residuals: np.ndarray) -> np.ndarray:
        """(n, dim) float32 unit vectors rebuilt from codes and packed residuals."""
        buckets = _unpack(residuals, self.nbits, self.dim)
        vectors = self.centroids[codes] + self.weights[buckets]
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _nearest(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    scores = vectors.astype(np.float32) @ centroids.T  # (n, n_centroids)
    return scores.argmax(axis=1).astype(np.int32)


def _pack(buckets: np.ndarray, nbits: int) -> np.ndarray:
    """(n, dim) bucket ids < 2**nbits into (n, dim * nbits / 8) bytes, most significant bit first.

    >>> _pack(np.array([[3, 0, 1, 2]], dtype=np.uint8), 2).tolist()  # 11 00 01 10
    [[198]]
    """
    shifts = np.arange(nbits - 1, -1, -1, dtype=np.uint8)
    bits = (buckets[:, :, None] >> shifts) & 1  # (n, dim, nbits)
    return np.packbits(bits.reshape(len(buckets), -1), axis=1)


def _unpack(packed: np.ndarray, nbits: int, dim: int) -> np.ndarray:
    """Inverse of `_pack`: (n, dim) bucket ids as int64."""
    bits = np.unpackbits(packed, axis=1)[:, : dim * nbits].reshape(len(packed), dim, nbits)
    return bits.astype(np.int64) @ (1 << np.arange(nbits - 1, -1, -1))
