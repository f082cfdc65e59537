"""PLAID policy: when an index compresses, training its centroids, adding centroids when
documents drift, and writing compressed segments.

Every write to a PLAID index first stages its documents as exact segments (transaction.py),
then compresses them into one segment here: the first compressed write trains the codec on
every live document; later ones reuse it, adding centroids for tokens far from all of them.
An "auto" index stays exact until it holds `AUTO_PLAID_TOKENS` tokens; the write that
crosses it trains and converts the whole index. `compact` copies compressed tokens as they
are; `retrain` fits new centroids to the whole corpus and recompresses it.
"""

from __future__ import annotations

import ctypes
import logging
import math
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from colbert_retriever.config import PlaidConfig
from colbert_retriever.errors import EmptyIndexError
from colbert_retriever.stores.folder.codec import ResidualCodec, kmeans
from colbert_retriever.stores.folder.manifest import CodecEntry, Manifest, SegmentEntry
from colbert_retriever.stores.folder.segment import Segment, write_compressed_segment
from colbert_retriever.stores.folder.snapshot import Snapshot
from colbert_retriever.stores.protocol import Row

logger = logging.getLogger(__name__)

AUTO_PLAID_TOKENS = 1 << 19  # ~2,000 passages: where exact search passes ~50 ms a query on 2 cores
RETRAIN_GROWTH = 4  # retraining is advisable once the index holds this many times its training tokens
_CHUNK_TOKENS = 1 << 16  # tokens compressed at once
_DRIFT_SAMPLE = 1 << 16  # tokens of a write checked for drift
_ASSIGN_BUDGET = 1 << 21  # centroids * dim: multiply-adds to assign one token

Sources = Sequence[tuple[Segment, np.ndarray]]  # segments, and which of their rows to take


@dataclass(frozen=True)
class Rewrite:
    """What a compressed write produced.

    Attributes:
        segments: The new segments' entries.
        codec: The codec the index uses from now on.
        replaces_all: The new segments hold every live document: the old ones retire.
    """

    segments: list[SegmentEntry]
    codec: CodecEntry | None
    replaces_all: bool


def compresses(manifest: Manifest, added_tokens: int) -> bool:
    """Whether a write adding `added_tokens` is compressed: a PLAID index, or an auto index
    that is or will then be past `AUTO_PLAID_TOKENS`."""
    if manifest.codec is not None or manifest.index_type == "plaid":
        return True
    return manifest.index_type == "auto" and manifest.n_tokens + added_tokens >= AUTO_PLAID_TOKENS


def add(path: Path, snap: Snapshot, staged: Sequence[Segment], kept: Sources, folders: list[Path]) -> Rewrite:
    """Compress a write's staged exact segments into one segment with the index's codec
    (extended if they drift). Without a codec yet, train one on every live document (`kept`)
    and the staged ones together, which then replace all segments."""
    new = [(seg, np.arange(seg.n_rows)) for seg in staged]
    if snap.codec is None or snap.manifest.codec is None:
        return _rewrite_all(path, snap, [*kept, *new], folders, train=True)
    codec, entry = snap.codec, snap.manifest.codec
    extended = _extend_for_drift(codec, entry, staged)
    if extended is not codec:
        codec = extended
        entry = _save_codec(path, codec, folders, tokens=entry.tokens_at_training)
    lexical = snap.manifest.lexical
    segments = [_write_compressed(_new_folder(path, folders), new, codec, None, lexical=lexical)] if new else []
    return Rewrite(segments=segments, codec=entry, replaces_all=False)


def compact(path: Path, snap: Snapshot, kept: Sources, folders: list[Path]) -> Rewrite:
    """The live documents in one segment, their compressed tokens copied as they are."""
    return _rewrite_all(path, snap, kept, folders, train=False)


def merge(path: Path, snap: Snapshot, sources: Sources, folders: list[Path]) -> SegmentEntry:
    """`sources`' rows in one new segment, their compressed tokens copied as they are."""
    assert snap.codec is not None, "a compressed index has its codec"
    return _write_compressed(_new_folder(path, folders), sources, snap.codec, snap.codec, lexical=snap.manifest.lexical)


