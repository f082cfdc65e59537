"""`manifest.json`: the commit point of an index, as typed, frozen classes.

The manifest lists the live segments with their tombstones and file checksums, the codec of
a PLAID index, the model fingerprint and the counts. A file it does not list does not exist.
It is replaced atomically, last, so readers see either the old index or the new one.

This module is the only one that reads or writes it: `read_manifest` checks every field
(a wrong type or a folder name that is not a plain name is an `IndexCorruptError` naming the
field) before anything touches a file, and the rest of the library sees only `Manifest`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from colbert_retriever._version import __version__
from colbert_retriever.atomic import WRITER_PID, FileInfo, read_error, write_bytes
from colbert_retriever.config import IndexType, PlaidConfig
from colbert_retriever.errors import ColbertRetrieverError, IndexCorruptError, IndexNotFoundError, IndexVersionError

FORMAT_VERSION = 5
READABLE_VERSIONS = (3, 4, 5)  # 4: compressed texts, float16 centroids, 16-bit inverted lists; 5: BM25 lists in numpy
MANIFEST = "manifest.json"
STAGING = "staging"  # writers' segments before their commit (transaction.py)
_FOLDER_NAME = re.compile(r"[0-9A-Za-z_-]{1,128}")  # segment and codec folders: one plain component
_FILE_NAME = re.compile(r"[0-9A-Za-z_-][0-9A-Za-z_.-]{0,127}")
_INDEX_TYPES = ("exact", "plaid", "auto")


@dataclass(frozen=True)
class SegmentEntry:
    """A live segment: folder name under ``segments/``, counts, files, deleted rows.

    A row is one stored passage; a document is one or more consecutive rows of one
    segment (passages 0, 1, ...). `deleted_documents` counts the documents among `deleted`;
    `cut` lists rows whose text was longer than the model reads (stored without passages).
    """

    name: str
    n_rows: int
    n_documents: int
    n_tokens: int
    files: Mapping[str, FileInfo]
    deleted: tuple[int, ...] = ()
    deleted_documents: int = 0
    cut: tuple[int, ...] = ()


@dataclass(frozen=True)
class CodecEntry:
    """A PLAID index's codec: folder name under ``codecs/``, its shape and files.

    `tokens_at_training` is how many tokens it was trained on (retraining is advisable once
    the index holds several times that); `outlier_score` is the similarity below which a
    token counts as far from every centroid (drift).
    """

    name: str
    nbits: int
    dim: int
    n_centroids: int
    outlier_score: float
    tokens_at_training: int
    files: Mapping[str, FileInfo]


@dataclass(frozen=True)
class Manifest:
    """One committed state of an index. `lexical`: every segment holds a full-text index
    of its rows (lexical.py); absent from manifests written before it existed."""

    index_type: IndexType
    model: dict[str, Any]
    dim: int
    pool_factor: int = 1
    lexical: bool = False
    plaid: PlaidConfig | None = None
    codec: CodecEntry | None = None
    generation: int = 0
    n_documents: int = 0
    n_passages: int = 0
    n_tokens: int = 0
    segments: tuple[SegmentEntry, ...] = ()
    retired: tuple[str, ...] = ()  # folders dropped by the last commit: readers of the one before may need them
    dtype: str = "float16"
    format_version: int = FORMAT_VERSION
    library_version: str = field(default=__version__)

    def folders(self) -> list[tuple[str, str, Mapping[str, FileInfo]]]:
        """(parent folder, name, files) of every segment and of the codec."""
        out = [("segments", s.name, s.files) for s in self.segments]
        return out + ([("codecs", self.codec.name, self.codec.files)] if self.codec else [])

    def successor(self, segments: Sequence[SegmentEntry], *, n_tokens: int, codec: CodecEntry | None) -> Manifest:
        """The next state: these segments and codec; what this one listed and that one does
        not is retired (kept on disk one more commit for readers still loading this one)."""
        kept = {s.name for s in segments}
        retired = [s.name for s in self.segments if s.name not in kept]
        if self.codec is not None and (codec is None or codec.name != self.codec.name):
            retired.append(self.codec.name)
        return dataclasses.replace(
            self,
            library_version=__version__,
            generation=self.generation + 1,
            n_documents=sum(s.n_documents - s.deleted_documents for s in segments),
            n_passages=sum(s.n_rows - len(s.deleted) for s in segments),
            n_tokens=n_tokens,
            segments=tuple(segments),
            codec=codec,
            retired=tuple(retired),
        )


def read_manifest(folder: Path) -> Manifest:
    """Read and check `folder/manifest.json`.

    Raises:
        IndexNotFoundError: there is no manifest.
        IndexCorruptError: it is not JSON or a field is missing or malformed (named).
        IndexVersionError: another format version.
    """
    path = folder / MANIFEST
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        create = "create one with ColBERT.create or `colbert-retriever index`"
        msg = f"no index at {folder} ({MANIFEST} not found); {create}"
        raise IndexNotFoundError(msg) from exc
    except ValueError as exc:
        msg = f"index manifest {path} is not valid JSON (truncated or corrupted): {exc}"
        raise IndexCorruptError(msg) from exc
    except OSError as exc:
        raise read_error(exc, str(path)) from exc
    reader = _Reader(path)
    version = reader.get(raw, "format_version", int, "manifest")
    if version not in READABLE_VERSIONS:
        newer = version > FORMAT_VERSION
        readable = " and ".join(map(str, READABLE_VERSIONS))
        msg = f"index {folder} has format_version {version}, this library reads {readable}; " + (
            f"upgrade colbert-retriever (the index was written by {raw.get('library_version')})"
            if newer
            else "rebuild it with this version (format 3 stores long documents as passages)"
        )
        raise IndexVersionError(msg)
    return reader.manifest(raw)


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Commit `manifest`: the single atomic switch from the old index state to the new. It
    says this library's format: the segments it writes into an index of an older format
    are of its own, which older versions cannot read."""
    data = dataclasses.asdict(dataclasses.replace(manifest, format_version=FORMAT_VERSION))
    write_bytes(folder / MANIFEST, json.dumps(data, indent=1, ensure_ascii=False).encode("utf-8"))


