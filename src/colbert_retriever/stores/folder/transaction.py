"""The write transaction: stage outside the writer lock, commit under it.

A write runs in two phases:

1. Staging, without the lock. The caller's batches are pulled (this is where the encoder
   runs, however long it takes), checked, pooled and written as exact segments into this
   writer's own folder ``staging/<id>/``. The writer holds ``staging/<id>.lock`` meanwhile, so
   other writers' garbage collection leaves the folder alone until its writer is dead.
2. Commit, under the inter-process writer lock: re-read the manifest and load the state it
   names, check ids against that state (deletes must exist; adds must not, unless upserting),
   move the staged segments into ``segments/`` (or compress them, in a PLAID index), and
   replace the manifest. Every write, `compact` and `retrain` included, is built from the
   state read under the lock, so none can undo another.

Errors: the caller's own (a generator that cannot read its input, a bad document) pass
through unchanged; an `OSError` of our own storage becomes `IndexWriteError`. Either way
the index keeps its previous state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import colbert_retriever.stores.folder.compression as compression
from colbert_retriever.atomic import fsync_dir, try_lock, writer_lock
from colbert_retriever.config import IndexConfig
from colbert_retriever.errors import (
    ColbertRetrieverError,
    ConfigError,
    DocumentNotFoundError,
    DuplicateIdError,
    EmptyIndexError,
    IndexWriteError,
)
from colbert_retriever.stores.folder.compression import Rewrite
from colbert_retriever.stores.folder.manifest import (
    STAGING,
    Manifest,
    SegmentEntry,
    collect_garbage,
    is_committed,
    read_manifest,
    remove_retired,
)
from colbert_retriever.stores.folder.manifest import write_manifest as commit_manifest
from colbert_retriever.stores.folder.pooling import pool_tokens
from colbert_retriever.stores.folder.segment import Segment, load_segment, set_lexical, write_segment
from colbert_retriever.stores.folder.snapshot import Snapshot, load_snapshot
from colbert_retriever.stores.protocol import DocumentBatch, Row, new_document_ids

if TYPE_CHECKING:
    from filelock import BaseFileLock

logger = logging.getLogger(__name__)

_ORPHAN_LOCK_SECONDS = 60.0  # a lock file with no folder this old belonged to a writer that died
# Compacting an exact index writes segments of about this many tokens (float16: 128 MB at dim
# 128), across the old segments' boundaries: few segments, each holding many rows.
_COMPACT_TOKENS = compression.AUTO_PLAID_TOKENS
Change = Callable[[Snapshot, list[Path]], Manifest | None]  # None: nothing to commit


def write(
    path: Path,
    config: IndexConfig,
    previous: Snapshot,
    batches: Iterable[DocumentBatch],
    *,
    delete: Sequence[str],
    upsert: bool,
    missing_ok: bool = False,
) -> Snapshot:
    """Delete `delete` (skipping ids not in the index if `missing_ok`), then add `batches`,
    as one commit; return the new state."""

    def change(snap: Snapshot, folders: list[Path]) -> Manifest | None:
        deleting = delete
        if missing_ok:
            found = snap.locate(delete)  # one lookup for all ids, not one per id
            deleting = [d for d in delete if d in found]
        if not deleting and not staging.segments:
            return None  # an empty write commits nothing
        return _apply_write(path, snap, staging, deleting, upsert, folders)

    with Staging(path) as staging:
        staging.stage(batches, previous, delete=delete, upsert=upsert)
        snap = commit(path, config, previous, change)
    trained = snap.manifest.codec.tokens_at_training if snap.manifest.codec else 0
    if trained and snap.manifest.n_tokens >= compression.RETRAIN_GROWTH * trained:
        logger.warning(
            "the index at %s holds %d tokens, %dx the %d its centroids were trained on; "
            "Index.retrain() (or `colbert-retriever retrain`) would fit them to the corpus again",
            path,
            snap.manifest.n_tokens,
            snap.manifest.n_tokens // trained,
            trained,
        )
    return snap


def compact(path: Path, config: IndexConfig, previous: Snapshot, *, lexical: bool | None = None) -> Snapshot:
    """Rewrite the live documents into fresh segments, dropping deleted rows for good;
    `lexical`: with (True) or without (False) a full-text index (None: as now)."""

    def change(snap: Snapshot, folders: list[Path]) -> Manifest:
        if lexical is not None:
            snap = dataclasses.replace(snap, manifest=dataclasses.replace(snap.manifest, lexical=lexical))
        if snap.codec is not None:
            return _successor(snap, {}, compression.compact(path, snap, _kept(snap, {}), folders))
        entries, parts, tokens = [], [], 0
        for segment in snap.segments:  # whole documents, across segments, in runs of ~_COMPACT_TOKENS
            for rows in _whole_documents(segment, segment.live_rows, config.docs_per_segment):
                parts.append((segment, rows))
                tokens += int((segment.offsets[rows + 1] - segment.offsets[rows]).sum())
                if tokens >= _COMPACT_TOKENS:
                    entries.append(write_exact(path, parts, folders, lexical=snap.manifest.lexical))
                    parts, tokens = [], 0
        if parts:
            entries.append(write_exact(path, parts, folders, lexical=snap.manifest.lexical))
        return _successor(snap, {}, Rewrite(segments=entries, codec=None, replaces_all=True))

    return commit(path, config, previous, change)


def retrain(path: Path, config: IndexConfig, previous: Snapshot, *, force: bool) -> Snapshot:
    """Train new centroids on the live documents and recompress them all (`force`: also an
    auto index that is still exact)."""

    def change(snap: Snapshot, folders: list[Path]) -> Manifest:
        if snap.manifest.index_type == "exact":
            msg = f"the index at {path} is exact: it has no centroids to retrain"
            raise ConfigError(msg)
        if snap.codec is None and snap.manifest.index_type == "auto" and not force:
            msg = (
                f"the index at {path} is auto and still exact ({snap.manifest.n_tokens:,} tokens); it turns plaid "
                f"by itself at {compression.AUTO_PLAID_TOKENS:,}; force=True (--force) compresses it now"
            )
            raise ConfigError(msg)
        if snap.manifest.n_documents == 0:
            msg = f"the index at {path} holds no documents to train on"
            raise EmptyIndexError(msg)
        return _successor(snap, {}, compression.retrain(path, snap, _kept(snap, {}), folders))

    return commit(path, config, previous, change)


@contextlib.contextmanager
def storage_errors(path: Path) -> Iterator[None]:
    """Our own `OSError`s as `IndexWriteError`; this library's errors pass through."""
    try:
        yield
    except ColbertRetrieverError:
        raise
    except OSError as exc:
        msg = f"cannot write to the index at {path}: {exc}; it keeps its previous state"
        raise IndexWriteError(msg) from exc