def retrain(path: Path, snap: Snapshot, kept: Sources, folders: list[Path]) -> Rewrite:
    """New centroids and codewords fitted to the live documents, which are recompressed."""
    return _rewrite_all(path, snap, kept, folders, train=True)


def _rewrite_all(path: Path, snap: Snapshot, sources: Sources, folders: list[Path], *, train: bool) -> Rewrite:
    codec, entry = snap.codec, snap.manifest.codec
    if train:
        settings = snap.manifest.plaid or PlaidConfig()
        codec = _train(sources, snap.codec, settings, snap.manifest.dim)
        entry = _save_codec(path, codec, folders, tokens=_count_tokens(sources))
    if codec is None or not any(len(rows) for _, rows in sources):
        return Rewrite(segments=[], codec=entry, replaces_all=True)
    folder = _new_folder(path, folders)
    segment = _write_compressed(folder, sources, codec, snap.codec, lexical=snap.manifest.lexical)
    return Rewrite(segments=[segment], codec=entry, replaces_all=True)


def _new_folder(path: Path, folders: list[Path], parent: str = "segments") -> Path:
    """A new folder name under `parent`, recorded in `folders` (removed if the write fails)."""
    folders.append(path / parent / uuid.uuid4().hex)
    return folders[-1]


def _save_codec(path: Path, codec: ResidualCodec, folders: list[Path], *, tokens: int) -> CodecEntry:
    return codec.save(_new_folder(path, folders, "codecs"), tokens_at_training=tokens)


def _count_tokens(sources: Sources) -> int:
    return sum(int((seg.offsets[rows + 1] - seg.offsets[rows]).sum()) for seg, rows in sources)


def _chunks(segment: Segment, rows: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """`rows` in runs of about `_CHUNK_TOKENS` tokens: (rows, their token indices)."""
    for chunk in segment.chunks(rows, _CHUNK_TOKENS):
        yield chunk, segment.tokens(chunk)[0]


def token_vectors(segment: Segment, tokens: np.ndarray, codec: ResidualCodec | None) -> np.ndarray:
    """(len(tokens), dim) float32 vectors of a segment, decompressed with `codec` if need be."""
    if segment.embeddings is not None:
        return np.asarray(segment.embeddings[tokens], dtype=np.float32)
    assert segment.compressed is not None, "a segment holds exact or compressed vectors"
    assert codec is not None, "a compressed segment needs its codec"
    return codec.decode(segment.compressed.codes[tokens], segment.compressed.residuals[tokens])


def _train(sources: Sources, source_codec: ResidualCodec | None, settings: PlaidConfig, dim: int) -> ResidualCodec:
    """A codec trained on a sample of whole documents: about 16 tokens per centroid (k-means
    is half the compression time: 32 cost SciFact 50 s more for no measurable gain), and
    at least 65,536 (or every token), which residual codewords need."""
    total = _count_tokens(sources)
    if total == 0:
        msg = "there are no documents to train the index's centroids on"
        raise EmptyIndexError(msg)
    release_freed_memory()
    n_centroids = min(settings.n_centroids or _auto_centroids(total, dim, settings.max_centroids), total)
    rng = np.random.default_rng(settings.seed)
    share = min(1.0, max(16 * n_centroids, 1 << 16) / total)
    sample: list[np.ndarray] = []
    for segment, rows in sources:
        picked = rows[rng.random(len(rows)) < share]
        sample.extend(token_vectors(segment, tokens, source_codec) for _, tokens in _chunks(segment, picked))
    sample_array = np.concatenate(sample) if sample else np.zeros((0, 0), np.float32)
    if len(sample_array) < n_centroids:  # the draw came out short: take everything
        sample_array = np.concatenate(
            [token_vectors(seg, tokens, source_codec) for seg, rows in sources for _, tokens in _chunks(seg, rows)]
        )
    logger.info("training %d centroids on %d of %d tokens", n_centroids, len(sample_array), total)
    return ResidualCodec.train(
        sample_array, n_centroids=n_centroids, nbits=settings.nbits, seed=settings.seed, niter=settings.kmeans_iters
    )


def release_freed_memory() -> bool:
    """Hand the C heap's free pages back to the system (glibc's `malloc_trim`; elsewhere
    nothing); whether it could. Encoding frees hundreds of MB of activations into the heap,
    which glibc keeps for reuse; training then allocates its sample and k-means beside them.
    Trimming first (~30 ms) brought a SciFact build's peak RSS from 1.6 to 1.25 GB."""
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None) if sys.platform == "linux" else None
    if trim is None:
        return False
    trim(0)
    return True


