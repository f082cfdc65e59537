"""The on-disk index: documents, their token vectors, and atomic add / delete / upsert.

Layout of an index folder::

    manifest.json          the commit point (see storage/manifest.py)
    write.lock             inter-process writer lock
    segments/<name>/       write-once segments (see storage/segment.py)
    codecs/<name>/         PLAID index: centroids and residual buckets (see search/codec.py)

Readers load the manifest once and hold that snapshot; writers take the lock, write new
segments beside the old ones, then commit a new manifest with one rename. Searching is
thread-safe and runs while another thread or process writes.

An exact index stores float16 vectors and searches them all. A PLAID index stores each token
as a centroid id plus an nbits residual and searches in PLAID's stages (search/plaid.py).
Every write to it first stages its documents as exact segments, then compresses them into one
segment: the first write trains the codec on everything; later ones reuse it, adding
centroids for tokens far from all of them (drift). An "auto" index stays exact until it holds
`AUTO_PLAID_TOKENS` tokens, then the write that crosses it converts the whole index.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colbert_retriever import __version__
from colbert_retriever.config import IndexConfig, IndexType, PlaidConfig, SearchConfig
from colbert_retriever.errors import (
    ColbertRetrieverError,
    ConfigError,
    DimensionMismatchError,
    DocumentNotFoundError,
    DuplicateIdError,
    EmptyIndexError,
    IndexExistsError,
    IndexNotFoundError,
    IndexWriteError,
)
from colbert_retriever.pooling import pool_tokens
from colbert_retriever.results import Document, Hit
from colbert_retriever.search.codec import ResidualCodec, kmeans
from colbert_retriever.search.exact import exact_search
from colbert_retriever.search.plaid import PlaidParams, plaid_search
from colbert_retriever.storage import DocumentBatch, Filter, check_documents
from colbert_retriever.storage.atomic import writer_lock
from colbert_retriever.storage.manifest import (
    FORMAT_VERSION,
    MANIFEST,
    collect_garbage,
    is_committed,
    next_manifest,
    read_manifest,
    write_manifest,
)
from colbert_retriever.storage.segment import (
    Segment,
    check_file,
    deleted_mask,
    load_segment,
    write_compressed_segment,
    write_segment,
)

logger = logging.getLogger(__name__)

INDEX_TYPES = ("exact", "plaid", "auto")
AUTO_PLAID_TOKENS = 1 << 19  # ~2,000 passages: where exact search passes ~50 ms a query on 2 cores
_CHUNK_TOKENS = 1 << 16  # tokens compressed at once
_DRIFT_SAMPLE = 1 << 16  # tokens of a write checked for drift
_ASSIGN_BUDGET = 1 << 21  # centroids * dim: multiply-adds to assign one token
_RETRAIN_GROWTH = 4  # retraining is advisable once the index holds this many times its training tokens


@dataclass(frozen=True)
class _Snapshot:
    """One committed state: what a search sees from start to end."""

    manifest: dict[str, Any]
    segments: tuple[Segment, ...]
    locations: dict[str, tuple[int, int]]  # doc_id -> (segment number, row)
    bases: np.ndarray  # (n_segments + 1,) int64: first position of each segment
    codec: ResidualCodec | None  # a PLAID index's, once trained

    @property
    def generation(self) -> int:
        return int(self.manifest["generation"])


@dataclass(frozen=True)
class IndexInfo:
    """What `colbert-retriever info` shows about an index.

    Attributes:
        documents: Live documents.
        tokens: Token vectors of the live documents.
        bytes: Size on disk of every file the manifest lists, the manifest included.
        deleted: Tombstoned rows still on disk (`Index.compact` drops them).
        centroids: PLAID index: centroids of its codec (0 before the first write, and for
            an exact index).
        tokens_at_training: PLAID index: tokens the codec was trained on; retraining is
            advisable once `tokens` is several times this.
    """

    path: str
    index_type: str
    format_version: int
    library_version: str
    documents: int
    tokens: int
    bytes: int
    dim: int
    dtype: str
    segments: int
    deleted: int
    model: dict[str, Any]
    nbits: int | None = None
    centroids: int = 0
    tokens_at_training: int = 0
    pool_factor: int = 1


class Index:
    """A persistent multi-vector index searched by exact MaxSim or, compressed, by PLAID.

    Use `Index.create(path, model=..., dim=...)` or `Index.open(path)`; `ColBERT` wraps it
    with an encoder. Implements `colbert_retriever.storage.Store`.
    """

    def __init__(self, path: Path, snapshot: _Snapshot, config: IndexConfig, search_config: SearchConfig) -> None:
        self.path = path
        self.config = config
        self.search_config = search_config
        self._snapshot = snapshot
        self._write_mutex = threading.Lock()

    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        model: dict[str, Any],
        dim: int,
        index_type: IndexType = "auto",
        plaid: PlaidConfig | None = None,
        pool_factor: int = 1,
        exist_ok: bool = False,
        config: IndexConfig | None = None,
        search_config: SearchConfig | None = None,
    ) -> Index:
        """Create an empty index in `path` (a new or empty folder).

        Args:
            model: The encoder's fingerprint (`Encoder.fingerprint.to_dict()`).
            dim: Vector size.
            index_type: "exact" (float16 vectors, every token scored), "plaid" (compressed,
                PLAID search) or "auto" (exact until `AUTO_PLAID_TOKENS` tokens, then plaid).
            plaid: How a plaid or auto index compresses (default `PlaidConfig()`).
            pool_factor: Keep ~1 / pool_factor of each document's token vectors, merging
                similar ones (see pooling.py); 1 keeps them all.
            exist_ok: Open an existing index at `path` instead of failing.

        Raises:
            IndexExistsError: `path` already holds an index and `exist_ok` is False.
            ConfigError: `path` is a file or a folder with other content.
        """
        path = Path(path)
        if index_type not in INDEX_TYPES:
            msg = f"index_type must be one of {INDEX_TYPES}, got {index_type!r}"
            raise ConfigError(msg)
        plaid = plaid or PlaidConfig()
        if isinstance(pool_factor, bool) or not isinstance(pool_factor, int) or pool_factor < 1:
            msg = f"pool_factor must be a positive integer, got {pool_factor!r}"
            raise ConfigError(msg)
        if index_type != "exact" and (dim * plaid.nbits) % 8:
            msg = f"dim * nbits must be a multiple of 8 to pack residuals, got {dim} * {plaid.nbits}"
            raise ConfigError(msg)
        if (path / MANIFEST).exists():
            if not exist_ok:
                msg = f"an index already exists at {path}; open it, or pass exist_ok=True"
                raise IndexExistsError(msg)
            return cls.open(path, config=config, search_config=search_config)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            msg = f"{path} exists and is not an empty folder; choose a new path for the index"
            raise ConfigError(msg)
        (path / "segments").mkdir(parents=True, exist_ok=True)
        manifest = {
            "format_version": FORMAT_VERSION,
            "library_version": __version__,
            "index_type": index_type,
            "plaid": dataclasses.asdict(plaid) if index_type != "exact" else None,
            "codec": None,
            "pool_factor": pool_factor,
            "generation": 0,
            "model": model,
            "dim": int(dim),
            "dtype": "float16",
            "n_documents": 0,
            "n_tokens": 0,
            "segments": [],
            "retired": [],
        }
        with writer_lock(path, (config or IndexConfig()).lock_timeout):
            write_manifest(path, manifest)
        return cls.open(path, config=config, search_config=search_config)

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        verify: bool = True,
        config: IndexConfig | None = None,
        search_config: SearchConfig | None = None,
    ) -> Index:
        """Open the index at `path`, checking every file's size (and sha256 if `verify`).

        Raises:
            IndexNotFoundError: no index at `path`.
            IndexCorruptError: a file is missing, truncated or fails its checksum.
            IndexVersionError: the index format is not one this version reads.
        """
        path = Path(path)
        if not path.is_dir():
            msg = f"no index at {path} (not a folder)"
            raise IndexNotFoundError(msg)
        snapshot = _load_snapshot(path, read_manifest(path), previous=None, verify=verify)
        return cls(path, snapshot, config or IndexConfig(), search_config or SearchConfig())

    @property
    def model(self) -> dict[str, Any]:
        """Fingerprint of the encoder the index was built with."""
        return dict(self._snapshot.manifest["model"])

    @property
    def dim(self) -> int:
        return int(self._snapshot.manifest["dim"])

    @property
    def n_tokens(self) -> int:
        """Token vectors of the live documents."""
        return int(self._snapshot.manifest["n_tokens"])

    def __len__(self) -> int:
        return len(self._snapshot.locations)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._snapshot.locations

    def doc_ids(self) -> list[str]:
        """Ids of all live documents, in storage order."""
        snap = self._snapshot
        return [seg.doc_ids[row] for seg in snap.segments for row in seg.live_rows]

    def refresh(self) -> None:
        """Load the latest committed state, e.g. after another process wrote."""
        manifest = read_manifest(self.path)
        if manifest["generation"] != self._snapshot.generation:
            self._snapshot = _load_snapshot(self.path, manifest, previous=self._snapshot, verify=True)

    def info(self) -> IndexInfo:
        """Counts, size on disk, format and model of the current state."""
        manifest = self._snapshot.manifest
        codec = manifest.get("codec") or {}
        entries = [*manifest["segments"], codec] if codec else manifest["segments"]
        files = [f["bytes"] for entry in entries for f in entry["files"].values()]
        return IndexInfo(
            path=str(self.path),
            index_type=manifest["index_type"],
            format_version=manifest["format_version"],
            library_version=manifest["library_version"],
            documents=len(self),
            tokens=self.n_tokens,
            bytes=sum(files) + (self.path / MANIFEST).stat().st_size,
            dim=self.dim,
            dtype=manifest["dtype"],
            segments=len(manifest["segments"]),
            deleted=sum(len(entry["deleted"]) for entry in manifest["segments"]),
            model=self.model,
            nbits=(manifest.get("plaid") or {}).get("nbits"),
            centroids=codec.get("n_centroids", 0),
            tokens_at_training=codec.get("tokens_at_training", 0),
            pool_factor=manifest.get("pool_factor", 1),
        )

    def verify(self) -> None:
        """Re-read every file of the current state and check its sha256.

        Raises:
            IndexCorruptError: naming the first file that is missing, truncated or altered.
        """
        manifest = self._snapshot.manifest
        folders = [("segments", entry) for entry in manifest["segments"]]
        if manifest.get("codec"):
            folders.append(("codecs", manifest["codec"]))
        for parent, entry in folders:
            for name, expected in entry["files"].items():
                check_file(self.path / parent / entry["name"] / name, expected, verify=True)

    def get(self, doc_ids: Sequence[str]) -> list[Document]:
        """The stored documents for `doc_ids`, in the same order.

        Raises:
            DocumentNotFoundError: naming the ids that are not in the index.
        """
        snap = self._snapshot
        _check_ids(doc_ids)
        missing = [d for d in doc_ids if d not in snap.locations]
        if missing:
            msg = f"{len(missing)} id(s) not in the index: {missing[:5]}"
            raise DocumentNotFoundError(msg)
        out = []
        for doc_id in doc_ids:
            seg_no, row = snap.locations[doc_id]
            segment = snap.segments[seg_no]
            out.append(Document(doc_id=doc_id, text=segment.texts[row], metadata=segment.metadata[row]))
        return out

    def write(self, batches: Iterable[DocumentBatch], *, delete: Sequence[str] = (), upsert: bool = False) -> None:
        """Delete `delete`, then add `batches`, as one atomic commit.

        `batches` may be any iterable (e.g. a generator that encodes as it goes): each batch
        becomes a segment on disk (in a PLAID index, the write's batches are then compressed
        into one), and nothing is visible until all of it is written and the manifest is
        replaced. Any error, or a kill, leaves the previous state.

        Args:
            batches: Documents with their vectors.
            delete: Ids to remove (all must exist).
            upsert: An added id that already exists replaces the stored document; without
                it, such an id is a `DuplicateIdError`.
        """
        _check_ids(delete)
        self._locked(self._write_locked, batches, delete, upsert=upsert, pool=True)

    def _locked(self, method: Any, *args: Any, **kwargs: Any) -> None:
        try:
            with self._write_mutex, writer_lock(self.path, self.config.lock_timeout):
                method(*args, **kwargs)
        except ColbertRetrieverError:
            raise
        except OSError as exc:
            msg = f"cannot write to the index at {self.path}: {exc}; it keeps its previous state"
            raise IndexWriteError(msg) from exc

    def _write_locked(
        self,
        batches: Iterable[DocumentBatch],
        delete: Sequence[str],
        *,
        upsert: bool,
        pool: bool = False,
        rewrite: str | None = None,
    ) -> None:
        """The write itself, under the locks. `pool`: pool new vectors by the index's
        pool_factor (new documents; not stored ones being rewritten)."""
        manifest = read_manifest(self.path)
        snap = self._snapshot
        if manifest["generation"] != snap.generation:  # another process wrote since we loaded
            snap = _load_snapshot(self.path, manifest, previous=snap, verify=True)
        collect_garbage(self.path, manifest)
        unknown = [d for d in delete if d not in snap.locations]
        if unknown:
            msg = f"cannot delete {len(unknown)} id(s) not in the index: {unknown[:5]}"
            raise DocumentNotFoundError(msg)
        removed, added = set(delete), set()
        new_entries: list[dict[str, Any]] = []
        folders: list[Path] = []
        try:
            for batch in batches:
                self._check_batch(batch)
                for doc_id in batch.ids:
                    if doc_id in added:
                        msg = f"document id {doc_id!r} appears twice in one add"
                        raise DuplicateIdError(msg)
                    added.add(doc_id)
                    if doc_id in snap.locations and doc_id not in removed:
                        if not upsert:
                            msg = f"document id {doc_id!r} is already in the index; use upsert to replace it"
                            raise DuplicateIdError(msg)
                        removed.add(doc_id)
                vectors = pool_tokens(batch.vectors, manifest.get("pool_factor", 1)) if pool else batch.vectors
                folders.append(self.path / "segments" / uuid.uuid4().hex)
                new_entries.append(write_segment(folders[-1], batch.ids, batch.texts, batch.metadata, vectors))
            codec_entry = manifest.get("codec")
            if manifest["index_type"] != "exact":
                new_entries, codec_entry = self._compress(manifest, snap, new_entries, folders, removed, rewrite)
            tombstones = {seg.name: set(np.flatnonzero(seg.deleted).tolist()) for seg in snap.segments}
            doclens = {seg.name: np.diff(seg.offsets) for seg in snap.segments}
            for doc_id in removed:
                seg_no, row = snap.locations[doc_id]
                tombstones[snap.segments[seg_no].name].add(row)
            new_manifest = next_manifest(manifest, doclens, tombstones, new_entries)
            if codec_entry is not manifest.get("codec"):
                new_manifest["codec"] = codec_entry
                if manifest.get("codec"):  # readers of the previous state may still load it
                    new_manifest["retired"].append(manifest["codec"]["name"])
            write_manifest(self.path, new_manifest)
        except BaseException:
            if not is_committed(self.path, manifest["generation"] + 1):
                for folder in folders:
                    shutil.rmtree(folder, ignore_errors=True)
            raise
        # the new files were checksummed as they were written: check sizes only
        self._snapshot = _load_snapshot(self.path, new_manifest, previous=snap, verify=False)
        trained = (codec_entry or {}).get("tokens_at_training", 0)
        if trained and new_manifest["n_tokens"] >= _RETRAIN_GROWTH * trained:
            logger.warning(
                "the index at %s holds %d tokens, %dx the %d its centroids were trained on; "
                "Index.retrain() (or `colbert-retriever retrain`) would fit them to the corpus again",
                self.path,
                new_manifest["n_tokens"],
                new_manifest["n_tokens"] // trained,
                trained,
            )

    def _compress(
        self,
        manifest: dict[str, Any],
        snap: _Snapshot,
        staged_entries: list[dict[str, Any]],
        folders: list[Path],
        removed: set[str],
        rewrite: str | None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """PLAID and auto indexes: turn this write's staged exact segments into one compressed
        segment. Returns the segment entries to commit and the codec entry.

        Training (a PLAID index's first write, an auto index crossing `AUTO_PLAID_TOKENS`,
        `retrain`) and `compact` take every live document into the new segment and add them
        to `removed`, so the old segments are retired.
        """
        if not staged_entries and rewrite is None:
            return [], manifest.get("codec")  # a delete: nothing to compress
        staged = [load_segment(f, e, verify=False) for f, e in zip(folders, staged_entries, strict=True)]
        sources = [(seg, np.arange(len(seg.doc_ids))) for seg in staged]
        codec, codec_entry = snap.codec, manifest.get("codec")
        total = int(manifest["n_tokens"]) + sum(e["n_tokens"] for e in staged_entries)
        train = rewrite == "retrain" or (
            codec is None and (manifest["index_type"] == "plaid" or total >= AUTO_PLAID_TOKENS)
        )
        if codec is None and not train:
            return staged_entries, None  # an auto index still small enough for exact search
        if train or rewrite == "compact":
            kept = [
                (seg, np.array([r for r in seg.live_rows if seg.doc_ids[r] not in removed], dtype=np.int64))
                for seg in snap.segments
            ]
            sources = kept + sources
            removed.update(snap.locations)
        if train:
            settings = PlaidConfig(**manifest["plaid"])
            codec = _train(sources, snap.codec, settings, int(manifest["dim"]))
            codec_entry = self._save_codec(codec, folders, tokens=_count_tokens(sources))
        elif staged:
            extended = _extend_for_drift(codec, codec_entry, staged)
            if extended is not codec:
                codec = extended
                codec_entry = self._save_codec(codec, folders, tokens=codec_entry["tokens_at_training"])
        if not any(len(rows) for _, rows in sources):
            return [], codec_entry
        folders.append(self.path / "segments" / uuid.uuid4().hex)
        entry = _write_compressed(folders[-1], sources, codec, source_codec=snap.codec)
        for seg in staged:
            shutil.rmtree(self.path / "segments" / seg.name, ignore_errors=True)
        return [entry], codec_entry

    def _save_codec(self, codec: ResidualCodec, folders: list[Path], *, tokens: int) -> dict[str, Any]:
        folders.append(self.path / "codecs" / uuid.uuid4().hex)
        files = codec.save(folders[-1])
        return {
            "name": folders[-1].name,
            "nbits": codec.nbits,
            "dim": codec.dim,
            "n_centroids": len(codec.centroids),
            "outlier_score": codec.outlier_score,
            "tokens_at_training": tokens,
            "files": files,
        }

    def delete(self, doc_ids: Sequence[str]) -> None:
        """Remove documents by id; other documents keep their ids. Unknown ids are an error."""
        self.write((), delete=doc_ids)

    def compact(self) -> None:
        """Rewrite the live documents into fresh segments, dropping deleted rows for good.

        In a PLAID index the compressed tokens are copied as they are, into one segment.
        """
        snap = self._snapshot
        if snap.codec is None:  # stored vectors: not pooled again
            batches = _live_batches(snap, self.config.docs_per_segment)
            self._locked(self._write_locked, batches, list(snap.locations), upsert=False)
        else:
            self._locked(self._write_locked, (), (), upsert=False, rewrite="compact")

    def retrain(self) -> None:
        """Train new centroids and buckets on the live documents and recompress them all.

        Writes keep the codec of the first write (adding centroids where documents drift
        away from it): retrain once the index has grown several-fold since training
        (`info().tokens` against `info().tokens_at_training`; a write logs a warning at 4x).
        Tokens are decompressed and compressed again, so it costs some of nbits' precision.

        Raises:
            ConfigError: an exact index (it has no codec).
            EmptyIndexError: no documents to train on.
        """
        manifest = self._snapshot.manifest
        if manifest["index_type"] == "exact":
            msg = f"the index at {self.path} is exact: it has no centroids to retrain"
            raise ConfigError(msg)
        if not self._snapshot.locations:
            msg = f"the index at {self.path} holds no documents to train on"
            raise EmptyIndexError(msg)
        self._locked(self._write_locked, (), (), upsert=False, rewrite="retrain")

    def search(self, queries: Sequence[np.ndarray], *, k: int, filters: Filter | None = None) -> list[list[Hit]]:
        """Top-k documents for each query's (n_tokens, dim) vectors: by exact MaxSim, or in a
        PLAID index by its stages (exact MaxSim on the decompressed vectors of candidates).

        Raises:
            EmptyIndexError: the index holds no documents.
            ConfigError: `k` < 1 or a bad filter.
            DimensionMismatchError: query vectors of another size than the index's.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            msg = f"k must be a positive integer, got {k!r}"
            raise ConfigError(msg)
        snap = self._snapshot
        if not snap.locations:
            msg = f"the index at {self.path} holds no documents; add some first"
            raise EmptyIndexError(msg)
        for q in queries:
            if q.ndim != 2 or q.shape[1] != self.dim:
                msg = f"query vectors have shape {q.shape}; the index stores dim={self.dim}"
                raise DimensionMismatchError(msg)
        if not queries:
            return []
        allowed = [~seg.deleted & _filter_mask(seg, filters) for seg in snap.segments]
        if snap.codec is None:
            scores, positions = exact_search(snap.segments, queries, allowed, k=k, config=self.search_config)
        else:
            config = self.search_config
            overrides = {"ncells": config.ncells, "ndocs": config.ndocs}
            params = dataclasses.replace(
                PlaidParams.for_k(k),
                **{name: value for name, value in overrides.items() if value is not None},
                centroid_score_threshold=config.centroid_score_threshold,
            )
            found = plaid_search(snap.codec, snap.segments, queries, allowed, k=k, params=params)
            scores, positions = [f[0] for f in found], [f[1] for f in found]
        return [
            _hits(snap, row_scores, row_positions, n_tokens=len(q))
            for q, row_scores, row_positions in zip(queries, scores, positions, strict=True)
        ]

    def _check_batch(self, batch: DocumentBatch) -> None:
        check_documents(batch.ids, batch.texts, batch.metadata)
        if len(batch.vectors) != len(batch.ids):
            msg = f"a batch has {len(batch.ids)} documents but {len(batch.vectors)} vector arrays"
            raise ConfigError(msg)
        for doc_id, vectors in zip(batch.ids, batch.vectors, strict=True):
            if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(vectors) == 0:
                expected = f"(n_tokens >= 1, {self.dim})"
                msg = f"document {doc_id!r}: vectors of shape {vectors.shape}; the index stores {expected}"
                raise DimensionMismatchError(msg)


