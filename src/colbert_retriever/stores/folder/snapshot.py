"""One committed state of an index, loaded: what a search or a write sees from start to end.

Loading maps arrays and reads no document: ids are found through each segment's stored id
index (documents.py), so opening costs the same at a thousand documents or a million.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from colbert_retriever.errors import IndexCorruptError
from colbert_retriever.results import IndexInfo
from colbert_retriever.stores.folder.codec import ResidualCodec
from colbert_retriever.stores.folder.documents import hash_ids
from colbert_retriever.stores.folder.manifest import MANIFEST, Manifest, read_manifest
from colbert_retriever.stores.folder.segment import Segment, check_files, check_structure, deleted_mask, load_segment

_LOAD_TRIES = 5


@dataclass(frozen=True)
class Snapshot:
    """A manifest with its segments and codec loaded (memory-mapped)."""

    manifest: Manifest
    segments: tuple[Segment, ...]
    codec: ResidualCodec | None  # a PLAID index's, once trained

    @property
    def generation(self) -> int:
        return self.manifest.generation

    @cached_property
    def live_words(self) -> int:
        """Words (stems) in the live rows of the whole index: BM25's average row length
        is this over `manifest.n_passages`."""
        return sum(int(seg.lexical.lengths[~seg.deleted].sum()) for seg in self.segments if seg.lexical is not None)

    def locate(self, doc_ids: Sequence[str]) -> dict[str, tuple[int, list[int]]]:
        """(segment number, rows in passage order) of each of `doc_ids` that is a live document."""
        found: dict[str, tuple[int, list[int]]] = {}
        if not doc_ids:
            return found
        hashes = hash_ids(doc_ids)
        for seg_no, segment in enumerate(self.segments):
            which, rows = segment.documents.candidates(hashes)
            live = ~segment.deleted[rows]
            which, rows = which[live], rows[live]
            for i, row, stored in zip(which.tolist(), rows.tolist(), segment.documents.read_ids(rows), strict=True):
                if stored == doc_ids[i]:
                    found.setdefault(stored, (seg_no, []))[1].append(row)
        for _, found_rows in found.values():
            found_rows.sort()
        return found

    def verify(self, path: Path) -> None:
        """Re-read every file under `path` against its sha256 and check the structure of
        every segment's arrays; `IndexCorruptError` names the first problem."""
        for parent, name, files in self.manifest.folders():
            check_files(path / parent / name, files, verify=True)
        nbits = self.manifest.plaid.nbits if self.manifest.plaid else 0
        n_centroids = len(self.codec.centroids) if self.codec is not None else 0
        for segment in self.segments:
            check_structure(
                path / "segments" / segment.name,
                segment,
                dim=self.manifest.dim,
                n_centroids=n_centroids,
                packed_width=self.manifest.dim * nbits // 8,
            )

    def info(self, path: Path) -> IndexInfo:
        """Counts, size on disk, format and model of this state of the index at `path`."""
        manifest = self.manifest
        codec = manifest.codec
        return IndexInfo(
            path=str(path),
            index_type="plaid" if codec or manifest.index_type == "plaid" else "exact",
            format_version=manifest.format_version,
            library_version=manifest.library_version,
            documents=manifest.n_documents,
            passages=manifest.n_passages,
            cut=sum(len(set(entry.cut) - set(entry.deleted)) for entry in manifest.segments),
            tokens=manifest.n_tokens,
            bytes=sum(f.bytes for _, _, files in manifest.folders() for f in files.values())
            + (path / MANIFEST).stat().st_size,
            dim=manifest.dim,
            dtype=manifest.dtype,
            segments=len(manifest.segments),
            deleted=sum(len(entry.deleted) for entry in manifest.segments),
            model=dict(manifest.model),
            nbits=manifest.plaid.nbits if manifest.plaid else None,
            centroids=codec.n_centroids if codec else 0,
            tokens_at_training=codec.tokens_at_training if codec else 0,
            pool_factor=manifest.pool_factor,
            auto=manifest.index_type == "auto",
            lexical=manifest.lexical,
        )

    def live_ids(self, accept: Callable[[Segment], np.ndarray] | None = None) -> list[str]:
        """Ids of the live documents (those `accept` passes: a row mask per segment), in
        storage order (reads each one's id)."""
        out = []
        for seg in self.segments:
            keep = ~seg.deleted & (seg.documents.passages == 0)
            if accept is not None:
                keep &= accept(seg)
            out.extend(seg.documents.read_ids(np.flatnonzero(keep).tolist()))
        return out


def load_snapshot(path: Path, manifest: Manifest, *, previous: Snapshot | None, verify: bool) -> Snapshot:
    """Load the segments and codec `manifest` lists, reusing those already loaded in `previous`."""
    loaded = {seg.name: seg for seg in previous.segments} if previous else {}
    segments = []
    for entry in manifest.segments:
        if entry.name in loaded:
            segments.append(dataclasses.replace(loaded[entry.name], deleted=deleted_mask(entry)))
        else:
            segments.append(load_segment(path / "segments" / entry.name, entry, verify=verify))
    for segment in segments:
        if (segment.lexical is not None) != manifest.lexical:
            problem = "lacks the full-text index" if manifest.lexical else "has a full-text index"
            msg = f"index {path}: segment {segment.name} {problem}, against the manifest's lexical={manifest.lexical}"
            raise IndexCorruptError(msg)
    codec_entry = manifest.codec
    if codec_entry is None:
        codec = None
    elif previous is not None and previous.codec is not None and previous.manifest.codec == codec_entry:
        codec = previous.codec
    else:
        codec = ResidualCodec.load(path / "codecs" / codec_entry.name, codec_entry, verify=verify)
    return Snapshot(manifest=manifest, segments=tuple(segments), codec=codec)


def load_latest(path: Path, *, previous: Snapshot | None, verify: bool) -> Snapshot:
    """The state the manifest names now. A commit removes the folders it retires at once, so
    a load can find a folder of the state it read gone: when the manifest has moved on
    meanwhile, the newer state is loaded instead (a few tries: writers commit in milliseconds)."""
    for _ in range(_LOAD_TRIES):
        manifest = read_manifest(path)
        try:
            return load_snapshot(path, manifest, previous=previous, verify=verify)
        except (IndexCorruptError, OSError):  # a file gone (removed, or mid-removal)
            if read_manifest(path).generation == manifest.generation:
                raise  # the state is as it was read: damaged, or the OS refused, not retired
    return load_snapshot(path, read_manifest(path), previous=previous, verify=verify)
