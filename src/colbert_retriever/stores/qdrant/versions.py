"""Versions of a document in a Qdrant collection: how concurrent writers agree on one, and
how readers show only it.

Qdrant makes one request atomic, not a write of many, and has no compare-and-set, so a write
is a protocol over its points' payloads:

1. upload   every row as a new point (ids unique to the write), `live` 0, `settled` 0,
            `version` a stamp later than any stored version of its document (`stamp`)
2. commit   one request sets `live` 1 on the write's points: readers may now see them
3. prune    every older version of the documents written is deleted (`prune`): whatever the
            order concurrent writers commit in, the newest (version, write) survives
4. settle   one request sets `settled` 1 on the write's points

A visible document has one version except between a write's commit and its prune, and then
some of its points are unsettled: readers that cannot rule that out (`exclusive` is False:
a server other processes write to) check the documents they found (`is_current`). Locally
(qdrant-client's local mode, Edge) one process owns the collection: its writers take turns
on a lock, steps 2-4 run while no request of its readers can, and opening the collection
finishes what a killed writer left. On a server, the next write does that (`recover`):
it prunes and settles any unsettled document, and deletes points uploaded but never
committed once they are `ABANDONED_AFTER` seconds old (a live writer may still commit them
before then).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from qdrant_client import models

from colbert_retriever.stores.qdrant.collection import equals, match, visible

if TYPE_CHECKING:
    from colbert_retriever.stores.qdrant.collection import Collection
    from colbert_retriever.stores.qdrant.edge import EdgeCollection

ABANDONED_AFTER = 3600.0
"""Seconds after which, on a server, a write's uncommitted points are taken for a dead writer's."""
_CHUNK = 256
_VERSION = ["doc_id", "passage", "version", "write"]


def version_key(payload: dict[str, Any]) -> tuple[int, str]:
    """The order of a document's versions: its stamp, then its write's token (unique)."""
    return int(payload["version"]), str(payload.get("write", ""))


def stamp(stored: int | None) -> int:
    """A new version's number: the clock in nanoseconds, but always past the `stored` one,
    so a write after another wins even where clocks disagree."""
    now = time.time_ns()
    return now if stored is None else max(now, stored + 1)


def newest_versions(points: Iterable[Any]) -> dict[str, list[Any]]:
    """Points by doc_id: each document's newest version, in passage order."""
    by_doc: dict[str, list[Any]] = {}
    for point in points:
        by_doc.setdefault(point.payload["doc_id"], []).append(point)
    for doc_id, found in by_doc.items():
        newest = max(version_key(p.payload) for p in found)
        current = [p for p in found if version_key(p.payload) == newest]
        by_doc[doc_id] = sorted(current, key=lambda p: p.payload["passage"])
    return by_doc


def prune(collection: Collection | EdgeCollection, doc_ids: Sequence[str]) -> list[Any]:
    """Delete every visible version of `doc_ids` but the newest; the ids of the points kept."""
    kept: list[Any] = []
    for start in range(0, len(doc_ids), _CHUNK):
        chunk = list(doc_ids[start : start + _CHUNK])
        points = list(
            collection.scroll(visible(match("doc_id", chunk)), payload=["doc_id", "passage", "version", "write"])
        )
        newest = {id(p) for found in newest_versions(points).values() for p in found}
        old = [p.id for p in points if id(p) not in newest]
        kept += [p.id for p in points if id(p) in newest]
        if old:
            collection.delete(models.Filter(must=[models.HasIdCondition(has_id=old)]))
    return kept


def settle(collection: Collection | EdgeCollection, points: list[Any]) -> None:
    """Mark `points` settled: their documents have no other visible version."""
    for start in range(0, len(points), 4 * _CHUNK):
        only = models.Filter(must=[models.HasIdCondition(has_id=points[start : start + 4 * _CHUNK])])
        collection.set_payload({"settled": 1}, only)


def recover(collection: Collection | EdgeCollection) -> None:
    """Finish what dead writers left: prune and settle the documents a commit left unsettled,
    and delete the points of writes that never committed (all of them when this process
    owns the collection; on a server, those older than `ABANDONED_AFTER`)."""
    uncommitted = [equals("live", 0)]
    if not collection.exclusive:
        uncommitted.append(models.FieldCondition(key="started", range=models.Range(lt=time.time() - ABANDONED_AFTER)))
    collection.delete(models.Filter(must=uncommitted))
    unsettled = {p.payload["doc_id"] for p in collection.scroll(visible(equals("settled", 0)), payload=["doc_id"])}
    if unsettled:
        settle(collection, prune(collection, sorted(unsettled)))


def is_current(collection: Collection | EdgeCollection, payloads: Sequence[dict[str, Any]]) -> list[bool]:
    """Whether each found point is of its document's newest visible version. Only a
    document with unsettled points can have two (see the module's notes), so this asks for
    the found documents' unsettled points, then, if any, for those documents' versions."""
    if collection.exclusive or not payloads:
        return [True] * len(payloads)
    found = sorted({p["doc_id"] for p in payloads})
    unsettled = visible(match("doc_id", found), equals("settled", 0))
    doubtful = sorted({p.payload["doc_id"] for p in collection.scroll(unsettled, payload=["doc_id"])})
    if not doubtful:
        return [True] * len(payloads)
    points = collection.scroll(visible(match("doc_id", doubtful)), payload=_VERSION)
    newest = {doc: version_key(ps[0].payload) for doc, ps in newest_versions(points).items()}
    return [p["doc_id"] not in newest or version_key(p) >= newest[p["doc_id"]] for p in payloads]