def commit(path: Path, config: IndexConfig, previous: Snapshot, change: Change) -> Snapshot:
    """Under the writer lock, apply `change` to the state just read and commit its manifest.

    `change(snapshot, folders)` returns the next manifest (None: nothing to commit) and
    records in `folders` every folder it creates; they are removed if anything fails before
    the manifest is replaced.
    """
    with storage_errors(path), writer_lock(path, config.lock_timeout):
        manifest = read_manifest(path)
        snap = previous
        if manifest.generation != previous.generation:  # another handle or process wrote since
            snap = load_snapshot(path, manifest, previous=previous, verify=False)
        collect_garbage(path, manifest)
        collect_staging(path)
        folders: list[Path] = []
        try:
            new = change(snap, folders)
            if new is None:
                return snap
            commit_manifest(path, new)
        except BaseException:
            if not is_committed(path, manifest.generation + 1):
                for folder in folders:
                    shutil.rmtree(folder, ignore_errors=True)
            raise
        remove_retired(path, new)
        try:  # the new files were checksummed as they were written: sizes are checked on load
            return load_snapshot(path, new, previous=snap, verify=False)
        except (OSError, ColbertRetrieverError) as exc:  # committed all the same: the write succeeded
            logger.warning("index %s: committed generation %d, but cannot load it now: %s", path, new.generation, exc)
            return previous


