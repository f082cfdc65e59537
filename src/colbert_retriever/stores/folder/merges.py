"""The merge policy: which segments a write merges, so that an index built one document at a
time stays as few segments as one built in bulk.

Every write adds at least one segment. Segments are tiered by their live rows (passages):
tier t holds segments of MERGE_FACTOR**t to MERGE_FACTOR**(t+1) - 1 live rows. When a tier
fills up (MERGE_FACTOR segments), its segments are merged into one, of the next tier: as in
a log-structured merge tree (and Lucene's tiered policy), the number of segments grows with
the logarithm of the rows, and a row is rewritten at most once per tier it climbs. Segments
of `MAX_MERGED_TOKENS` tokens or more (what a bulk write or `compact` makes) are never merged
again: a merge is for what small writes leave behind. A segment that deletes shrink falls to
a lower tier by its live rows, and its next merge drops the deleted rows.

A merge re-encodes nothing: token vectors (or PLAID codes), texts, metadata and the
full-text side are copied from the merged segments' live rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from colbert_retriever.config import IndexConfig
from colbert_retriever.stores.folder import compression
from colbert_retriever.stores.folder.manifest import Manifest, SegmentEntry
from colbert_retriever.stores.folder.snapshot import Snapshot
from colbert_retriever.stores.folder.transaction import commit, write_exact

MERGE_FACTOR = 8
MAX_MERGED_TOKENS = 1 << 19  # as `compact` writes an exact index: ~2,000 passages, 128 MB at dim 128


def tier(entry: SegmentEntry) -> int:
    """The tier of a segment, by its live rows."""
    live = max(1, entry.n_rows - len(entry.deleted))
    return int(math.log(live, MERGE_FACTOR) + 1e-9)


def plan(segments: Sequence[SegmentEntry]) -> list[list[int]]:
    """Groups of segment numbers to merge, one group per full tier (empty: nothing to do).

    >>> def entry(rows): return SegmentEntry("s", n_rows=rows, n_documents=rows, n_tokens=rows * 10, files={})
    >>> plan([entry(1)] * 7 + [entry(9)])
    []
    >>> plan([entry(1)] * 8 + [entry(9)])
    [[0, 1, 2, 3, 4, 5, 6, 7]]
    """
    by_tier: dict[int, list[int]] = {}
    for seg_no, entry in enumerate(segments):
        if entry.n_tokens < MAX_MERGED_TOKENS:
            by_tier.setdefault(tier(entry), []).append(seg_no)
    return [members for _, members in sorted(by_tier.items()) if len(members) >= MERGE_FACTOR]


def merge(path: Path, config: IndexConfig, previous: Snapshot) -> Snapshot:
    """Merge what the policy asks for in `previous` (tier after tier, as merged segments
    fill the next tier), each merge one atomic commit; return the state after them. The
    plan is made again under the writer lock, on the latest state."""
    snap = previous
    while plan(snap.manifest.segments):

        def change(state: Snapshot, folders: list[Path]) -> Manifest | None:
            groups = plan(state.manifest.segments)
            if not groups:
                return None  # another writer merged them meanwhile
            merged = {seg_no for group in groups for seg_no in group}
            new = [_merged(path, state, group, folders) for group in groups]
            kept = [entry for seg_no, entry in enumerate(state.manifest.segments) if seg_no not in merged]
            return state.manifest.successor([*kept, *new], n_tokens=state.manifest.n_tokens, codec=state.manifest.codec)

        merged_snap = commit(path, config, snap, change)
        if merged_snap.generation == snap.generation:
            break  # nothing merged, or the merge could not be loaded: the next write tries again
        snap = merged_snap
    return snap


def _merged(path: Path, snap: Snapshot, group: Sequence[int], folders: list[Path]) -> SegmentEntry:
    """One new segment of the live rows of segments `group`, in order."""
    sources = [(snap.segments[seg_no], snap.segments[seg_no].live_rows) for seg_no in group]
    if snap.codec is not None:
        return compression.merge(path, snap, sources, folders)
    return write_exact(path, sources, folders, lexical=snap.manifest.lexical)
