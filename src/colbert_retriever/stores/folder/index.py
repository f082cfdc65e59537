"""The on-disk index: documents, their token vectors, and atomic add / delete / upsert.

Layout of an index folder::

    manifest.json          the commit point (manifest.py)
    write.lock             inter-process writer lock (writer.pid: its holder)
    segments/<name>/       write-once segments (segment.py)
    codecs/<name>/         PLAID index: centroids and residual codewords (codec.py)
    staging/<id>/          a writer's segments before its commit (transaction.py)

A handle holds one loaded state (snapshot.py) and loads a newer one when the manifest has
changed, before each read; writers stage outside the lock and commit under it
(transaction.py), with the PLAID policy of compression.py, then merge small segments
(merges.py). A search takes a `FolderReader` over the current state (reader.py) and hands
it to the search pipeline, so it is thread-safe and runs while another thread or process
writes. This module is the façade over those parts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import colbert_retriever.stores.folder.transaction as transaction
from colbert_retriever.atomic import writer_lock
from colbert_retriever.config import IndexConfig, IndexType, Mode, PlaidConfig, SearchConfig, Unit
from colbert_retriever.errors import (
    ColbertRetrieverError,
    ConfigError,
    DocumentNotFoundError,
    IndexExistsError,
    IndexNotFoundError,
)
from colbert_retriever.filters import Filter
from colbert_retriever.results import Document, Hit, IndexInfo
from colbert_retriever.stores.folder import merges
from colbert_retriever.stores.folder.filtering import compile_filter
from colbert_retriever.stores.folder.manifest import MANIFEST, STAGING, Manifest, read_manifest, write_manifest
from colbert_retriever.stores.folder.reader import FolderReader
from colbert_retriever.stores.folder.snapshot import Snapshot, load_latest
from colbert_retriever.stores.protocol import DocumentBatch, Row, join_passages
from colbert_retriever.validation import check_ids

INDEX_TYPES = ("exact", "plaid", "auto")
logger = logging.getLogger(__name__)


class Index:
    """A persistent multi-vector index searched by exact MaxSim or, compressed, by PLAID.

    Use `Index.create(path, model=..., dim=...)` or `Index.open(path)`; `ColBERT` wraps it
    with an encoder. Implements `colbert_retriever.stores.protocol.Store`.
    """

    def __init__(self, path: Path, snapshot: Snapshot, config: IndexConfig, search_config: SearchConfig) -> None:
        self.path = path
        self.config = config
        self.search_config = search_config
        self._snapshot = snapshot
        self._swap = threading.Lock()  # orders this handle's snapshot updates
        self._seen: tuple[int, int, int] | None = None  # the manifest file this handle last read (see _current)

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
        lexical: bool = True,
        exist_ok: bool = False,
        config: IndexConfig | None = None,
        search_config: SearchConfig | None = None,
    ) -> Index:
        """Create an empty index in `path` (a new or empty folder).

        Args:
            model: The encoder's fingerprint (`Encoder.fingerprint.to_dict()`).
            dim: Vector size.
            index_type: "exact" (float16 vectors, every token scored), "plaid" (compressed,
                PLAID search) or "auto" (exact until `compression.AUTO_PLAID_TOKENS`
                tokens, then plaid).
            plaid: How a plaid or auto index compresses (default `PlaidConfig()`).
            pool_factor: Keep ~1 / pool_factor of each document's token vectors, merging
                similar ones (see pooling.py); 1 keeps them all.
            lexical: Keep a full-text index (word lists for BM25) of every passage beside the
                vectors, for hybrid and lexical search (`compact(lexical=)` switches it).
            exist_ok: Open an existing index at `path` instead of failing.

        Raises:
            IndexExistsError: `path` already holds an index and `exist_ok` is False.
            ConfigError: `path` is a file or a folder with other content, or a bad setting.
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
        manifest = Manifest(
            index_type=index_type,
            model=model,
            dim=int(dim),
            pool_factor=pool_factor,
            lexical=bool(lexical),
            plaid=plaid if index_type != "exact" else None,
        )
        with transaction.storage_errors(path):
            for folder in ("segments", STAGING):
                (path / folder).mkdir(parents=True, exist_ok=True)
            with writer_lock(path, (config or IndexConfig()).lock_timeout):
                write_manifest(path, manifest)
        return cls.open(path, config=config, search_config=search_config)

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        verify: bool = False,
        config: IndexConfig | None = None,
        search_config: SearchConfig | None = None,
    ) -> Index:
        """Open the index at `path`: memory-maps its arrays, checks every file's size and
        reads no document, so it takes milliseconds at any size. `verify=True` also re-reads
        every file against its sha256 (as `verify()` does).

        Raises:
            IndexNotFoundError: no index at `path`.
            IndexCorruptError: a file is missing, truncated, or (`verify`) fails its checksum.
            IndexVersionError: the index format is not one this version reads.
        """
        path = Path(path)
        if not path.is_dir():
            msg = f"no index at {path} (not a folder)"
            raise IndexNotFoundError(msg)
        snapshot = load_latest(path, previous=None, verify=verify)
        return cls(path, snapshot, config or IndexConfig(), search_config or SearchConfig())

    @property
    def model(self) -> dict[str, Any]:
        """Fingerprint of the encoder the index was built with."""
        return dict(self._snapshot.manifest.model)

    @property
    def dim(self) -> int:
        return self._snapshot.manifest.dim

    @property
    def n_tokens(self) -> int:
        """Token vectors of the live documents."""
        return self._current().manifest.n_tokens

    @property
    def docs_per_batch(self) -> int:
        """Rows (documents, or passages of long ones) encoded and staged per segment by `ColBERT.add`."""
        return self.config.docs_per_segment

    def __len__(self) -> int:
        return self._current().manifest.n_documents

    @property
    def n_passages(self) -> int:
        """Stored passages (rows) of the live documents: one per document that fits the model."""
        return self._current().manifest.n_passages

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and doc_id in self._current().locate([doc_id])

    def doc_ids(self, filters: Filter | None = None) -> list[str]:
        """Ids of the live documents (passing `filters`, if given), in storage order (reads
        each one's id: slow on large indexes)."""
        return self._current().live_ids(compile_filter(filters))

    def refresh(self) -> None:
        """Load the latest committed state, e.g. after another process wrote (searches and
        reads do it by themselves when the manifest changed)."""
        seen = _manifest_stamp(self.path)
        if read_manifest(self.path).generation != self._snapshot.generation:
            self._install(load_latest(self.path, previous=self._snapshot, verify=False))
        self._seen = seen

    def _current(self) -> Snapshot:
        """The latest committed state: one `stat` of the manifest tells whether a commit
        (of this process or another) replaced it since this handle last read it."""
        if _manifest_stamp(self.path) != self._seen:
            self.refresh()
        return self._snapshot

    def info(self) -> IndexInfo:
        """Counts, size on disk, format and model of the current state."""
        return self._current().info(self.path)

    def close(self) -> None:
        """Nothing to release: readers hold no lock, and mapped files close with the handle."""

    def verify(self) -> None:
        """Re-read every file of the current state, check its sha256 and the structure of
        its arrays (codes, inverted lists and offsets in range, shapes that agree).

        Raises:
            IndexCorruptError: naming the first file that is missing, truncated, altered
                or inconsistent.
        """
        self._snapshot.verify(self.path)

    def get(self, doc_ids: Sequence[str]) -> list[Document]:
        """The stored documents for `doc_ids`, in the same order.

        Raises:
            DocumentNotFoundError: naming the ids that are not in the index.
        """
        doc_ids = check_ids(doc_ids)
        snap = self._current()
        located = snap.locate(doc_ids)
        missing = [d for d in doc_ids if d not in located]
        if missing:
            msg = f"{len(missing)} id(s) not in the index: {missing[:5]}"
            raise DocumentNotFoundError(msg)
        out = []
        for doc_id in doc_ids:
            seg_no, rows = located[doc_id]
            passages = snap.segments[seg_no].documents.read(rows)
            out.append(Document(doc_id=doc_id, text=join_passages(passages), metadata=passages[0].metadata))
        return out

    def passages(self, doc_id: str, numbers: Sequence[int] | None = None) -> list[tuple[Row, np.ndarray]]:
        """Each stored passage of `doc_id` (those numbered `numbers`, if given), in order, with
        its (n_tokens, dim) float32 token vectors: as stored in an exact index, decompressed
        in a PLAID one.

        Raises:
            DocumentNotFoundError: `doc_id` is not in the index.
        """
        return self.reader().passages(doc_id, numbers)

    def reader(self, filters: Filter | None = None, *, vectors: bool = False) -> FolderReader:
        """The current state, restricted to the live rows passing `filters`: what one search
        reads, however writes race it (see `stores.protocol.Reader`). `vectors` asks nothing
        more here: the state's vectors stay mapped as long as the reader lives.

        Raises:
            ConfigError: a bad filter (naming the operator).
        """
        return FolderReader(self.path, self._current(), compile_filter(filters), self.search_config)

    def write(
        self,
        batches: Iterable[DocumentBatch],
        *,
        delete: Sequence[str] = (),
        upsert: bool = False,
        missing_ok: bool = False,
    ) -> None:
        """Delete `delete`, then add `batches`, as one atomic commit.

        `batches` may be any iterable (e.g. a generator that encodes as it goes). They are
        checked and staged on disk without holding the writer lock, so other writers go on
        meanwhile; the lock is held only to check ids against the latest state, compress (in
        a PLAID index) and commit. Nothing is visible until the manifest is replaced; any
        error, or a kill, leaves the previous state. Then the segments that small writes
        left are merged if the policy asks (merges.py), each merge a commit of its own.
        An empty write commits nothing.

        Args:
            batches: Documents with their vectors.
            delete: Ids to remove (all must exist, unless `missing_ok`).
            upsert: An added id that already exists replaces the stored document; without
                it, such an id is a `DuplicateIdError`.
            missing_ok: Skip ids of `delete` that the index does not hold (decided under
                the lock, on the latest state).

        Raises:
            DuplicateIdError, DocumentNotFoundError, ConfigError: bad ids or documents.
            IndexWriteError: the disk refused a write (full, read-only).
            IndexLockedError: another writer held the lock past `IndexConfig.lock_timeout`.
        """
        delete = check_ids(delete)
        self.refresh()  # early duplicate checks against a recent state
        self._install(
            transaction.write(
                self.path, self.config, self._snapshot, batches, delete=delete, upsert=upsert, missing_ok=missing_ok
            )
        )
        try:  # the write has committed: a merge that fails leaves it as it is, for the next write to retry
            self._install(merges.merge(self.path, self.config, self._snapshot))
        except (OSError, ColbertRetrieverError) as exc:
            logger.warning("index %s: the write committed, but merging its segments failed: %s", self.path, exc)

    def delete(self, doc_ids: Sequence[str], *, missing_ok: bool = False) -> None:
        """Remove documents by id, atomically; other documents keep their ids.

        Raises:
            DocumentNotFoundError: an id is not in the index (nothing is deleted), unless
                `missing_ok`, which skips such ids.
        """
        self.write((), delete=doc_ids, missing_ok=missing_ok)

    def compact(self, *, lexical: bool | None = None) -> None:
        """Rewrite the live documents into fresh segments, dropping deleted rows for good.

        In a PLAID index the compressed tokens are copied as they are, into one segment.
        `lexical`: add (True) or drop (False) the full-text index; None keeps it as it is.
        """
        self._install(transaction.compact(self.path, self.config, self._snapshot, lexical=lexical))

    def retrain(self, *, force: bool = False) -> None:
        """Train new centroids and buckets on the live documents and recompress them all.

        Writes keep the codec of the first write (adding centroids where documents drift
        away from it): retrain once the index has grown several-fold since training
        (`info().tokens` against `info().tokens_at_training`; a write logs a warning at 4x).
        Tokens are decompressed and compressed again, so it costs some of nbits' precision.

        Args:
            force: Also compress an "auto" index that is still exact (below the size at
                which it turns plaid by itself).

        Raises:
            ConfigError: an exact index (it has no codec), or an auto one still exact
                without `force`.
            EmptyIndexError: no documents to train on.
        """
        self._install(transaction.retrain(self.path, self.config, self._snapshot, force=force))

    def search(
        self,
        queries: Sequence[np.ndarray],
        *,
        k: int,
        filters: Filter | None = None,
        unit: Unit = "document",
        mode: Mode | None = None,
        texts: Sequence[str] = (),
    ) -> list[list[Hit]]:
        """Top-k documents for each query's (n_tokens, dim) vectors: by exact MaxSim, or in a
        PLAID index by its stages; fused with BM25 over the query `texts` in hybrid mode. A
        document stored as passages is scored from them; its hit carries the best one.

        Args:
            filters: A filter-language object (see `colbert_retriever.filters`), e.g.
                `{"year": {"$gte": 2020}}`, or a callable(metadata) -> bool; applied before
                ranking (on both sides in hybrid mode), so k hits come back whenever k
                documents pass.
            unit: "document" (default) or "passage": the k best passages, several of one
                document among them.
            mode: "hybrid" (late interaction and BM25 fused, `SearchConfig.fusion`), "late"
                or "lexical" (BM25 alone); None: hybrid if the index has a lexical side and
                `texts` are given, else late.
            texts: The queries' texts, for hybrid and lexical modes.

        An index without documents (new, or all deleted) gives no hits.
        Raises:
            ConfigError: `k` < 1, a bad filter (naming the operator), unit or mode, or a
                lexical mode on an index without a full-text index.
            DimensionMismatchError: query vectors of another size than the index's.
        """
        from colbert_retriever.pipeline.search import search  # the pipeline sits above the stores

        return search(self.reader(filters), queries, k=k, config=self.search_config, unit=unit, mode=mode, texts=texts)

    def _install(self, snapshot: Snapshot) -> None:
        """Make `snapshot` this handle's state, unless a newer one already is (two threads
        may finish their writes in either order)."""
        with self._swap:
            if snapshot.generation > self._snapshot.generation:
                self._snapshot = snapshot


def _manifest_stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a commit replaces the manifest (a new file: inode, time, size)."""
    try:
        stat = (path / MANIFEST).stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size