class Staging:
    """A writer's private folder ``staging/<id>/`` and the lock that marks it as in use."""

    def __init__(self, index_path: Path) -> None:
        self.index_path = index_path
        name = uuid.uuid4().hex
        self.folder = index_path / STAGING / name
        self.lock_path = index_path / STAGING / f"{name}.lock"
        self.segments: list[Segment] = []
        self.entries: list[SegmentEntry] = []
        self.ids: list[str] = []
        self._lock: BaseFileLock | None = None

    def __enter__(self) -> Staging:
        with storage_errors(self.index_path):
            self.folder.parent.mkdir(exist_ok=True)
            self._lock = try_lock(self.lock_path)  # a fresh name: always free. Lock, then folder:
            self.folder.mkdir()  # a folder without a held lock is a dead writer's
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        if self._lock is not None:
            self._lock.release()
        with contextlib.suppress(OSError):
            self.lock_path.unlink()

    def stage(self, batches: Iterable[DocumentBatch], known: Snapshot, *, delete: Sequence[str], upsert: bool) -> None:
        """Check each batch and write it as an exact segment here. Ids already in `known`
        (a recent state) fail early, before the rest is encoded; the commit checks again."""
        manifest, deleting = known.manifest, set(delete)
        seen: set[str] = set()
        for batch in batches:  # the caller's code runs here: its errors pass through as they are
            rows = batch.checked_rows(manifest.dim, upsert=upsert)
            doc_ids = new_document_ids(rows, seen, upsert=upsert)
            if not upsert:
                _refuse_existing([d for d in known.locate(doc_ids) if d not in deleting])
            if not rows:
                continue
            vectors = pool_tokens(batch.vectors, manifest.pool_factor)
            with storage_errors(self.index_path):
                folder = self.folder / uuid.uuid4().hex
                entry = write_segment(folder, rows, vectors, batch.cut, lexical=manifest.lexical)
                self.segments.append(load_segment(folder, entry, verify=False))
            self.entries.append(entry)
            self.ids.extend(doc_ids)


def collect_staging(path: Path) -> None:
    """Remove the staging folders of writers that died (their lock is free)."""
    root = path / STAGING
    for lock_path in root.glob("*.lock") if root.is_dir() else ():
        folder = lock_path.with_suffix("")
        with contextlib.suppress(FileNotFoundError):  # its writer may finish meanwhile
            if not folder.is_dir() and time.time() - lock_path.stat().st_mtime < _ORPHAN_LOCK_SECONDS:
                continue  # a writer between taking its lock and making its folder
        lock = try_lock(lock_path)
        if lock is None:
            continue  # its writer is alive
        try:
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                lock_path.unlink()
        finally:
            lock.release()


