"""The on-disk index: documents, their token vectors, and atomic add / delete / upsert.

Layout of an index folder::

    manifest.json          the commit point (see storage/manifest.py)
    write.lock             inter-process writer lock
    segments/<name>/       write-once segments (see storage/segment.py)

Readers load the manifest once and hold that snapshot; writers take the lock, write new
segments beside the old ones, then commit a new manifest with one rename. Searching is
thread-safe and runs while another thread or process writes.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colbert_retriever import __version__
from colbert_retriever.config import IndexConfig, SearchConfig
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
from colbert_retriever.results import Document, Hit
from colbert_retriever.search.exact import exact_search
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
from colbert_retriever.storage.segment import FILES, Segment, check_file, deleted_mask, load_segment, write_segment


@dataclass(frozen=True)
class _Snapshot:
    """One committed state: what a search sees from start to end."""

    manifest: dict[str, Any]
    segments: tuple[Segment, ...]
    locations: dict[str, tuple[int, int]]  # doc_id -> (segment number, row)
    bases: np.ndarray  # (n_segments + 1,) int64: first position of each segment

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


class Index:
    """A persistent multi-vector index with exact MaxSim search.

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
        exist_ok: bool = False,
        config: IndexConfig | None = None,
        search_config: SearchConfig | None = None,
    ) -> Index:
        """Create an empty index in `path` (a new or empty folder).

        Args:
            model: The encoder's fingerprint (`Encoder.fingerprint.to_dict()`).
            dim: Vector size.
            exist_ok: Open an existing index at `path` instead of failing.

        Raises:
            IndexExistsError: `path` already holds an index and `exist_ok` is False.
            ConfigError: `path` is a file or a folder with other content.
        """
        path = Path(path)
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
            "index_type": "exact",
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
        files = [f["bytes"] for entry in manifest["segments"] for f in entry["files"].values()]
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
        )

    def verify(self) -> None:
        """Re-read every file of the current state and check its sha256.

        Raises:
            IndexCorruptError: naming the first file that is missing, truncated or altered.
        """
        for entry in self._snapshot.manifest["segments"]:
            for name in FILES:
                check_file(self.path / "segments" / entry["name"] / name, entry["files"][name], verify=True)

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
        becomes a segment on disk, and nothing is visible until all of them are written and
        the manifest is replaced. Any error, or a kill, leaves the previous state.

        Args:
            batches: Documents with their vectors.
            delete: Ids to remove (all must exist).
            upsert: An added id that already exists replaces the stored document; without
                it, such an id is a `DuplicateIdError`.
        """
        _check_ids(delete)
        try:
            with self._write_mutex, writer_lock(self.path, self.config.lock_timeout):
                self._write_locked(batches, delete, upsert=upsert)
        except ColbertRetrieverError:
            raise
        except OSError as exc:
            msg = f"cannot write to the index at {self.path}: {exc}; it keeps its previous state"
            raise IndexWriteError(msg) from exc

    def _write_locked(self, batches: Iterable[DocumentBatch], delete: Sequence[str], *, upsert: bool) -> None:
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
                folders.append(self.path / "segments" / uuid.uuid4().hex)
                new_entries.append(write_segment(folders[-1], batch.ids, batch.texts, batch.metadata, batch.vectors))
            tombstones = {seg.name: set(np.flatnonzero(seg.deleted).tolist()) for seg in snap.segments}
            doclens = {seg.name: np.diff(seg.offsets) for seg in snap.segments}
            for doc_id in removed:
                seg_no, row = snap.locations[doc_id]
                tombstones[snap.segments[seg_no].name].add(row)
            new_manifest = next_manifest(manifest, doclens, tombstones, new_entries)
            write_manifest(self.path, new_manifest)
        except BaseException:
            if not is_committed(self.path, manifest["generation"] + 1):
                for folder in folders:
                    shutil.rmtree(folder, ignore_errors=True)
            raise
        # the new files were checksummed as they were written: check sizes only
        self._snapshot = _load_snapshot(self.path, new_manifest, previous=snap, verify=False)

    def delete(self, doc_ids: Sequence[str]) -> None:
        """Remove documents by id; other documents keep their ids. Unknown ids are an error."""
        self.write((), delete=doc_ids)

    def compact(self) -> None:
        """Rewrite the live documents into fresh segments, dropping deleted rows for good."""
        snap = self._snapshot
        self.write(_live_batches(snap, self.config.docs_per_segment), delete=list(snap.locations))

    def search(self, queries: Sequence[np.ndarray], *, k: int, filters: Filter | None = None) -> list[list[Hit]]:
        """Top-k documents by exact MaxSim for each query's (n_tokens, dim) vectors.

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
        scores, positions = exact_search(snap.segments, queries, allowed, k=k, config=self.search_config)
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
    """Load the segments a manifest lists, reusing those already loaded in `previous`."""
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
    return _Snapshot(manifest=manifest, segments=tuple(segments), locations=locations, bases=bases)


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
