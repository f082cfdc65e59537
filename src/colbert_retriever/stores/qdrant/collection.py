"""One Qdrant collection as colbert-retriever lays it out, and the requests to it: retried in
transit, their failures turned into this library's errors.

Layout::

    point        one stored row (a document, or one passage of a long one); its id is
                 UUIDv5 of (doc id, passage, write token) (`point_id`)
    "colbert"    the row's token vectors, a multi-vector scored by MaxSim, no HNSW
    "prefetch"   one vector standing for them (vectors.py), under HNSW
    "bm25"       its BM25 sparse vector, with Qdrant's IDF modifier (lexical=True)
    payload      doc_id, passage, start, text, metadata, n_tokens, version, live (1 once
                 its write committed, 0 before), settled (1 once no older version is left),
                 write (its write's token), started (when its write began, Unix seconds);
                 see versions.py
    metadata     the collection's own: {"colbert_retriever": format, library version,
                 model fingerprint, dim, prefetch kind, lexical}, checked at open as an
                 index folder's manifest is
"""

from __future__ import annotations

import atexit
import itertools
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from colbert_retriever.errors import (
    IndexCorruptError,
    IndexNotFoundError,
    IndexVersionError,
    IndexWriteError,
    StoreError,
)
from colbert_retriever.stores.qdrant.config import QdrantConfig
from colbert_retriever.stores.qdrant.vectors import FDE_DIM

FORMAT = 1
KEY = "colbert_retriever"
LATE, PREFETCH, LEXICAL = "colbert", "prefetch", "bm25"
_NAMESPACE = uuid.UUID("5f0c2b0e-8a53-4c1e-9d0f-6c6f6c626572")
_TRANSIENT = {429, 500, 502, 503, 504}
_T = TypeVar("_T")
Scored = tuple[float, dict[str, Any], Any, Any]
"""A point found by a query: (score, payload, point id, its token vectors or None)."""


def point_id(doc_id: str, passage: int, write: str) -> str:
    """The point id of passage `passage` of document `doc_id` as the write `write` stores it:
    unique to the write, so concurrent writers of one document never overwrite each other."""
    return str(uuid.uuid5(_NAMESPACE, f"{doc_id}\x00{passage}\x00{write}"))


def connect(config: QdrantConfig) -> QdrantClient:
    """A client for `config`'s server, memory, or local-mode folder; handles on one folder in
    this process share its client (see `SharedHandles`); `Collection.close` releases it."""
    if config.url is not None:
        return QdrantClient(
            url=config.url, api_key=config.api_key, prefer_grpc=config.prefer_grpc, timeout=config.timeout
        )
    if config.path == ":memory:":
        return QdrantClient(location=":memory:")
    folder = str(Path(str(config.path)).resolve())

    def open_folder() -> QdrantClient:
        try:
            return QdrantClient(path=folder)
        except RuntimeError as exc:  # another process holds the folder
            msg = f"{config.where}: {exc}"
            raise StoreError(msg) from exc

    return LOCAL_CLIENTS.acquire(folder, open_folder)


class SharedHandles:
    """Handles opened once per folder in this process and closed with their last user:
    qdrant-client's local mode and Qdrant Edge lock a folder per handle, so a second handle
    on it could not open. Those still open at exit are closed while the interpreter can
    still run their cleanup."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[Any, int]] = {}  # folder -> its handle, users of it
        self._lock = threading.Lock()
        atexit.register(self.close_all)

    def acquire(self, folder: str, opener: Callable[[], Any]) -> Any:
        """The handle on `folder`, opened by `opener` unless another user has it open."""
        with self._lock:
            handle, users = self._open.get(folder) or (opener(), 0)
            self._open[folder] = (handle, users + 1)
        return handle

    def release(self, handle: Any) -> None:
        """Close `handle`, or, if other users share it, leave it to the last of them."""
        with self._lock:
            for folder, (shared, users) in list(self._open.items()):
                if shared is handle:
                    if users > 1:
                        self._open[folder] = (shared, users - 1)
                        return
                    del self._open[folder]
        handle.close()

    def close_all(self) -> None:
        with self._lock:
            handles = [handle for handle, _ in self._open.values()]
            self._open.clear()
        for handle in handles:
            handle.close()


LOCAL_CLIENTS = SharedHandles()
_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def lock(key: str) -> threading.RLock:
    """The lock of `key` in this process (made on first use, kept for the process)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.RLock())