def _check_ids(doc_ids: Sequence[str]) -> None:
    if isinstance(doc_ids, str) or not all(isinstance(d, str) for d in doc_ids):
        msg = f"ids must be a list of strings, got {doc_ids!r:.80}"
        raise ConfigError(msg)


def _filter_mask(segment: Segment, filters: Filter | None) -> np.ndarray:
    """(n_documents,) bool: rows whose metadata pass `filters` (a dict of equalities or a callable)."""
    n_docs = len(segment.doc_ids)
    if filters is None:
        return np.ones(n_docs, dtype=bool)
    if isinstance(filters, dict):
        items = list(filters.items())

        def accept(meta: dict[str, Any]) -> bool:
            return all(key in meta and meta[key] == value for key, value in items)

    elif callable(filters):
        accept = filters
    else:
        msg = f"filters must be a dict of metadata equalities or a callable, got {type(filters).__name__}"
        raise ConfigError(msg)
    return np.fromiter((bool(accept(m)) for m in segment.metadata), dtype=bool, count=n_docs)


def _hits(snap: _Snapshot, scores: np.ndarray, positions: np.ndarray, *, n_tokens: int) -> list[Hit]:
    """Hits for one query, score descending, ties broken by doc_id."""
    found = []
    for score, position in zip(scores.tolist(), positions.tolist(), strict=True):
        if position < 0 or score == -np.inf:
            continue
        seg_no = int(np.searchsorted(snap.bases, position, side="right")) - 1
        segment, row = snap.segments[seg_no], position - int(snap.bases[seg_no])
        found.append((score, segment.doc_ids[row], segment, row))
    found.sort(key=lambda item: (-item[0], item[1]))
    return [
        Hit(
            doc_id=doc_id,
            score=score,
            normalized_score=score / n_tokens,
            rank=rank,
            text=segment.texts[row],
            metadata=segment.metadata[row],
        )
        for rank, (score, doc_id, segment, row) in enumerate(found, start=1)
    ]


