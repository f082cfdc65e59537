"""The collection layout of collection.py in a Qdrant Edge shard (`qdrant-edge-py`):
Qdrant's own engine (HNSW, MaxSim, sparse vectors, payload filters) inside this process,
with no server. The store builds its requests with qdrant-client's models; this module
translates each one to Edge's types, so both engines answer the same requests.

Edge has no collection metadata: the layout lives in `colbert_retriever.json` beside the
shard's files.
qdrant-edge-py 0.9 reads a bool in a match as an integer, so a filter on a true/false value is
refused here (the store's own flag `live` is 0 or 1 for that reason).
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from qdrant_client import models

from colbert_retriever.atomic import write_bytes
from colbert_retriever.errors import (
    ConfigError,
    IndexCorruptError,
    IndexNotFoundError,
    MissingDependencyError,
    StoreError,
)
from colbert_retriever.stores.qdrant.collection import (
    KEY,
    LATE,
    LEXICAL,
    PREFETCH,
    Scored,
    SharedHandles,
    check_layout,
    late_vectors,
    lock,
)
from colbert_retriever.stores.qdrant.config import QdrantConfig
from colbert_retriever.stores.qdrant.vectors import FDE_DIM

LAYOUT = f"{KEY}.json"
SHARDS = SharedHandles()  # Edge locks a shard's write-ahead log per handle

try:
    import qdrant_edge as qe
except ImportError:  # pragma: no cover (the edge extra)
    qe = None  # type: ignore[assignment]


class EdgeCollection:
    """A Qdrant Edge shard in the folder `config.path`, with the same methods as `Collection`."""

    def __init__(self, config: QdrantConfig) -> None:
        if qe is None:
            msg = "a Qdrant Edge store needs qdrant-edge-py: pip install 'colbert-retriever[edge]'"
            raise MissingDependencyError(msg)
        self.config, self.name, self.folder = config, config.collection, Path(str(config.path)) / config.collection
        self._shard: Any = None
        self.exclusive = True  # Edge locks the shard's files to one process
        self.writer = lock(f"write {self.folder.resolve()}")
        self.requests = lock(f"shard {self.folder.resolve()}")

    def request(self, call: Any, *args: Any, write: bool = False, **kwargs: Any) -> Any:
        try:
            with self.requests:
                return call(*args, **kwargs)
        except Exception as exc:  # the engine raises plain Exceptions ("Service runtime error: ...")
            msg = f"{self.config.where} {'refused a write' if write else 'failed a request'}: {exc}"
            raise StoreError(msg) from exc

    @property
    def shard(self) -> Any:
        """The shard, loaded once per folder in this process (Edge locks its files per handle)."""
        if self._shard is None:
            key = str(self.folder.resolve())
            self._shard = SHARDS.acquire(key, lambda: self.request(qe.EdgeShard.load, key))
        return self._shard

    def exists(self) -> bool:
        return (self.folder / LAYOUT).is_file()

    def create(self, layout: dict[str, Any]) -> None:
        dim, mean = int(layout["dim"]), layout["prefetch"] == "mean"
        datatype = qe.VectorStorageDatatype.Float16 if self.config.datatype == "float16" else None
        vectors = {
            LATE: qe.EdgeVectorParams(
                size=dim,
                distance=qe.Distance.Cosine,
                multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
                hnsw_config=qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10_000),
                datatype=datatype,
                on_disk=self.config.on_disk or None,
            ),
            PREFETCH: qe.EdgeVectorParams(
                size=dim if mean else FDE_DIM, distance=qe.Distance.Cosine if mean else qe.Distance.Dot
            ),
        }
        sparse = {LEXICAL: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)} if layout["lexical"] else None
        config = qe.EdgeConfig(vectors=vectors, sparse_vectors=sparse)
        self._shard = SHARDS.acquire(
            str(self.folder.resolve()), lambda: self.request(qe.EdgeShard.create, str(self.folder), config, write=True)
        )
        kinds = {"doc_id": "Keyword", "write": "Keyword", "live": "Integer", "settled": "Integer", "passage": "Integer"}
        for field, kind in kinds.items():  # filtered searches and scrolls use them
            self._update(qe.UpdateOperation.create_field_index(field, getattr(qe.PayloadSchemaType, kind)))
        write_bytes(self.folder / LAYOUT, json.dumps(layout).encode())

    def layout(self) -> dict[str, Any]:
        if not self.exists():
            msg = f"no {self.config.where}; create it with ColBERT.create (or `colbert-retriever index`)"
            raise IndexNotFoundError(msg)
        try:
            layout = json.loads((self.folder / LAYOUT).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            msg = f"{self.config.where}: {LAYOUT} is unreadable ({exc})"
            raise IndexCorruptError(msg) from exc
        return check_layout(layout, self.config.where)

    def scroll(self, where: models.Filter, *, payload: Any, vectors: Any = False) -> Any:
        offset = None
        while True:
            request = qe.ScrollRequest(
                offset=offset, limit=1024, filter=_filter(where), with_payload=payload, with_vector=vectors
            )
            points, offset = self.request(self.shard.scroll, request)
            yield from points
            if offset is None:
                return

    def count(self, where: models.Filter | None) -> int:
        return int(self.request(self.shard.count, qe.CountRequest(exact=True, filter=_filter(where))))

    def upsert(self, points: list[models.PointStruct]) -> None:
        converted = [qe.Point(p.id, _vector(p.vector), p.payload) for p in points]
        self._update(qe.UpdateOperation.upsert_points(converted), flush=False)  # invisible until committed

    def set_payload(self, payload: dict[str, Any], where: models.Filter) -> None:
        self._update(qe.UpdateOperation.set_payload_by_filter(_filter(where), payload))

    def delete(self, where: models.Filter) -> None:
        self._update(qe.UpdateOperation.delete_points_by_filter(_filter(where)))

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
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Query.Nearest(_query_vector(query), using=using),
            prefetches=[_prefetch(prefetch)] if prefetch is not None else None,
            filter=_filter(where),
            with_payload=True,
            with_vector=[LATE] if vectors else False,
        )
        return [(p.score, p.payload or {}, p.id, late_vectors(p)) for p in self.request(self.shard.query, request)]

    def segments(self) -> int:
        return int(self.request(self.shard.info).segments_count)

    def optimize(self) -> None:
        """Build the shard's indexes (HNSW) now rather than as segments fill."""
        self.request(self.shard.optimize, write=True)

    def close(self) -> None:
        """Let go of the shard; the last handle on its folder closes it."""
        if self._shard is not None:
            SHARDS.release(self._shard)
            self._shard = None

    def drop(self) -> None:
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _update(self, operation: Any, *, flush: bool = True) -> None:
        self.request(self.shard.update, operation, write=True)
        if flush:
            self.request(self.shard.flush, write=True)


