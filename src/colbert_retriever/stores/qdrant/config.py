"""`QdrantConfig`: where a retriever's documents live when they live in Qdrant.

Importing this module does not import qdrant-client (an optional extra), so the front door
and the CLI can name Qdrant without paying for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from colbert_retriever.errors import ConfigError

PrefetchVector = Literal["mean", "fde"]
Datatype = Literal["float32", "float16"]


@dataclass(frozen=True)
class QdrantConfig:
    """A Qdrant collection to store documents in, passed where an index folder would go::

        ColBERT.create(QdrantConfig(url="http://localhost:6333", collection="docs"), model=...)
        ColBERT.create(QdrantConfig(path="./qdrant-data"), model=...)   # in process, no server
        ColBERT.create(QdrantConfig(path=":memory:"), model=...)        # tests

    Give exactly one of `url` (a Qdrant server or cluster, through qdrant-client) and `path`
    (qdrant-client's local mode: a folder, or ":memory:"; with `edge=True`, a folder holding
    Qdrant Edge shards: Qdrant's engine in this process)::

        ColBERT.create(QdrantConfig(path="./shards", edge=True), model=...)   # pip install qdrant-edge-py

    Attributes:
        collection: The collection's name (created by `create`, read by `open`).
        url: A server, e.g. "http://localhost:6333" or a Qdrant Cloud URL.
        api_key: The server's API key, if it wants one.
        path: Local mode: a folder (one process at a time) or ":memory:"; with `edge`, the
            folder of the shard (one subfolder per collection).
        edge: Use Qdrant Edge (the `edge` extra) in `path` instead of qdrant-client's
            local mode: the real engine (HNSW, native MaxSim), ~100x faster searches.
        prefer_grpc: Talk gRPC (port 6334) instead of REST to the server.
        timeout: Seconds a request may take.
        shard_number: Shards of a new collection (a cluster spreads them over its nodes).
        replication_factor: Copies of each shard (a cluster keeps them on different nodes).
        datatype: How a new collection stores token vectors: "float32", or "float16" (half
            the memory and disk; what an exact index folder stores).
        on_disk: Keep a new collection's token vectors on disk (memory-mapped) instead of
            in RAM; the prefetch vectors and their HNSW graph stay in RAM.
        prefetch: The single vector per passage that preselects candidates over HNSW
            before exact MaxSim: "mean" (the mean of its token vectors, dim floats) or
            "fde" (a MUVERA fixed-dimensional encoding, 2,048 floats: see vectors.py
            and benchmarks/qdrant.py for which recovers more of exact MaxSim).
        prefetch_per_hit: Passages prefetched per hit asked for: a search for k documents
            scores max(`prefetch_min`, k x this) passages by MaxSim.
        prefetch_min: The fewest passages prefetched.
        upload_batch: Points per upload request.
        retries: Attempts after the first for a request that failed in transit (connection,
            timeout, 429, 5xx), waiting 0.5 s, 1 s, 2 s, ... between them.
        show_progress: An upload progress bar.
    """

    collection: str = "colbert"
    url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    path: str | None = None
    edge: bool = False
    prefer_grpc: bool = False
    timeout: int = 60
    shard_number: int | None = None
    replication_factor: int | None = None
    datatype: Datatype = "float32"
    on_disk: bool = False
    prefetch: PrefetchVector = "mean"
    prefetch_per_hit: int = 20
    prefetch_min: int = 200
    upload_batch: int = 64
    retries: int = 3
    show_progress: bool = True

    def __post_init__(self) -> None:
        if (self.url is None) == (self.path is None):
            msg = "QdrantConfig takes one of url= (a Qdrant server) and path= (local mode: a folder or ':memory:')"
            raise ConfigError(msg)
        if self.edge and (self.path is None or self.path == ":memory:"):
            msg = "a Qdrant Edge shard lives in a folder: QdrantConfig(path=FOLDER, edge=True)"
            raise ConfigError(msg)
        if not isinstance(self.collection, str) or not self.collection.strip() or "/" in self.collection:
            msg = f"collection must be a non-blank name without '/', got {self.collection!r}"
            raise ConfigError(msg)
        if self.datatype not in ("float32", "float16"):
            msg = f"datatype must be 'float32' or 'float16', got {self.datatype!r}"
            raise ConfigError(msg)
        if self.prefetch not in ("mean", "fde"):
            msg = f"prefetch must be 'mean' or 'fde', got {self.prefetch!r}"
            raise ConfigError(msg)
        for name in ("timeout", "prefetch_per_hit", "prefetch_min", "upload_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                msg = f"{name} must be a positive integer, got {value!r}"
                raise ConfigError(msg)
        for name in ("shard_number", "replication_factor"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                msg = f"{name} must be a positive integer or None, got {value!r}"
                raise ConfigError(msg)
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            msg = f"retries must be a non-negative integer, got {self.retries!r}"
            raise ConfigError(msg)

    @property
    def where(self) -> str:
        """The collection's location in messages (never the API key)."""
        engine = "Qdrant Edge shard" if self.edge else "Qdrant collection"
        return f"{engine} {self.collection!r} at {self.url or self.path}"

    def prefetch_limit(self, k: int) -> int:
        """Passages a search for `k` hits scores by MaxSim."""
        return max(self.prefetch_min, k * self.prefetch_per_hit)