def _load_snapshot(path: Path, manifest: dict[str, Any], *, previous: _Snapshot | None, verify: bool) -> _Snapshot:
    """Load the segments and codec a manifest lists, reusing those already loaded in `previous`."""
    loaded = {seg.name: seg for seg in previous.segments} if previous else {}
    segments = []
    for entry in manifest["segments"]:
        if entry["name"] in loaded:
            segments.append(dataclasses.replace(loaded[entry["name"]], deleted=deleted_mask(entry)))
        else:
            segments.append(load_segment(path / "segments" / entry["name"], entry, verify=verify))
    locations = {}
    for seg_no, segment in enumerate(segments):
        for row in segment.live_rows.tolist():
            locations[segment.doc_ids[row]] = (seg_no, row)
    bases = np.zeros(len(segments) + 1, dtype=np.int64)
    np.cumsum([len(seg.doc_ids) for seg in segments], out=bases[1:])
    entry = manifest.get("codec")
    if entry is None:
        codec = None
    elif previous is not None and (previous.manifest.get("codec") or {}).get("name") == entry["name"]:
        codec = previous.codec
    else:
        codec = ResidualCodec.load(path / "codecs" / entry["name"], entry, verify=verify)
    return _Snapshot(manifest=manifest, segments=tuple(segments), locations=locations, bases=bases, codec=codec)


