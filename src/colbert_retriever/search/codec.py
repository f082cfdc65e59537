"""ColBERTv2 residual compression: a token vector is stored as the id of its nearest centroid
plus its residual quantised to `nbits` per dimension. With dim 128 and nbits 2 a token costs
4 + 32 = 36 bytes instead of 256 in float16.

Following ColBERTv2 (Santhanam et al., 2022, section 3.2): centroids come from spherical
k-means over a sample of token vectors; the bucket cutoffs are the quantiles of all residual
values of the sample at i / 2**nbits, and each bucket decodes to the quantile at its middle.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from colbert_retriever.errors import ConfigError, IndexCorruptError, MissingDependencyError
from colbert_retriever.storage.atomic import fsync_dir, write_npy
from colbert_retriever.storage.manifest import CodecEntry
from colbert_retriever.storage.segment import check_files

NBITS = (1, 2, 4)
FILES = ("centroids.npy", "buckets.npy")
_ASSIGN_ROWS = 1 << 16
_QUANTILE_VALUES = 1 << 20


@dataclass(frozen=True)
class ResidualCodec:
    """Centroids and residual buckets learned from a sample of token vectors.

    Attributes:
        centroids: (n_centroids, dim) float32, unit norm.
        cutoffs: (2**nbits - 1,) float32 ascending bucket boundaries of residual values.
        weights: (2**nbits,) float32 value each bucket decodes to.
        nbits: Bits per dimension of a residual (1, 2 or 4).
        outlier_score: Similarity to its nearest centroid below which a token counts as far
            from every centroid (the 1st percentile of the training sample's).
    """

    centroids: np.ndarray
    cutoffs: np.ndarray
    weights: np.ndarray
    nbits: int
    outlier_score: float = -1.0

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
        centroids = kmeans(sample, n_centroids, seed=seed, niter=niter)
        codes, scores = _nearest(sample, centroids)
        residuals = (sample - centroids[codes]).ravel()
        if len(residuals) > _QUANTILE_VALUES:  # quantiles of a million values are as good, and 100x cheaper
            residuals = np.random.default_rng(seed).choice(residuals, _QUANTILE_VALUES, replace=False)
        levels = 1 << nbits
        cutoffs = np.quantile(residuals, np.arange(1, levels) / levels).astype(np.float32)
        weights = np.quantile(residuals, (np.arange(levels) + 0.5) / levels).astype(np.float32)
        return cls(centroids, cutoffs, weights, nbits, float(np.quantile(scores, 0.01)))

    def assign(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n,) int32 id of each vector's most similar centroid, and (n,) float32 that similarity."""
        return _nearest(vectors, self.centroids)

    def encode(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Compress (n, dim) vectors into codes (n,) int32 and residuals (n, dim * nbits / 8) uint8."""
        vectors = np.asarray(vectors, dtype=np.float32)
        codes, _ = self.assign(vectors)
        buckets = np.searchsorted(self.cutoffs, vectors - self.centroids[codes], side="right")  # (n, dim)
        return codes, _pack(buckets.astype(np.uint8), self.nbits)

    def decode(self, codes: np.ndarray, residuals: np.ndarray) -> np.ndarray:
        """(n, dim) float32 unit vectors rebuilt from codes and packed residuals."""
        vectors = self._sum(codes, residuals)
        return vectors / np.sqrt(np.einsum("ij,ij->i", vectors, vectors))[:, None]

    def norms(self, codes: np.ndarray, residuals: np.ndarray) -> np.ndarray:
        """(n,) float32 length of centroid + residual, which `decode` divides by. Stored per
        token, it lets search score q . decode(t) as (q . centroid + q . residual) / norm
        without rebuilding the vectors."""
        vectors = self._sum(codes, residuals)
        return np.sqrt(np.einsum("ij,ij->i", vectors, vectors))

    def residual_values(self, residuals: np.ndarray, dtype: type[np.floating] = np.float16) -> np.ndarray:
        """(n, dim) residual values of (n, dim * nbits / 8) packed residuals, float16 or float32.

        One `np.take` of a 256-entry table (byte -> the 8 / nbits values it packs, in `dtype`),
        ~8x faster than looking values up one by one; a float32 table saves converting
        float16 afterwards, which costs more than the lookup where half is emulated.
        """
        return np.take(self._tables[np.dtype(dtype)], residuals).view(dtype).reshape(len(residuals), self.dim)

    def _sum(self, codes: np.ndarray, residuals: np.ndarray) -> np.ndarray:
        vectors = np.take(self.centroids, codes, axis=0)
        vectors += self.residual_values(residuals, np.float32)
        return vectors

    @cached_property
    def _tables(self) -> dict[np.dtype, np.ndarray]:
        """For float16 and float32: each byte -> the 8 / nbits values it packs (`np.take` tables),
        the float16 values in both."""
        per_byte = 8 // self.nbits
        # float16 values in both: the stored norms were computed from them
        values = self.weights[_unpack(np.arange(256, dtype=np.uint8)[:, None], self.nbits, per_byte)].astype(np.float16)
        tables = {}
        for kind in (np.dtype(np.float16), np.dtype(np.float32)):
            tables[kind] = np.ascontiguousarray(values, dtype=kind).view(f"V{kind.itemsize * per_byte}").ravel()
        return tables

    def with_centroids(self, extra: np.ndarray) -> ResidualCodec:
        """This codec with `extra` (m, dim) unit centroids appended; existing ids keep their meaning."""
        return dataclasses.replace(self, centroids=np.concatenate([self.centroids, extra.astype(np.float32)]))

    def save(self, folder: Path, *, tokens_at_training: int) -> CodecEntry:
        """Write the codec into a new folder; return its manifest entry."""
        folder.mkdir(parents=True)
        buckets = np.concatenate([self.cutoffs, self.weights])  # (2 * 2**nbits - 1,)
        files = {
            "centroids.npy": write_npy(folder / "centroids.npy", self.centroids),
            "buckets.npy": write_npy(folder / "buckets.npy", buckets),
        }
        fsync_dir(folder)
        fsync_dir(folder.parent)
        return CodecEntry(
            name=folder.name,
            nbits=self.nbits,
            dim=self.dim,
            n_centroids=len(self.centroids),
            outlier_score=self.outlier_score,
            tokens_at_training=tokens_at_training,
            files=files,
        )

    @classmethod
    def load(cls, folder: Path, entry: CodecEntry, *, verify: bool) -> ResidualCodec:
        """Read a codec saved by `save`, as described by its manifest `entry`."""
        if set(entry.files) != set(FILES):
            msg = f"codec {folder}: its manifest entry lists unexpected files {sorted(entry.files)}"
            raise IndexCorruptError(msg)
        check_files(folder, entry.files, verify=verify)
        try:
            centroids = np.load(folder / "centroids.npy", allow_pickle=False)
            buckets = np.load(folder / "buckets.npy", allow_pickle=False)
        except (OSError, ValueError) as exc:
            msg = f"cannot read the codec in {folder}: {exc}"
            raise IndexCorruptError(msg) from exc
        if entry.nbits not in NBITS:
            msg = f"the codec in {folder} has nbits={entry.nbits}; expected one of {NBITS}"
            raise IndexCorruptError(msg)
        levels = 1 << entry.nbits
        if buckets.shape != (2 * levels - 1,) or centroids.shape != (entry.n_centroids, entry.dim):
            msg = f"the codec in {folder} does not match its manifest entry (centroids or buckets differ)"
            raise IndexCorruptError(msg)
        return cls(centroids, buckets[: levels - 1], buckets[levels - 1 :], entry.nbits, entry.outlier_score)


def kmeans(sample: np.ndarray, n_centroids: int, *, seed: int, niter: int) -> np.ndarray:
    """(n_centroids, dim) float32 unit centroids of spherical k-means over `sample` (FAISS)."""
    try:
        import faiss
    except ImportError as exc:
        msg = "training centroids needs FAISS: pip install faiss-cpu"
        raise MissingDependencyError(msg) from exc
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    km = faiss.Kmeans(
        sample.shape[1], n_centroids, niter=niter, seed=seed, spherical=True, verbose=False, min_points_per_centroid=1
    )
    km.train(sample)
    centroids = np.asarray(km.centroids, dtype=np.float32)
    return centroids / np.linalg.norm(centroids, axis=1, keepdims=True)


def _nearest(vectors: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best centroid id and similarity per vector: FAISS's blocked inner-product search."""
    import faiss

    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    codes = np.empty(len(vectors), dtype=np.int32)
    scores = np.empty(len(vectors), dtype=np.float32)
    for start in range(0, len(vectors), _ASSIGN_ROWS):
        block = np.ascontiguousarray(vectors[start : start + _ASSIGN_ROWS], dtype=np.float32)
        best_scores, best_ids = index.search(block, 1)
        codes[start : start + len(block)] = best_ids[:, 0]
        scores[start : start + len(block)] = best_scores[:, 0]
    return codes, scores


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