def _auto_centroids(tokens: int, dim: int, cap: int) -> int:
    """ColBERTv2's 16 * sqrt(tokens) as a power of two, capped (see `PlaidConfig.n_centroids`)."""
    wanted = max(1, min(16 * math.sqrt(tokens), cap, tokens / 32, _ASSIGN_BUDGET / dim))
    return 1 << int(math.log2(wanted))


def _extend_for_drift(codec: ResidualCodec, entry: CodecEntry, staged: Sequence[Segment]) -> ResidualCodec:
    """`codec`, or a copy with new centroids when this write's tokens are often far from all.

    Far: less similar to their nearest centroid than the training sample's 1st percentile.
    Checked on a sample of the write; when more than 2% of it is far, k-means over the far
    tokens adds centroids at the training density (tokens per centroid).
    """
    embeddings = [seg.embeddings for seg in staged if seg.embeddings is not None]
    total = sum(len(e) for e in embeddings)
    if total == 0:
        return codec
    share = min(1.0, _DRIFT_SAMPLE / total)
    rng = np.random.default_rng(total)
    sample = np.concatenate([np.asarray(e[rng.random(len(e)) < share], np.float32) for e in embeddings])
    if len(sample) == 0:
        return codec
    _, scores = codec.assign(sample)
    far = sample[scores < codec.outlier_score]
    if len(far) <= 0.02 * len(sample):
        return codec
    density = entry.tokens_at_training / entry.n_centroids
    n_new = min(len(far), max(1, round(len(far) / len(sample) * total / density)))
    logger.info("%d of %d sampled tokens are far from every centroid: %d new centroids", len(far), len(sample), n_new)
    return codec.with_centroids(kmeans(far, n_new, seed=0, niter=10))


def _write_compressed(
    folder: Path, sources: Sources, codec: ResidualCodec, source_codec: ResidualCodec | None, *, lexical: bool
) -> SegmentEntry:
    """One compressed segment holding `sources`' rows, in order (with a full-text index if
    `lexical`). Tokens already compressed with `codec` are copied; others are (decompressed
    and) compressed."""
    codes, residuals, norms, doclens = [], [], [], []
    stored: list[Row] = []
    cut: list[int] = []
    for segment, rows in sources:
        cut.extend(len(stored) + i for i in segment.cut_among(rows))
        for chunk, tokens in _chunks(segment, rows):
            if segment.compressed is not None and source_codec is codec:
                codes.append(segment.compressed.codes[tokens])
                residuals.append(segment.compressed.residuals[tokens])
                norms.append(segment.compressed.norms[tokens])
            else:
                chunk_codes, chunk_residuals = codec.encode(token_vectors(segment, tokens, source_codec))
                codes.append(chunk_codes)
                residuals.append(chunk_residuals)
                norms.append(codec.norms(chunk_codes, chunk_residuals))
            doclens.append(segment.offsets[chunk + 1] - segment.offsets[chunk])
            stored.extend(segment.documents.read(chunk.tolist()))
    return write_compressed_segment(
        folder,
        stored,
        np.concatenate(doclens),
        np.concatenate(codes),
        np.concatenate(residuals),
        np.concatenate(norms),
        len(codec.centroids),
        cut=cut,
        lexical=lexical,
    )
