"""`QdrantStore`: the `Store` protocol on a Qdrant collection (a server, a cluster,
qdrant-client's local mode, or a Qdrant Edge shard), so `ColBERT` runs unchanged on an engine
that shards and replicates. The collection's layout and requests are in
collection.py (Edge: edge.py), searching in reader.py.

Writes: Qdrant makes one request atomic, not a write of many. A write uploads its points
invisible, in batches with retries; only when every batch is up does one request make them
visible, and the next ones delete the versions they replace (versions.py has the protocol).
A failed write removes what it uploaded and leaves the collection as it was; what a killed
writer left is cleaned by the next write (and, locally, by the next open). Writers of one
collection in this process take turns; writers in several processes (a server) may
interleave, and readers still see exactly one version of each document, the newest. The
duplicate-id check of `add` is not atomic with the upload across processes: two processes
adding one new id at once both succeed, and the later version is kept.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from qdrant_client import models
from tqdm.auto import tqdm

from colbert_retriever._version import __version__
from colbert_retriever.config import Mode, SearchConfig, Unit
from colbert_retriever.errors import DocumentNotFoundError, DuplicateIdError, IndexExistsError, StoreError
from colbert_retriever.filters import Filter
from colbert_retriever.results import Document, Hit, IndexInfo
from colbert_retriever.stores.protocol import DocumentBatch, Row, join_passages, new_document_ids
from colbert_retriever.stores.qdrant.collection import (
    FORMAT,
    LATE,
    LEXICAL,
    PREFETCH,
    Collection,
    connect,
    equals,
    match,
    point_id,
    visible,
)
from colbert_retriever.stores.qdrant.config import QdrantConfig
from colbert_retriever.stores.qdrant.filters import to_qdrant
from colbert_retriever.stores.qdrant.reader import QdrantReader, payload_row
from colbert_retriever.stores.qdrant.vectors import bm25_document, prefetch_vector
from colbert_retriever.stores.qdrant.versions import newest_versions, prune, recover, stamp
from colbert_retriever.validation import check_ids

if TYPE_CHECKING:
    from colbert_retriever.stores.qdrant.edge import EdgeCollection


class QdrantStore:
    """Documents and their token vectors in a Qdrant collection; implements `Store`.

    Build with `QdrantStore.create(config, model=..., dim=...)` or `QdrantStore.open(config)`;
    `ColBERT.create(QdrantConfig(...), model=...)` does it for you.
    """

    def __init__(
        self, collection: Collection | EdgeCollection, layout: dict[str, Any], search_config: SearchConfig
    ) -> None:
        self.collection = collection
        self.layout = layout
        self.search_config = search_config

    @classmethod
    def create(
        cls,
        config: QdrantConfig,
        *,
        model: dict[str, Any],
        dim: int,
        lexical: bool = True,
        exist_ok: bool = False,
        search_config: SearchConfig | None = None,
    ) -> QdrantStore:
        """Create the collection `config.collection` for `model`'s vectors of size `dim`.

        Raises:
            IndexExistsError: the collection exists and `exist_ok` is False.
            StoreError: the server could not be reached or refused.
        """
        layout = {
            "format": FORMAT,
            "library_version": __version__,
            "model": model,
            "dim": int(dim),
            "prefetch": config.prefetch,
            "lexical": bool(lexical),
        }
        collection = _collection(config)
        try:
            if collection.exists():
                if not exist_ok:
                    msg = f"{config.where} already exists; open it, or pass exist_ok=True"
                    raise IndexExistsError(msg)
                return cls(collection, collection.layout(), search_config or SearchConfig())
            collection.create(layout)
        except BaseException:
            collection.close()
            raise
        return cls(collection, layout, search_config or SearchConfig())

    @classmethod
    def open(cls, config: QdrantConfig, *, search_config: SearchConfig | None = None) -> QdrantStore:
        """Open the collection `config.collection`, made by `create`.

        Raises:
            IndexNotFoundError: no such collection.
            IndexCorruptError: the collection was not made by colbert-retriever.
            IndexVersionError: it was made in a format this version cannot read.
        """
        collection = _collection(config)
        try:
            layout = collection.layout()
            if collection.exclusive:  # nobody else writes here: finish what a killed writer left
                with collection.writer:
                    recover(collection)
        except BaseException:
            collection.close()
            raise
        return cls(collection, layout, search_config or SearchConfig())

    def close(self) -> None:
        """Release the client (a local-mode folder stays locked to this process until its last handle closes)."""
        self.collection.close()

    def drop(self) -> None:
        """Delete the whole collection, every document in it, and close."""
        self.collection.drop()

    @property
    def config(self) -> QdrantConfig:
        return self.collection.config

    @property
    def model(self) -> dict[str, Any]:
        """Fingerprint of the encoder the collection was filled with."""
        return dict(self.layout["model"])

    @property
    def dim(self) -> int:
        return int(self.layout["dim"])

    @property
    def lexical(self) -> bool:
        return bool(self.layout["lexical"])

    @property
    def docs_per_batch(self) -> int:
        """Rows encoded per batch by `ColBERT.add`; each goes up in `upload_batch` requests."""
        return 256

    def __len__(self) -> int:
        return self.collection.count(visible(equals("passage", 0)))

    @property
    def n_passages(self) -> int:
        return self.collection.count(visible())

    def __repr__(self) -> str:
        return f"QdrantStore({self.config.where})"

    def doc_ids(self, filters: Filter | None = None) -> list[str]:
        """Ids of the stored documents (passing `filters`, if given; reads every one)."""
        user = to_qdrant(filters)
        where = visible(equals("passage", 0), *([user] if user is not None else []))
        return [p.payload["doc_id"] for p in self.collection.scroll(where, payload=["doc_id"]) if p.payload]

    def get(self, doc_ids: Sequence[str]) -> list[Document]:
        """The stored documents for `doc_ids`, in order.

        Raises:
            DocumentNotFoundError: naming the ids that are not in the collection.
        """
        doc_ids = check_ids(doc_ids)
        found = self._rows(doc_ids)
        missing = [d for d in doc_ids if d not in found]
        if missing:
            msg = f"{len(missing)} id(s) not in {self.config.where}: {missing[:5]}"
            raise DocumentNotFoundError(msg)
        out = []
        for doc_id in doc_ids:
            rows = [payload_row(point.payload) for point in found[doc_id]]
            out.append(Document(doc_id=doc_id, text=join_passages(rows), metadata=rows[0].metadata))
        return out

    def passages(self, doc_id: str, numbers: Sequence[int] | None = None) -> list[tuple[Row, np.ndarray]]:
        """Each stored passage of `doc_id` (those numbered `numbers`, if given) with its
        (n_tokens, dim) float32 token vectors.

        Raises:
            DocumentNotFoundError: `doc_id` is not in the collection.
        """
        return self.reader().passages(doc_id, numbers)

    def reader(self, filters: Filter | None = None, *, vectors: bool = False) -> QdrantReader:
        """The collection's visible points passing `filters`, for one search (see
        `stores.protocol.Reader`); `vectors`: keep the token vectors of the points it reads.

        Raises:
            ConfigError: a bad filter (naming the operator).
        """
        return QdrantReader(self.collection, self.layout, to_qdrant(filters), vectors=vectors)

    def write(
        self,
        batches: Iterable[DocumentBatch],
        *,
        delete: Sequence[str] = (),
        upsert: bool = False,
        missing_ok: bool = False,
    ) -> None:
        """Delete `delete`, then add `batches`: visible together once every batch is up
        (see the module's notes on what Qdrant makes atomic).

        Raises:
            DuplicateIdError: an added id is repeated, or (without `upsert`) already stored.
            DocumentNotFoundError: an id of `delete` is not stored (unless `missing_ok`).
            IndexWriteError: Qdrant refused a request, after retries; nothing became visible.
        """
        delete = check_ids(delete)
        with self.collection.writer:
            recover(self.collection)
            versions = self._versions(delete)
            missing = [d for d in delete if d not in versions]
            if missing and not missing_ok:
                msg = f"{len(missing)} id(s) not in {self.config.where}: {missing[:5]}"
                raise DocumentNotFoundError(msg)
            token = uuid.uuid4().hex
            mine = models.Filter(must=[equals("write", token)])
            try:
                replaced, written = self._upload(batches, versions, token, upsert=upsert)
            except BaseException:
                self._discard(token)
                raise
            with self.collection.requests:  # no read of this process sees half of what follows
                try:
                    self.collection.set_payload({"live": 1}, mine)
                except BaseException:
                    self._discard(token)
                    raise
                gone = sorted(replaced - written)
                if gone:
                    self.collection.delete(models.Filter(must=[match("doc_id", gone)], must_not=[mine]))
                prune(self.collection, sorted(written if not self.collection.exclusive else written & replaced))
                self.collection.set_payload({"settled": 1}, mine)

    def delete(self, doc_ids: Sequence[str], *, missing_ok: bool = False) -> None:
        """Remove documents by id, every passage of each (all must exist unless `missing_ok`)."""
        self.write((), delete=doc_ids, missing_ok=missing_ok)

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
        """Top-k per query through the search pipeline, as `Index.search` (whose arguments
        these are): MaxSim over the passages a prefetch over HNSW finds; BM25 over the sparse
        vectors and both fused in hybrid mode."""
        from colbert_retriever.pipeline.search import search  # the pipeline sits above the stores

        return search(self.reader(filters), queries, k=k, config=self.search_config, unit=unit, mode=mode, texts=texts)

    def info(self) -> IndexInfo:
        """Counts and model of the collection. `tokens` reads every point's payload (a full
        scan); `bytes` is 0: Qdrant does not report a collection's size."""
        tokens = sum(
            p.payload["n_tokens"] for p in self.collection.scroll(visible(), payload=["n_tokens"]) if p.payload
        )
        return IndexInfo(
            path=str(self.config.url or self.config.path),
            collection=self.config.collection,
            index_type="qdrant",
            format_version=FORMAT,
            library_version=str(self.layout.get("library_version", "")),
            documents=len(self),
            passages=self.n_passages,
            cut=0,
            tokens=int(tokens),
            bytes=0,
            dim=self.dim,
            dtype="float32",
            segments=self.collection.segments(),
            deleted=0,
            model=self.model,
            lexical=self.lexical,
        )

    def _upload(
        self, batches: Iterable[DocumentBatch], versions: dict[str, int], token: str, *, upsert: bool
    ) -> tuple[set[str], set[str]]:
        """Upload `batches` as uncommitted points of the write `token`; the ids it replaces
        (`versions`' and the stored ones it upserts) and the ids it writes."""
        replaced, written, started = set(versions), set[str](), time.time()
        with tqdm(desc="Uploading", unit="point", disable=not self.config.show_progress) as bar:
            for batch in batches:
                ids = new_document_ids(batch.checked_rows(self.dim, upsert=upsert), written, upsert=upsert)
                stored = self._versions([d for d in ids if d not in versions])
                if stored and not upsert:
                    msg = f"{len(stored)} id(s) already in {self.config.where}: {sorted(stored)[:5]}; use upsert"
                    raise DuplicateIdError(msg)
                versions |= stored
                replaced |= set(stored)
                points = self._points(batch, {d: stamp(versions.get(d)) for d in ids}, token, started)
                for start in range(0, len(points), self.config.upload_batch):
                    chunk = points[start : start + self.config.upload_batch]
                    self.collection.upsert(chunk)
                    bar.update(len(chunk))
        return replaced, written

    def _points(
        self, batch: DocumentBatch, versions: dict[str, int], token: str, started: float
    ) -> list[models.PointStruct]:
        n = len(batch.ids)
        metadata, passages, starts = batch.metadata or [{}] * n, batch.passages or [0] * n, batch.starts or [0] * n
        points = []
        for i, doc_id in enumerate(batch.ids):
            tokens = np.asarray(batch.vectors[i], dtype=np.float32)
            vector: dict[str, Any] = {
                LATE: tokens.tolist(),
                PREFETCH: prefetch_vector(tokens, self.layout["prefetch"], query=False).tolist(),
            }
            if self.lexical:
                indices, values = bm25_document(batch.texts[i])
                vector[LEXICAL] = models.SparseVector(indices=indices, values=values)
            payload = {
                "doc_id": doc_id,
                "passage": passages[i],
                "start": starts[i],
                "text": batch.texts[i],
                "metadata": metadata[i] or {},
                "n_tokens": len(tokens),
                "version": versions[doc_id],
                "live": 0,
                "settled": 0,
                "write": token,
                "started": started,
            }
            points.append(models.PointStruct(id=point_id(doc_id, passages[i], token), vector=vector, payload=payload))
        return points

    def _discard(self, token: str) -> None:
        """Remove what a failed write uploaded (best effort: they stay invisible if this fails too)."""
        with contextlib.suppress(StoreError):
            self.collection.delete(models.Filter(must=[equals("write", token)]))

    def _versions(self, doc_ids: Sequence[str]) -> dict[str, int]:
        """The stored version of each of `doc_ids` that is in the collection."""
        if not doc_ids:
            return {}
        first = visible(match("doc_id", list(doc_ids)), equals("passage", 0))
        points = self.collection.scroll(first, payload=["doc_id", "version"])
        versions: dict[str, int] = {}
        for p in points:
            if p.payload:
                versions[p.payload["doc_id"]] = max(versions.get(p.payload["doc_id"], -1), p.payload["version"])
        return versions

    def _rows(self, doc_ids: Sequence[str]) -> dict[str, list[Any]]:
        """The points of each stored document of `doc_ids`, newest version, in passage order."""
        return newest_versions(self.collection.scroll(visible(match("doc_id", list(doc_ids))), payload=True))


def _collection(config: QdrantConfig) -> Collection | EdgeCollection:
    if config.edge:
        from colbert_retriever.stores.qdrant.edge import EdgeCollection

        return EdgeCollection(config)
    return Collection(connect(config), config)