def _whole_documents(segment: Segment, rows: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """`rows` (whole documents, in order) in runs of about `size` rows that never split a document."""
    firsts = np.append(np.flatnonzero(segment.documents.passages[rows] == 0), len(rows))
    start = 0
    while start < len(rows):
        stop = int(firsts[np.searchsorted(firsts, start + size)]) if start + size < len(rows) else len(rows)
        yield rows[start:stop]
        start = stop


def write_exact(
    path: Path, parts: Sequence[tuple[Segment, np.ndarray]], folders: list[Path], *, lexical: bool
) -> SegmentEntry:
    """One new exact segment holding `parts` (segments' rows, whole documents), in order."""
    rows_read: list[Row] = []
    vectors: list[np.ndarray] = []
    cut: list[int] = []
    for segment, rows in parts:
        assert segment.embeddings is not None, "an index without a codec stores exact vectors"
        cut += [len(vectors) + i for i in segment.cut_among(rows)]
        vectors += [segment.embeddings[segment.offsets[r] : segment.offsets[r + 1]] for r in rows.tolist()]
        rows_read += segment.documents.read(rows.tolist())
    folders.append(path / "segments" / uuid.uuid4().hex)
    return write_segment(folders[-1], rows_read, vectors, cut, lexical=lexical)


def _refuse_existing(existing: Sequence[str]) -> None:
    if existing:
        msg = f"document id {existing[0]!r} is already in the index; use upsert to replace it"
        raise DuplicateIdError(msg)


def _apply_write(
    path: Path, snap: Snapshot, staging: Staging, delete: Sequence[str], upsert: bool, folders: list[Path]
) -> Manifest:
    """The manifest after deleting `delete` and adding what `staging` holds, on `snap`."""
    located = snap.locate([*delete, *staging.ids])
    unknown = [d for d in delete if d not in located]
    if unknown:
        msg = f"cannot delete {len(unknown)} id(s) not in the index: {unknown[:5]}"
        raise DocumentNotFoundError(msg)
    if not upsert:
        deleting = set(delete)
        _refuse_existing([d for d in staging.ids if d in located and d not in deleting])
    removed: dict[int, list[int]] = {}
    for seg_no, rows in located.values():  # deleted ids, and added ids already stored (upsert)
        removed.setdefault(seg_no, []).extend(rows)
    added_tokens = sum(entry.n_tokens for entry in staging.entries)
    if not staging.segments:
        rewrite = Rewrite(segments=[], codec=snap.manifest.codec, replaces_all=False)
    elif compression.compresses(snap.manifest, added_tokens):
        rewrite = compression.add(path, snap, staging.segments, _kept(snap, removed), folders)
    else:
        moved = _move(path, staging, folders, lexical=snap.manifest.lexical)
        rewrite = Rewrite(segments=moved, codec=None, replaces_all=False)
    return _successor(snap, removed, rewrite)


def _move(path: Path, staging: Staging, folders: list[Path], *, lexical: bool) -> list[SegmentEntry]:
    """Move the staged exact segments into ``segments/`` (one rename each), with a full-text
    index if and only if the index has a lexical side (`lexical`)."""
    entries = []
    for entry, segment in zip(staging.entries, staging.segments, strict=True):
        if (segment.lexical is not None) != lexical:
            entry = set_lexical(staging.folder / entry.name, entry, segment, on=lexical)
        folders.append(path / "segments" / entry.name)
        os.replace(staging.folder / entry.name, folders[-1])
        entries.append(entry)
    fsync_dir(path / "segments")
    return entries


def _kept(snap: Snapshot, removed: dict[int, list[int]]) -> list[tuple[Segment, np.ndarray]]:
    """Each segment with its live rows, minus `removed` ones."""
    return [
        (seg, np.setdiff1d(seg.live_rows, removed.get(seg_no, []), assume_unique=True))
        for seg_no, seg in enumerate(snap.segments)
    ]


def _successor(snap: Snapshot, removed: dict[int, list[int]], rewrite: Rewrite) -> Manifest:
    """The next manifest: `removed` rows tombstoned and `rewrite`'s segments added (or, when
    they hold every live document, in place of all others)."""
    segments, n_tokens = [], 0
    old = [] if rewrite.replaces_all else list(zip(snap.manifest.segments, snap.segments, strict=True))
    for seg_no, (entry, segment) in enumerate(old):
        newly = np.setdiff1d(removed.get(seg_no, []), entry.deleted).astype(np.int64)
        deleted = sorted({*entry.deleted, *newly.tolist()})
        if len(deleted) < entry.n_rows:
            gone = int((segment.documents.passages[newly] == 0).sum())
            segments.append(
                dataclasses.replace(entry, deleted=tuple(deleted), deleted_documents=entry.deleted_documents + gone)
            )
            n_tokens += entry.n_tokens - int(np.diff(segment.offsets)[deleted].sum())
    segments += rewrite.segments
    n_tokens += sum(entry.n_tokens for entry in rewrite.segments)
    return snap.manifest.successor(segments, n_tokens=n_tokens, codec=rewrite.codec)