def _vector(vector: Any) -> dict[str, Any]:
    return {name: _query_vector(value) for name, value in vector.items()}


def _query_vector(value: Any) -> Any:
    if isinstance(value, models.SparseVector):
        return qe.SparseVector(indices=list(value.indices), values=list(value.values))
    return value


def _prefetch(prefetch: models.Prefetch) -> Any:
    query = qe.Query.Nearest(_query_vector(prefetch.query), using=prefetch.using)
    return qe.Prefetch(limit=prefetch.limit, query=query, filter=_filter(prefetch.filter))  # type: ignore[arg-type]


def _filter(where: Any) -> Any:
    """A qdrant-client filter (as filters.py and the store build them) in Edge's types."""
    if where is None:
        return None
    return qe.Filter(
        must=_conditions(where.must), should=_conditions(where.should), must_not=_conditions(where.must_not)
    )


def _conditions(conditions: Any) -> list[Any] | None:
    if not conditions:
        return None
    return [_condition(c) for c in (conditions if isinstance(conditions, list) else [conditions])]


def _condition(condition: Any) -> Any:
    if isinstance(condition, models.Filter):
        return _filter(condition)
    if isinstance(condition, models.IsEmptyCondition):
        return qe.IsEmptyCondition(condition.is_empty.key)
    if isinstance(condition, models.IsNullCondition):
        return qe.IsNullCondition(condition.is_null.key)
    if isinstance(condition, models.HasIdCondition):
        return qe.HasIdCondition(set(condition.has_id))
    if isinstance(condition, models.FieldCondition):
        if isinstance(condition.match, models.MatchValue):
            if isinstance(condition.match.value, bool):  # qdrant-edge-py 0.9 matches it as the integer 0 or 1
                msg = f"filter on {condition.key!r}: Qdrant Edge cannot match true or false yet; store 0 or 1"
                raise ConfigError(msg)
            return qe.FieldCondition(condition.key, match=qe.MatchValue(condition.match.value))
        if isinstance(condition.match, models.MatchAny):
            return qe.FieldCondition(condition.key, match=qe.MatchAny(cast("list[str]", list(condition.match.any))))
        if isinstance(condition.range, models.DatetimeRange):
            bounds = {k: _iso(v) for k, v in condition.range.model_dump(exclude_none=True).items()}
            return qe.FieldCondition(condition.key, range=qe.RangeDateTime(**bounds))
        if isinstance(condition.range, models.Range):
            return qe.FieldCondition(
                condition.key, range=qe.RangeFloat(**condition.range.model_dump(exclude_none=True))
            )
    msg = f"no Qdrant Edge form for the condition {condition!r:.80}"
    raise ConfigError(msg)


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
