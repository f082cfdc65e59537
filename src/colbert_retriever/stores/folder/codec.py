"""Residual compression: a token vector is stored as the id of its nearest centroid plus its
residual in dim * nbits / 8 bytes. With dim 128 and nbits 2 a token costs 4 + 32 = 36 bytes
instead of 256 in float16.

Centroids come from spherical k-means over a sample of token vectors, as in ColBERTv2
(Santhanam et al., 2022, section 3.2). The residual (vector - centroid) is cut into
sub-vectors of 8 / nbits dimensions (4 at nbits 2), and each is stored as one byte: the id
of the nearest of 256 codewords learned for its position (product quantisation, Jegou et
al., 2011; FAISS trains and assigns them). ColBERTv2 instead quantises each dimension on its
own into 2**nbits buckets (cutoffs at the quantiles i / 2**nbits of all residual values,
each decoding to the quantile at its middle); at the same size, codewords lose half as much
nDCG@10 to exact search (SciFact, benchmarks/README.md). At nbits 4 buckets already lose
next to nothing and stay. Codecs written with buckets (`buckets.npy`) are still read and
still compress new documents their way.

Either way a byte at position j decodes to 8 / nbits residual values, `codebooks[j, byte]`,
so search and `decode` look residuals up one way for both.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from colbert_retriever.atomic import fsync_dir, write_npy
from colbert_retriever.errors import ConfigError, IndexCorruptError, MissingDependencyError
from colbert_retriever.stores.folder.manifest import CodecEntry
from colbert_retriever.stores.folder.segment import check_files

NBITS = (1, 2, 4)
CODEWORDS = "codebooks.npy"
BUCKETS = "buckets.npy"
_ASSIGN_ROWS = 1 << 16
_IVF_CENTROIDS = 1 << 14  # from this many centroids on, tokens find theirs through an IVF
_IVF_LIST_SIZE = 64  # centroids per IVF list
_IVF_PROBED_SHARE = 8  # a token is compared with the centroids of 1 / 8 of the lists
_QUANTILE_VALUES = 1 << 20
_MIN_CODEWORD_SAMPLE = 39 * 256  # FAISS's least sample for 256 codewords; smaller samples get buckets
_RESIDUAL_SAMPLE = 256 * 256  # FAISS's largest sample for 256 codewords (it subsamples beyond)


@dataclass(frozen=True)
class ResidualCodec:
    """Centroids and the residual quantiser learned from a sample of token vectors.

    Attributes:
        centroids: (n_centroids, dim) float32, unit norm (to float16 precision: stored in
            float16 where every value is one, as `kmeans` makes them; float32 otherwise).
        codebooks: (dim * nbits / 8, 256, 8 / nbits) float32: what byte value b at byte
            position j of a residual decodes to, `codebooks[j, b]`.
        nbits: Bits per dimension of a residual (1, 2 or 4).
        outlier_score: Similarity to its nearest centroid below which a token counts as far
            from every centroid (the 1st percentile of the training sample's).
        buckets: Only for ColBERTv2's per-dimension quantiser: (2**nbits - 1,) ascending
            cutoffs and (2**nbits,) values, concatenated; None for codewords.
    """

    centroids: np.ndarray
    codebooks: np.ndarray
    nbits: int
    outlier_score: float = -1.0
    buckets: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    @classmethod
    def train(
        cls,
        sample: np.ndarray,
        *,
        n_centroids: int,
        nbits: int = 2,
        seed: int = 0,
        niter: int = 20,
        codewords: bool = True,
    ) -> ResidualCodec:
        """Learn centroids (spherical k-means, FAISS) and the residual quantiser from `sample`.

        Args:
            sample: (n, dim) float32 unit vectors; n >= n_centroids.
            n_centroids: Number of centroids.
            nbits: Bits per residual dimension: 1, 2 or 4; dim * nbits must be a multiple of 8.
            seed: k-means seed (same seed and sample, same codec).
            niter: k-means iterations.
            codewords: Product-quantised residuals (the default); False: ColBERTv2's
                per-dimension buckets, which nbits 4 (where buckets already lose next to
                nothing, and FAISS trains 2-dimensional codewords slowly) and samples under
                ~10,000 tokens get anyway.
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
        rng = np.random.default_rng(seed)
        if n > _RESIDUAL_SAMPLE:  # as many as FAISS trains codewords on: assigning more costs ~20 s
            sample = sample[rng.choice(n, _RESIDUAL_SAMPLE, replace=False)]
        codes, scores = _nearest(sample, _filled_index(centroids))
        residuals = sample - centroids[codes]
        outlier_score = float(np.quantile(scores, 0.01))
        if codewords and nbits < 4 and n >= _MIN_CODEWORD_SAMPLE:
            return cls(centroids, _train_codebooks(residuals, nbits, seed), nbits, outlier_score)
        values = residuals.ravel()
        if len(values) > _QUANTILE_VALUES:  # quantiles of a million values are as good, and 100x cheaper
            values = rng.choice(values, _QUANTILE_VALUES, replace=False)
        levels = 1 << nbits
        cutoffs = np.quantile(values, np.arange(1, levels) / levels)
        weights = np.quantile(values, (np.arange(levels) + 0.5) / levels)
        return cls.from_buckets(centroids, np.concatenate([cutoffs, weights]).astype(np.float32), nbits, outlier_score)

    @classmethod
    def from_buckets(
        cls, centroids: np.ndarray, buckets: np.ndarray, nbits: int, outlier_score: float
    ) -> ResidualCodec:
        """A codec of ColBERTv2's per-dimension buckets (cutoffs then values), as codebooks."""
        per_byte, levels = 8 // nbits, 1 << nbits
        table = buckets[levels - 1 :][_unpack(np.arange(256, dtype=np.uint8)[:, None], nbits, per_byte)]
        n_bytes = centroids.shape[1] * nbits // 8
        codebooks = np.broadcast_to(table, (n_bytes, *table.shape)).astype(np.float32)
        return cls(centroids, codebooks, nbits, outlier_score, buckets)

    def assign(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n,) int32 id of each vector's most similar centroid, and (n,) float32 that similarity."""
        return _nearest(vectors, self._centroid_index)

    def encode(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Compress (n, dim) vectors into codes (n,) int32 and residuals (n, dim * nbits / 8) uint8."""
        vectors = np.asarray(vectors, dtype=np.float32)
        codes, _ = self.assign(vectors)
        residuals = np.ascontiguousarray(vectors - self.centroids[codes])
        if self.buckets is None:
            return codes, self._quantizer.compute_codes(residuals)
        cutoffs = self.buckets[: (1 << self.nbits) - 1]
        return codes, _pack(np.searchsorted(cutoffs, residuals, side="right").astype(np.uint8), self.nbits)

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

        One `np.take` of a table (byte value and position -> the 8 / nbits values it
        stands for, in `dtype`), ~8x faster than looking values up one by one; a float32
        table saves converting float16 afterwards, which costs more than the lookup where
        half is emulated.
        """
        positions = np.arange(residuals.shape[1], dtype=np.intp) << 8
        flat = np.take(self._tables[np.dtype(dtype)], residuals + positions)
        return flat.view(dtype).reshape(len(residuals), self.dim)

    def _sum(self, codes: np.ndarray, residuals: np.ndarray) -> np.ndarray:
        vectors = np.take(self.centroids, codes, axis=0)
        vectors += self.residual_values(residuals, np.float32)
        return vectors

    @cached_property
    def _tables(self) -> dict[np.dtype, np.ndarray]:
        """For float16 and float32: the codebooks as one `np.take` table, (position, byte)
        flattened, each entry the 8 / nbits values; float16 values in both (the stored norms
        were computed from them)."""
        values = self.codebooks.astype(np.float16)
        tables = {}
        for kind in (np.dtype(np.float16), np.dtype(np.float32)):
            entry = f"V{kind.itemsize * values.shape[2]}"
            tables[kind] = np.ascontiguousarray(values, dtype=kind).view(entry).reshape(-1)
        return tables

    @cached_property
    def _centroid_index(self) -> Any:
        """`_filled_index` of the centroids, built once per codec rather than once per call."""
        return _filled_index(self.centroids)

    @cached_property
    def _quantizer(self) -> Any:
        """FAISS's product quantiser holding the codebooks, which assigns residuals to codewords."""
        import faiss

        n_bytes = self.codebooks.shape[0]
        quantizer = faiss.ProductQuantizer(self.dim, n_bytes, 8)
        faiss.copy_array_to_vector(np.ascontiguousarray(self.codebooks, dtype=np.float32).ravel(), quantizer.centroids)
        return quantizer

    def with_centroids(self, extra: np.ndarray) -> ResidualCodec:
        """This codec with `extra` (m, dim) unit centroids appended; existing ids keep their meaning."""
        return dataclasses.replace(self, centroids=np.concatenate([self.centroids, extra.astype(np.float32)]))

    def save(self, folder: Path, *, tokens_at_training: int) -> CodecEntry:
        """Write the codec into a new folder; return its manifest entry."""
        folder.mkdir(parents=True)
        half = self.centroids.astype(np.float16)
        exact = np.array_equal(half, self.centroids)  # not in codecs trained before format 4
        files = {"centroids.npy": write_npy(folder / "centroids.npy", half if exact else self.centroids)}
        if self.buckets is None:
            files[CODEWORDS] = write_npy(folder / CODEWORDS, np.ascontiguousarray(self.codebooks, dtype=np.float32))
        else:
            files[BUCKETS] = write_npy(folder / BUCKETS, self.buckets)
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
        quantizer = next((name for name in (CODEWORDS, BUCKETS) if name in entry.files), None)
        if quantizer is None or set(entry.files) != {"centroids.npy", quantizer}:
            msg = f"codec {folder}: its manifest entry lists unexpected files {sorted(entry.files)}"
            raise IndexCorruptError(msg)
        if entry.nbits not in NBITS:
            msg = f"the codec in {folder} has nbits={entry.nbits}; expected one of {NBITS}"
            raise IndexCorruptError(msg)
        check_files(folder, entry.files, verify=verify)
        try:
            centroids = np.load(folder / "centroids.npy", allow_pickle=False)
            table = np.load(folder / quantizer, allow_pickle=False)
        except (OSError, ValueError) as exc:
            msg = f"cannot read the codec in {folder}: {exc}"
            raise IndexCorruptError(msg) from exc
        per_byte = 8 // entry.nbits
        expected = (entry.dim // per_byte, 256, per_byte) if quantizer == CODEWORDS else (2 * (1 << entry.nbits) - 1,)
        if (
            table.shape != expected
            or centroids.shape != (entry.n_centroids, entry.dim)
            or centroids.dtype not in (np.float16, np.float32)
        ):
            msg = f"the codec in {folder} does not match its manifest entry (centroids or {quantizer} differ)"
            raise IndexCorruptError(msg)
        centroids = centroids.astype(np.float32)
        if quantizer == BUCKETS:
            return cls.from_buckets(centroids, table, entry.nbits, entry.outlier_score)
        return cls(centroids, table, entry.nbits, entry.outlier_score)


def kmeans(sample: np.ndarray, n_centroids: int, *, seed: int, niter: int) -> np.ndarray:
    """(n_centroids, dim) float32 unit centroids of spherical k-means over `sample` (FAISS),
    rounded to float16 values so that a codec stores them in half the bytes, exactly.

    Each iteration assigns the sample to the centroids through `_empty_index`: with many
    centroids an IVF, its lists learned once from the sample (where the centroids lie)."""
    try:
        import faiss
    except ImportError as exc:
        msg = "training centroids needs FAISS: pip install faiss-cpu"
        raise MissingDependencyError(msg) from exc
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    dim = sample.shape[1]
    clustering = faiss.Clustering(dim, n_centroids)
    clustering.niter, clustering.seed, clustering.spherical = niter, seed, True
    clustering.min_points_per_centroid, clustering.verbose = 1, False
    clustering.train(sample, _empty_index(dim, n_centroids, train_on=sample))
    centroids = faiss.vector_to_array(clustering.centroids).reshape(n_centroids, dim)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    return centroids.astype(np.float16).astype(np.float32)  # stored in float16: residuals are taken from these


def _train_codebooks(residuals: np.ndarray, nbits: int, seed: int) -> np.ndarray:
    """(dim * nbits / 8, 256, 8 / nbits) codewords of each residual sub-vector (FAISS PQ)."""
    import faiss

    dim = residuals.shape[1]
    n_bytes = dim * nbits // 8
    quantizer = faiss.ProductQuantizer(dim, n_bytes, 8)
    quantizer.cp.seed = seed
    quantizer.train(np.ascontiguousarray(residuals, dtype=np.float32))
    return faiss.vector_to_array(quantizer.centroids).reshape(n_bytes, 256, dim // n_bytes)


def _nearest(vectors: np.ndarray, index: Any) -> tuple[np.ndarray, np.ndarray]:
    """Best centroid id and similarity per vector, searched in `index` (`_filled_index`)."""
    codes = np.empty(len(vectors), dtype=np.int32)
    scores = np.empty(len(vectors), dtype=np.float32)
    for start in range(0, len(vectors), _ASSIGN_ROWS):
        block = np.ascontiguousarray(vectors[start : start + _ASSIGN_ROWS], dtype=np.float32)
        best_scores, best_ids = index.search(block, 1)
        codes[start : start + len(block)] = best_ids[:, 0]
        scores[start : start + len(block)] = best_scores[:, 0]
    return codes, scores


def _filled_index(centroids: np.ndarray) -> Any:
    """`_empty_index` holding `centroids`, its IVF lists (if any) learned from them."""
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    index = _empty_index(centroids.shape[1], len(centroids), train_on=centroids)
    index.add(centroids)
    return index


def _empty_index(dim: int, n_centroids: int, *, train_on: np.ndarray) -> Any:
    """An empty FAISS inner-product index to find tokens' nearest of `n_centroids` centroids.

    Below `_IVF_CENTROIDS` it compares a token with every centroid (`IndexFlatIP`). From there
    on an IVF: the centroids fall into n_centroids / 64 lists (k-means over `train_on`) and a
    token is compared with those of its 1/8 nearest lists. Exact assignment had been most of
    a build's time after encoding; at SciFact's 16,384 centroids k-means and assignment
    through the IVF take 1.6x less time for 0.7% more reconstruction error (probing 1/16:
    2.4x less, 1.7% more; benchmarks/README.md).
    """
    import faiss

    if n_centroids < _IVF_CENTROIDS:
        return faiss.IndexFlatIP(dim)
    n_lists = n_centroids // _IVF_LIST_SIZE
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, n_lists, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = 0
    index.train(np.ascontiguousarray(train_on, dtype=np.float32))
    index.nprobe = n_lists // _IVF_PROBED_SHARE
    return index


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