def _count_tokens(sources: Sequence[tuple[Segment, np.ndarray]]) -> int:
    return sum(int((seg.offsets[rows + 1] - seg.offsets[rows]).sum()) for seg, rows in sources)


def _chunks(segment: Segment, rows: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """`rows` in runs of about `_CHUNK_TOKENS` tokens: (rows, their token indices)."""
    for chunk in segment.chunks(rows, _CHUNK_TOKENS):
        yield chunk, segment.tokens(chunk)[0]


def _vectors(segment: Segment, tokens: np.ndarray, codec: ResidualCodec | None) -> np.ndarray:
    """(len(tokens), dim) float32 vectors of a segment, decompressed with `codec` if need be."""
    if segment.embeddings is not None:
        return np.asarray(segment.embeddings[tokens], dtype=np.float32)
    return codec.decode(segment.compressed.codes[tokens], segment.compressed.residuals[tokens])


def _train(
    sources: Sequence[tuple[Segment, np.ndarray]], source_codec: ResidualCodec | None, settings: PlaidConfig, dim: int
) -> ResidualCodec:
    """A codec trained on a sample of whole documents, about 32 tokens per centroid."""
    total = _count_tokens(sources)
    if total == 0:
        msg = "there are no documents to train the index's centroids on"
        raise EmptyIndexError(msg)
    n_centroids = settings.n_centroids or _auto_centroids(total, dim, settings.max_centroids)
    n_centroids = min(n_centroids, total)
    rng = np.random.default_rng(settings.seed)
    share = min(1.0, 32 * n_centroids / total)
    sample = []
    for segment, rows in sources:
        picked = rows[rng.random(len(rows)) < share]
        sample.extend(_vectors(segment, tokens, source_codec) for _, tokens in _chunks(segment, picked))
    sample_array = np.concatenate(sample) if sample else np.zeros((0, 0), np.float32)
    if len(sample_array) < n_centroids:  # the draw came out short: take everything
        sample_array = np.concatenate(
            [_vectors(seg, tokens, source_codec) for seg, rows in sources for _, tokens in _chunks(seg, rows)]
        )
    logger.info("training %d centroids on %d of %d tokens", n_centroids, len(sample_array), total)
    return ResidualCodec.train(
        sample_array, n_centroids=n_centroids, nbits=settings.nbits, seed=settings.seed, niter=settings.kmeans_iters
    )


def _auto_centroids(tokens: int, dim: int, cap: int) -> int:
    """ColBERTv2's 16 * sqrt(tokens) as a power of two, capped (see `PlaidConfig.n_centroids`)."""
    wanted = max(1, min(16 * math.sqrt(tokens), cap, tokens / 32, _ASSIGN_BUDGET / dim))
    return 1 << int(math.log2(wanted))


def _extend_for_drift(codec: ResidualCodec, entry: dict[str, Any], staged: Sequence[Segment]) -> ResidualCodec:
    """`codec`, or a copy with new centroids when this write's tokens are often far from all.

    Far: less similar to their nearest centroid than the training sample's 1st percentile.
    Checked on a sample of the write; when more than 2% of it is far, k-means over the far
    tokens adds centroids at the training density (tokens per centroid).
    """
    total = sum(int(seg.offsets[-1]) for seg in staged)
    share = min(1.0, _DRIFT_SAMPLE / total)
    rng = np.random.default_rng(total)
    sample = np.concatenate(
        [np.asarray(seg.embeddings[rng.random(len(seg.embeddings)) < share], np.float32) for seg in staged]
    )
    if len(sample) == 0:
        return codec
    _, scores = codec.assign(sample)
    far = sample[scores < codec.outlier_score]
    if len(far) <= 0.02 * len(sample):
        return codec
    density = entry["tokens_at_training"] / entry["n_centroids"]
    n_new = min(len(far), max(1, round(len(far) / len(sample) * total / density)))
    logger.info("%d of %d sampled tokens are far from every centroid: %d new centroids", len(far), len(sample), n_new)
    return codec.with_centroids(kmeans(far, n_new, seed=0, niter=10))


def _write_compressed(
    folder: Path,
    sources: Sequence[tuple[Segment, np.ndarray]],
    codec: ResidualCodec,
    source_codec: ResidualCodec | None,
) -> dict[str, Any]:
    """One compressed segment holding `sources`' rows, in order. Tokens already compressed
    with `codec` are copied as they are; others are (decompressed and) compressed."""
    codes, residuals, norms, doclens, doc_ids, texts, metadata = [], [], [], [], [], [], []
    for segment, rows in sources:
        for chunk, tokens in _chunks(segment, rows):
            if segment.compressed is not None and source_codec is codec:
                codes.append(segment.compressed.codes[tokens])
                residuals.append(segment.compressed.residuals[tokens])
                norms.append(segment.compressed.norms[tokens])
            else:
                chunk_codes, chunk_residuals = codec.encode(_vectors(segment, tokens, source_codec))
                codes.append(chunk_codes)
                residuals.append(chunk_residuals)
                norms.append(codec.norms(chunk_codes, chunk_residuals))
            doclens.append(segment.offsets[chunk + 1] - segment.offsets[chunk])
            doc_ids.extend(segment.doc_ids[r] for r in chunk.tolist())
            texts.extend(segment.texts[r] for r in chunk.tolist())
            metadata.extend(segment.metadata[r] for r in chunk.tolist())
    return write_compressed_segment(
        folder,
        doc_ids,
        texts,
        metadata,
        np.concatenate(doclens),
        np.concatenate(codes),
        np.concatenate(residuals),
        np.concatenate(norms),
        len(codec.centroids),
    )


def _live_batches(snap: _Snapshot, size: int) -> Iterable[DocumentBatch]:
    """The live documents of a snapshot as batches of at most `size`, vectors included."""
    batch = DocumentBatch(ids=[], texts=[], metadata=[], vectors=[])
    for segment in snap.segments:
        for row in segment.live_rows.tolist():
            batch.ids.append(segment.doc_ids[row])
            batch.texts.append(segment.texts[row])
            batch.metadata.append(segment.metadata[row])
            batch.vectors.append(np.asarray(segment.embeddings[segment.offsets[row] : segment.offsets[row + 1]]))
            if len(batch.ids) == size:
                yield batch
                batch = DocumentBatch(ids=[], texts=[], metadata=[], vectors=[])
    if batch.ids:
        yield batch
