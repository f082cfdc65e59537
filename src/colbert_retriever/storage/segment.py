"""Segments: write-once folders holding a batch of documents and their token vectors.

A segment folder holds three files, readable without this library:

* ``embeddings.npy``: (n_tokens, dim) float16, the documents' token vectors back to back;
* ``doclens.npy``: (n_documents,) int64, tokens per document, in order;
* ``documents.jsonl``: one ``{"doc_id", "text", "metadata"}`` object per document, in order.

A segment is never edited: deletes are tombstones (row numbers) in the manifest, and
compaction writes new segments.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colbert_retriever.errors import IndexCorruptError
from colbert_retriever.storage.atomic import fsync_dir, sha256_file, write_bytes, write_npy

FILES = ("embeddings.npy", "doclens.npy", "documents.jsonl")


@dataclass(frozen=True)
class Segment:
    """A loaded segment. `embeddings` is memory-mapped; nothing here is ever written.

    Attributes:
        name: Folder name under ``segments/``.
        embeddings: (n_tokens, dim) float16.
        offsets: (n_documents + 1,) int64; document i is rows offsets[i]:offsets[i+1].
        doc_ids, texts, metadata: Per document, in row order.
        deleted: (n_documents,) bool tombstones.
    """

    name: str
    embeddings: np.ndarray
    offsets: np.ndarray
    doc_ids: list[str]
    texts: list[str]
    metadata: list[dict[str, Any]]
    deleted: np.ndarray

    @property
    def live_rows(self) -> np.ndarray:
        return np.flatnonzero(~self.deleted)


def write_segment(
    folder: Path,
    doc_ids: Sequence[str],
    texts: Sequence[str],
    metadata: Sequence[dict[str, Any]],
    vectors: Sequence[np.ndarray],
) -> dict[str, Any]:
    """Write a new segment folder; return its manifest entry (counts and file checksums)."""
    folder.mkdir(parents=True)
    embeddings = np.concatenate(vectors, dtype=np.float16)  # (n_tokens, dim) float16
    doclens = np.array([len(v) for v in vectors], dtype=np.int64)  # (n_documents,) int64
    lines = (
        json.dumps({"doc_id": d, "text": t, "metadata": m}, ensure_ascii=False, allow_nan=False)
        for d, t, m in zip(doc_ids, texts, metadata, strict=True)
    )
    files = {
        "embeddings.npy": write_npy(folder / "embeddings.npy", embeddings),
        "doclens.npy": write_npy(folder / "doclens.npy", doclens),
        "documents.jsonl": write_bytes(folder / "documents.jsonl", ("\n".join(lines) + "\n").encode("utf-8")),
    }
    fsync_dir(folder.parent)
    return {
        "name": folder.name,
        "n_documents": len(doclens),
        "n_tokens": int(doclens.sum()),
        "deleted": [],
        "files": files,
    }


def load_segment(folder: Path, entry: dict[str, Any], *, verify: bool) -> Segment:
    """Load a segment listed in the manifest, checking every file's size (and checksum)."""
    for name in FILES:
        check_file(folder / name, entry["files"][name], verify=verify)
    try:
        # copy-on-write mapping: pages are shared and never written, and torch can wrap
        # the array without copying it (it refuses read-only arrays)
        embeddings = np.load(folder / "embeddings.npy", mmap_mode="c", allow_pickle=False)
        doclens = np.load(folder / "doclens.npy", allow_pickle=False)
        # "\n" only: str.splitlines would also split at U+0085 or U+2028 inside a text
        lines = (folder / "documents.jsonl").read_text("utf-8").split("\n")
        rows = [json.loads(line) for line in lines if line]
    except (OSError, ValueError) as exc:
        msg = f"cannot read segment {folder}: {exc}"
        raise IndexCorruptError(msg) from exc
    n_docs = entry["n_documents"]
    if len(doclens) != n_docs or len(rows) != n_docs or embeddings.shape[0] != int(doclens.sum()):
        msg = f"segment {folder} does not match its manifest entry (documents or tokens differ)"
        raise IndexCorruptError(msg)
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(doclens, out=offsets[1:])
    return Segment(
        name=folder.name,
        embeddings=embeddings,
        offsets=offsets,
        doc_ids=[r["doc_id"] for r in rows],
        texts=[r["text"] for r in rows],
        metadata=[r["metadata"] for r in rows],
        deleted=deleted_mask(entry),
    )


def deleted_mask(entry: dict[str, Any]) -> np.ndarray:
    """(n_documents,) bool tombstones of a manifest segment entry."""
    deleted = np.zeros(entry["n_documents"], dtype=bool)
    deleted[np.asarray(entry["deleted"], dtype=np.int64)] = True
    return deleted


def check_file(path: Path, expected: dict[str, Any], *, verify: bool) -> None:
    """Raise `IndexCorruptError` naming `path` if it is missing, of another size than the
    manifest says or (with `verify`) fails its sha256."""
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        msg = f"index file {path} is missing"
        raise IndexCorruptError(msg) from exc
    if size != expected["bytes"]:
        msg = f"index file {path} has {size} bytes, the manifest says {expected['bytes']} (truncated or overwritten)"
        raise IndexCorruptError(msg)
    if verify and sha256_file(path) != expected["sha256"]:
        msg = f"index file {path} fails its sha256 checksum (corrupted on disk)"
        raise IndexCorruptError(msg)