def check_layout(layout: Any, where: str) -> dict[str, Any]:
    """`layout` as read back, or the error saying why it cannot be used."""
    if not isinstance(layout, dict) or not {"format", "model", "dim", "prefetch", "lexical"} <= set(layout):
        msg = f"{where} was not made by colbert-retriever (it records no {KEY!r} layout)"
        raise IndexCorruptError(msg)
    if layout["format"] != FORMAT:
        msg = f"{where} has format {layout['format']}; this version reads format {FORMAT}"
        raise IndexVersionError(msg)
    return layout


def late_vectors(point: Any) -> Any:
    """A point's token vectors, if it was read with them (else None)."""
    return point.vector.get(LATE) if isinstance(point.vector, dict) else None


def equals(key: str, value: Any) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def match(key: str, values: list[Any]) -> models.FieldCondition:
    """Points whose payload `key` is one of `values`."""
    return models.FieldCondition(key=key, match=models.MatchAny(any=values))


def visible(*conditions: Any) -> models.Filter:
    """Live points (of a finished write) that meet every one of `conditions`."""
    return models.Filter(must=[equals("live", 1), *conditions])


class Collection:
    """A client and the collection `config.collection`; every request goes through `request`.

    `writer` is held by a write from start to end, so this process's writers of the
    collection take turns. In local mode (`exclusive`: the folder is this process's alone),
    `requests` is held by every request, since qdrant-client's local mode is not safe to
    call from several threads, and by a write's commit, so no read runs half-way through it
    (see versions.py); on a server it holds nothing.
    """

    def __init__(self, client: QdrantClient, config: QdrantConfig) -> None:
        self.client, self.config, self.name = client, config, config.collection
        self.exclusive = config.url is None
        if config.url is not None:
            place = config.url
        else:
            place = f":memory:{id(client)}" if config.path == ":memory:" else str(Path(str(config.path)).resolve())
        self.writer = lock(f"write {place} {self.name}")
        self.requests: AbstractContextManager[Any] = lock(f"client {place}") if self.exclusive else nullcontext()

    def request(self, call: Callable[..., _T], *args: Any, write: bool = False, **kwargs: Any) -> _T:
        """`call`, retried `config.retries` times over failures in transit (0.5 s, 1 s, ...
        apart); a failure is a `StoreError` (`IndexWriteError` for a write), a collection
        that is gone an `IndexNotFoundError`."""
        for attempt in itertools.count():
            try:
                with self.requests:
                    return call(*args, **kwargs)
            except (ResponseHandlingException, UnexpectedResponse, ConnectionError, TimeoutError, sqlite3.Error) as exc:
                status = exc.status_code if isinstance(exc, UnexpectedResponse) else None
                if (status is None or status in _TRANSIENT) and attempt < self.config.retries:
                    time.sleep(0.5 * 2**attempt)
                    continue
                if status == 404:
                    msg = f"no {self.config.where} (it was deleted?)"
                    raise IndexNotFoundError(msg) from exc
                msg = f"{self.config.where} {'refused a write' if write else 'failed a request'}: {_reason(exc)}"
                raise (IndexWriteError if write else StoreError)(msg) from exc
        raise AssertionError  # pragma: no cover (the loop returns or raises)

    def exists(self) -> bool:
        return bool(self.request(self.client.collection_exists, self.name))

    def create(self, layout: dict[str, Any]) -> None:
        """Create the collection for `layout` (see the module's notes)."""
        dim, mean = int(layout["dim"]), layout["prefetch"] == "mean"
        late = models.VectorParams(
            size=dim,
            distance=models.Distance.COSINE,
            multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
            hnsw_config=models.HnswConfigDiff(m=0),  # MaxSim scores the prefetched points; no graph over tokens
            datatype=models.Datatype(self.config.datatype),
            on_disk=self.config.on_disk or None,
        )
        prefetch = models.VectorParams(
            size=dim if mean else FDE_DIM, distance=models.Distance.COSINE if mean else models.Distance.DOT
        )
        sparse = {LEXICAL: models.SparseVectorParams(modifier=models.Modifier.IDF)} if layout["lexical"] else None
        self.request(
            self.client.create_collection,
            self.name,
            vectors_config={LATE: late, PREFETCH: prefetch},
            sparse_vectors_config=sparse,
            shard_number=self.config.shard_number,
            replication_factor=self.config.replication_factor,
            metadata={KEY: layout},
            write=True,
        )
        if self.config.url is not None:  # local mode has no payload indexes (and warns)
            for field, schema in (
                ("doc_id", "keyword"),
                ("write", "keyword"),
                ("live", "integer"),
                ("settled", "integer"),
                ("passage", "integer"),
            ):
                kind = models.PayloadSchemaType(schema)
                self.request(self.client.create_payload_index, self.name, field, kind, write=True)

    def layout(self) -> dict[str, Any]:
        """The layout recorded at `create`.

        Raises:
            IndexNotFoundError: no such collection.
            IndexCorruptError: the collection was not made by colbert-retriever.
            IndexVersionError: it was made in a format this version cannot read.
        """
        where = self.config.where
        if not self.exists():
            msg = f"no {where}; create it with ColBERT.create (or `colbert-retriever index`)"
            raise IndexNotFoundError(msg)
        metadata = self.request(self.client.get_collection, self.name).config.metadata or {}
        return check_layout(metadata.get(KEY), where)

    def scroll(self, where: models.Filter, *, payload: Any, vectors: Any = False) -> Iterator[Any]:
        """Every point that passes `where`, page by page."""
        offset = None
        while True:
            points, offset = self.request(
                self.client.scroll,
                self.name,
                scroll_filter=where,
                limit=1024,
                offset=offset,
                with_payload=payload,
                with_vectors=vectors,
            )
            yield from points
            if offset is None:
                return

    def count(self, where: models.Filter | None) -> int:
        return int(self.request(self.client.count, self.name, count_filter=where, exact=True).count)

    def upsert(self, points: list[models.PointStruct]) -> None:
        self.request(self.client.upsert, self.name, points, wait=True, write=True)

    def set_payload(self, payload: dict[str, Any], where: models.Filter) -> None:
        self.request(self.client.set_payload, self.name, payload, where, wait=True, write=True)

    def delete(self, where: models.Filter) -> None:
        self.request(self.client.delete, self.name, where, wait=True, write=True)

    def query(
        self,
        query: Any,
        using: str,
        prefetch: models.Prefetch | None,
        where: models.Filter,
        limit: int,
        *,
        vectors: bool = False,
    ) -> list[Scored]:
        """The `limit` best points by `query` on vector `using` (among `prefetch`'s, if
        given), with their token vectors if `vectors`."""
        found = self.request(
            self.client.query_points,
            self.name,
            query=query,
            using=using,
            prefetch=prefetch,
            query_filter=where,
            limit=limit,
            with_payload=True,
            with_vectors=[LATE] if vectors else False,
        )
        return [(p.score, p.payload or {}, p.id, late_vectors(p)) for p in found.points]

    def segments(self) -> int:
        return int(self.request(self.client.get_collection, self.name).segments_count or 0)

    def close(self) -> None:
        LOCAL_CLIENTS.release(self.client)

    def drop(self) -> None:
        """Delete the collection and close."""
        self.request(self.client.delete_collection, self.name, write=True)
        self.close()


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnexpectedResponse):
        return f"HTTP {exc.status_code} {exc.reason_phrase}: {exc.content.decode(errors='replace')[:200]}"
    return str(exc) or type(exc).__name__