def is_committed(path: Path, generation: int) -> bool:
    """Whether the manifest on disk is already `generation` (then its segments must stay).

    Unreadable counts as committed: keeping orphan segments is harmless, the next write
    collects them; deleting referenced ones would not be.
    """
    try:
        return read_manifest(path).generation == generation
    except (ColbertRetrieverError, OSError):
        return True


def collect_garbage(path: Path, manifest: Manifest) -> None:
    """Remove segment and codec folders no manifest refers to (left by a crashed writer, or
    retired by a commit that could not remove them: on Windows, a file still open)."""
    keep = {name for _, name, _ in manifest.folders()}
    for parent in (path / "segments", path / "codecs"):
        for folder in parent.iterdir() if parent.is_dir() else ():
            if folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)


def remove_retired(path: Path, manifest: Manifest) -> None:
    """Remove the folders `manifest` retires, right after its commit. A loaded state never
    reads its folders again (small files were read, large ones are mapped and stay readable
    after removal on POSIX), and a reader that was loading the state they belonged to loads
    the newer one (`snapshot.load_latest`); what cannot be removed now (an open file on
    Windows) goes with the next commit's `collect_garbage`."""
    for name in manifest.retired:
        for parent in (path / "segments", path / "codecs"):
            shutil.rmtree(parent / name, ignore_errors=True)


def index_exists(path: str | Path) -> bool:
    """Whether `path` holds an index (its manifest), without reading it."""
    return (Path(path) / MANIFEST).is_file()


def remove_unused_index(path: str | Path, *, remove_folder: bool) -> None:
    """Remove an index that never committed a write (what a failed first write leaves
    behind), and its folder too if `remove_folder`; an index with any commit stays."""
    path = Path(path)
    try:
        if read_manifest(path).generation != 0:
            return
    except ColbertRetrieverError:
        return
    for name in (MANIFEST, "segments", "codecs", STAGING, "write.lock", WRITER_PID):  # what create made
        target = path / name
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)
    if remove_folder:
        with contextlib.suppress(OSError):
            path.rmdir()  # only if nothing else is in it


