"""`manifest.json`: the commit point of an index.

The manifest lists the live segments with their tombstones and file checksums, the model
fingerprint and the counts. A file it does not list does not exist. It is replaced
atomically, last, so readers see either the old index or the new one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from colbert_retriever import __version__
from colbert_retriever.errors import ColbertRetrieverError, IndexCorruptError, IndexNotFoundError, IndexVersionError
from colbert_retriever.storage.atomic import write_bytes

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_REQUIRED = ("format_version", "generation", "index_type", "model", "dim", "dtype", "segments")


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read and check `folder/manifest.json`."""
    path = folder / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        msg = (
            f"no index at {folder} ({MANIFEST} not found); create one with ColBERT.create or `colbert-retriever index`"
        )
        raise IndexNotFoundError(msg) from exc
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        msg = f"index manifest {path} is not valid JSON (truncated or corrupted): {exc}"
        raise IndexCorruptError(msg) from exc
    if not isinstance(manifest, dict) or any(key not in manifest for key in _REQUIRED):
        msg = f"index manifest {path} lacks required fields {list(_REQUIRED)}"
        raise IndexCorruptError(msg)
    version = manifest["format_version"]
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        msg = f"index {folder} has format_version {version}, this library reads {FORMAT_VERSION}; " + (
            f"upgrade colbert-retriever (the index was written by {manifest.get('library_version')})"
            if newer
            else "rebuild the index"
        )
        raise IndexVersionError(msg)
    return manifest


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Commit `manifest`: the single atomic switch from the old index state to the new."""
    write_bytes(folder / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False).encode("utf-8"))


def next_manifest(
    manifest: dict[str, Any],
    doclens: Mapping[str, np.ndarray],
    tombstones: Mapping[str, set[int]],
    new_entries: list[dict[str, Any]],
) -> dict[str, Any]:
    """The manifest after a write: tombstones applied, emptied segments retired.

    Args:
        doclens: Per live segment name, its (n_documents,) token counts.
        tombstones: Per live segment name, every deleted row (old and new).
        new_entries: Entries of the segments this write added.
    """
    kept, retired, n_tokens = [], [], 0
    for entry in manifest["segments"]:
        deleted = sorted(tombstones[entry["name"]])
        if len(deleted) == entry["n_documents"]:
            retired.append(entry["name"])
            continue
        kept.append({**entry, "deleted": deleted})
        n_tokens += entry["n_tokens"] - int(doclens[entry["name"]][deleted].sum())
    return {
        **manifest,
        "library_version": __version__,
        "generation": manifest["generation"] + 1,
        "n_documents": sum(e["n_documents"] - len(e["deleted"]) for e in kept + new_entries),
        "n_tokens": n_tokens + sum(e["n_tokens"] for e in new_entries),
        "segments": kept + new_entries,
        "retired": retired,
    }


def is_committed(path: Path, generation: int) -> bool:
    """Whether the manifest on disk is already `generation` (then its segments must stay).

    Unreadable counts as committed: keeping orphan segments is harmless, the next write
    collects them; deleting referenced ones would not be.
    """
    try:
        return read_manifest(path)["generation"] == generation
    except (ColbertRetrieverError, OSError):
        return True


def collect_garbage(path: Path, manifest: dict[str, Any]) -> None:
    """Remove segment and codec folders no manifest refers to (left by a crashed writer, or
    retired one commit ago: a reader of the previous manifest may still be loading those)."""
    keep = {e["name"] for e in manifest["segments"]} | set(manifest.get("retired", []))
    if manifest.get("codec"):
        keep.add(manifest["codec"]["name"])
    for parent in (path / "segments", path / "codecs"):
        for folder in parent.iterdir() if parent.is_dir() else ():
            if folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)
