"""`manifest.json`: the commit point of an index.

The manifest lists the live segments with their tombstones and file checksums, the model
fingerprint and the counts. A file it does not list does not exist. It is replaced
atomically, last, so readers see either the old index or the new one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from colbert_retriever.errors import IndexCorruptError, IndexNotFoundError, IndexVersionError
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