class _Reader:
    """Typed reads of the manifest's JSON; every failure names the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> NoReturn:
        msg = f"index manifest {self.path}: {where} {problem}"
        raise IndexCorruptError(msg)

    def get(self, raw: object, key: str, kind: type, where: str) -> Any:
        if not isinstance(raw, dict):
            self.fail(where, f"must be an object, got {type(raw).__name__}")
        if key not in raw:
            self.fail(f"{where}.{key}", "is missing")
        value = raw[key]
        number = kind in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (number or (isinstance(value, kind) and not (kind is int and isinstance(value, bool)))):
            self.fail(f"{where}.{key}", f"must be {kind.__name__}, got {value!r:.60}")
        if kind is int and (value < 0 or value != int(value)):
            self.fail(f"{where}.{key}", f"must be a non-negative integer, got {value!r}")
        return float(value) if kind is float else value

    def name(self, value: object, where: str, pattern: re.Pattern[str] = _FOLDER_NAME) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            self.fail(where, f"names {value!r:.80}, which is not a plain file or folder name")
        return value

    def files(self, raw: object, where: str) -> dict[str, FileInfo]:
        files = self.get(raw, "files", dict, where)
        return {
            self.name(name, f"{where}.files", _FILE_NAME): FileInfo(
                bytes=self.get(info, "bytes", int, f"{where}.files.{name}"),
                sha256=self.get(info, "sha256", str, f"{where}.files.{name}"),
            )
            for name, info in files.items()
        }

    def rows(self, raw: object, key: str, n_rows: int, where: str) -> tuple[int, ...]:
        rows = self.get(raw, key, list, where)
        if not all(isinstance(r, int) and not isinstance(r, bool) and 0 <= r < n_rows for r in rows):
            self.fail(f"{where}.{key}", f"must list rows below n_rows={n_rows}")
        return tuple(sorted(set(rows)))

    def segment(self, raw: object, where: str) -> SegmentEntry:
        n_rows = self.get(raw, "n_rows", int, where)
        deleted = self.rows(raw, "deleted", n_rows, where)
        entry = SegmentEntry(
            name=self.name(self.get(raw, "name", str, where), f"{where}.name"),
            n_rows=n_rows,
            n_documents=self.get(raw, "n_documents", int, where),
            n_tokens=self.get(raw, "n_tokens", int, where),
            files=self.files(raw, where),
            deleted=deleted,
            deleted_documents=self.get(raw, "deleted_documents", int, where),
            cut=self.rows(raw, "cut", n_rows, where),
        )
        if not entry.deleted_documents <= entry.n_documents <= n_rows or entry.deleted_documents > len(deleted):
            self.fail(where, "has document counts that do not fit its rows")
        return entry

    def codec(self, raw: object) -> CodecEntry | None:
        if raw is None:
            return None
        return CodecEntry(
            name=self.name(self.get(raw, "name", str, "codec"), "codec.name"),
            nbits=self.get(raw, "nbits", int, "codec"),
            dim=self.get(raw, "dim", int, "codec"),
            n_centroids=self.get(raw, "n_centroids", int, "codec"),
            outlier_score=self.get(raw, "outlier_score", float, "codec"),
            tokens_at_training=self.get(raw, "tokens_at_training", int, "codec"),
            files=self.files(raw, "codec"),
        )

    def manifest(self, raw: dict[str, Any]) -> Manifest:
        index_type = self.get(raw, "index_type", str, "manifest")
        if index_type not in _INDEX_TYPES:
            self.fail("manifest.index_type", f"must be one of {_INDEX_TYPES}, got {index_type!r:.40}")
        plaid = raw.get("plaid")
        try:
            plaid_config = None if plaid is None else PlaidConfig(**plaid)
        except (TypeError, ValueError) as exc:
            self.fail("manifest.plaid", f"is not a PlaidConfig ({exc})")
        segments = self.get(raw, "segments", list, "manifest")
        retired = self.get(raw, "retired", list, "manifest")
        return Manifest(
            format_version=self.get(raw, "format_version", int, "manifest"),
            library_version=self.get(raw, "library_version", str, "manifest"),
            generation=self.get(raw, "generation", int, "manifest"),
            index_type=index_type,
            model=self.get(raw, "model", dict, "manifest"),
            dim=self.get(raw, "dim", int, "manifest"),
            dtype=self.get(raw, "dtype", str, "manifest"),
            pool_factor=self.get(raw, "pool_factor", int, "manifest"),
            lexical=self.get(raw, "lexical", bool, "manifest") if "lexical" in raw else False,
            plaid=plaid_config,
            codec=self.codec(raw.get("codec")),
            n_documents=self.get(raw, "n_documents", int, "manifest"),
            n_passages=self.get(raw, "n_passages", int, "manifest"),
            n_tokens=self.get(raw, "n_tokens", int, "manifest"),
            segments=tuple(self.segment(s, f"manifest.segments[{i}]") for i, s in enumerate(segments)),
            retired=tuple(self.name(r, "manifest.retired") for r in retired),
        )
