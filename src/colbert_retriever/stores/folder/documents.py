"""A segment's documents on disk, read lazily: texts and metadata by row, rows by id.

Nothing is parsed when an index opens; a search reads only its hits' rows. Files:

* ``documents.zlib``: each row's JSON line, ``{"doc_id", "text", "metadata", "passage",
  "start"}``, compressed on its own by zlib with the preset dictionary ``documents.zdict``
  (up to 32 KiB of the segment's own lines), in row order. A row is a passage: `text` is the
  document's text from character `start` on; a document is its consecutive rows with passage
  numbers 0, 1, ... (one row, passage 0, for a text that fits the model). Compressing each
  line alone keeps one row readable alone (~25 us); the shared dictionary gives them the
  keys and words the lines have in common, so they shrink ~2.8x (SciFact: 8.8 -> 3.1 MB),
  against ~2.1x for lines compressed without it. Segments written before format 4 hold the
  lines uncompressed, ``documents.jsonl``, and are read as they are;
* ``passages.npy``: (n_rows,) int32 passage number of each row, so a search groups rows
  into documents without reading a line;
* ``document_offsets.npy``: (n_rows + 1,) int64 byte offset of each (compressed) line;
* ``id_index.npy``: (2, n_rows) uint64: the document ids' 64-bit hashes, sorted, above the
  rows they belong to (every passage of a document). Finding an id is a binary search,
  confirmed by reading the row's id, so a hash collision can never return another document;
* the metadata columns (see columns.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import zlib
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from colbert_retriever.atomic import FileInfo, read_error, write_bytes, write_npy
from colbert_retriever.errors import IndexCorruptError
from colbert_retriever.stores.folder import columns
from colbert_retriever.stores.protocol import Row

LINES, DICTIONARY = "documents.zlib", "documents.zdict"
PLAIN_LINES = "documents.jsonl"  # format 3
_OTHER_FILES = ("document_offsets.npy", "id_index.npy", "passages.npy", *columns.FILES)
FILES = (LINES, DICTIONARY, *_OTHER_FILES)
PLAIN_FILES = (PLAIN_LINES, *_OTHER_FILES)
_DICTIONARY_BYTES = 1 << 15  # zlib's window: the most of a preset dictionary it can use
_DICTIONARY_LINES = 200  # lines sampled into it (SciFact: ~20 of them fill 32 KiB)
_ID_PREFIX = b'{"doc_id": '  # how every line starts: the id can be read alone
_LINE = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


def hash_ids(doc_ids: Iterable[str]) -> np.ndarray:
    """(n,) uint64 stable hashes of ids (BLAKE2b, 8 bytes), the same in every process."""
    digests = b"".join(hashlib.blake2b(d.encode("utf-8"), digest_size=8).digest() for d in doc_ids)
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


MAP_BYTES = 1 << 20  # files from this size on are mapped; smaller ones are read whole


def load_array(path: Path, *, raw: bool = False, mode: Literal["r", "c"] = "r") -> np.ndarray:
    """An .npy array (or, `raw`, a file's bytes as uint8): mapped when the file is large, so
    its pages are read on demand and shared; read into memory when small, since every
    mapping holds a file descriptor for as long as it lives and an index of many small
    segments would otherwise run out of them. `mode` "c": a mapping torch can wrap (it
    refuses read-only arrays); its pages are never written."""
    if path.stat().st_size >= MAP_BYTES:  # a plain view: np.memmap's own indexing costs microseconds a call
        if raw:
            return np.asarray(np.memmap(path, dtype=np.uint8, mode=mode))
        return np.asarray(np.load(path, mmap_mode=mode, allow_pickle=False))
    if raw:
        return np.frombuffer(path.read_bytes(), dtype=np.uint8)
    return np.load(path, allow_pickle=False)


@contextlib.contextmanager
def reading(folder: Path) -> Iterator[None]:
    """Errors while opening a segment's files: an OS error (no descriptor left, no memory,
    an I/O error) stays an `OSError` that names the folder and the limit; what the files
    hold (a bad header, a missing file) is an `IndexCorruptError`."""
    try:
        yield
    except (FileNotFoundError, ValueError) as exc:
        msg = f"cannot read segment {folder}: {exc}"
        raise IndexCorruptError(msg) from exc
    except OSError as exc:
        raise read_error(exc, f"segment {folder}") from exc


def write_documents(folder: Path, rows: Sequence[Row]) -> dict[str, FileInfo]:
    """Write the document files of a segment; return their manifest entries."""
    lines = [
        _LINE.encode(
            {"doc_id": r.doc_id, "text": r.text, "metadata": r.metadata, "passage": r.passage, "start": r.start}
        ).encode("utf-8")
        + b"\n"
        for r in rows
    ]
    dictionary = _dictionary(lines)
    lines = [_compress(line, dictionary) for line in lines]
    doc_ids = [r.doc_id for r in rows]
    offsets = np.zeros(len(lines) + 1, dtype=np.int64)  # (n_rows + 1,) int64
    np.cumsum([len(line) for line in lines], out=offsets[1:])
    hashes = hash_ids(doc_ids)
    order = np.argsort(hashes, kind="stable")
    files = {
        LINES: write_bytes(folder / LINES, b"".join(lines)),
        DICTIONARY: write_bytes(folder / DICTIONARY, dictionary),
        "document_offsets.npy": write_npy(folder / "document_offsets.npy", offsets),
        "id_index.npy": write_npy(folder / "id_index.npy", np.stack([hashes[order], order.astype(np.uint64)])),
        "passages.npy": write_npy(folder / "passages.npy", np.array([r.passage for r in rows], dtype=np.int32)),
    }
    return files | columns.write_columns(folder, [r.metadata for r in rows])


def _dictionary(lines: Sequence[bytes]) -> bytes:
    """zlib's preset dictionary for a segment: lines spread evenly over it, the last 32 KiB
    of them (zlib reaches back that far)."""
    picks = np.linspace(0, len(lines) - 1, num=min(len(lines), _DICTIONARY_LINES)).astype(np.int64)
    return b"".join(lines[i] for i in picks)[-_DICTIONARY_BYTES:]


def _compress(line: bytes, dictionary: bytes) -> bytes:
    compressor = zlib.compressobj(9, zdict=dictionary)
    return compressor.compress(line) + compressor.flush()


class DocumentTable:
    """The documents of one segment, memory-mapped and read on demand (thread-safe: reads only).

    `plain`: the segment predates format 4 and holds its lines uncompressed."""

    def __init__(self, folder: Path, n_rows: int, *, plain: bool = False) -> None:
        self.folder = folder
        self.n_rows = n_rows
        self._file = PLAIN_LINES if plain else LINES

    def map(self) -> DocumentTable:
        """Open every file now (mapping the large ones, reading the small ones: see
        `load_array`); return self. What is open stays readable after a later commit removes
        the folder, so a search still on this state can read its hits' documents."""
        with reading(self.folder):
            for name in ("_lines", "_dictionary", "_offsets", "_id_index", "passages", "columns"):
                getattr(self, name)
        return self

    @cached_property
    def _lines(self) -> np.ndarray:
        return load_array(self.folder / self._file, raw=True)

    @cached_property
    def _dictionary(self) -> bytes | None:
        return None if self._file == PLAIN_LINES else (self.folder / DICTIONARY).read_bytes()

    @cached_property
    def _offsets(self) -> np.ndarray:
        return self._load("document_offsets.npy")

    @cached_property
    def _id_index(self) -> np.ndarray:
        return self._load("id_index.npy")

    @cached_property
    def passages(self) -> np.ndarray:
        """(n_rows,) int32 passage number of each row; a document starts at each 0."""
        return self._load("passages.npy")

    @cached_property
    def columns(self) -> columns.Columns:
        """The metadata columns, for filters."""
        arrays = {name.removesuffix(".npy"): self._load(name) for name in columns.FILES}
        return columns.Columns(arrays, self.n_rows)

    def structure_problem(self) -> str | None:
        """What is inconsistent between the documents file, its line offsets and the id
        index (reads the offsets and the index whole), or None."""
        offsets, id_index = self._offsets, self._id_index
        if offsets.shape != (self.n_rows + 1,) or offsets[0] != 0 or (np.diff(offsets.astype(np.int64)) <= 0).any():
            return "document_offsets.npy is not one increasing offset per document"
        if int(offsets[-1]) != len(self._lines):
            return f"document_offsets.npy does not end at the end of {self._file}"
        if id_index.shape != (2, self.n_rows) or not np.array_equal(np.sort(id_index[1]), np.arange(self.n_rows)):
            return "id_index.npy does not list each document row once"
        passages = self.passages.astype(np.int64)
        if passages.shape != (self.n_rows,) or (self.n_rows and passages[0] != 0):
            return "passages.npy does not hold one passage number per row, starting at 0"
        if ((passages[1:] != 0) & (passages[1:] != passages[:-1] + 1)).any():
            return "passages.npy does not number each document's passages 0, 1, ..."
        return None

    def _load(self, name: str) -> np.ndarray:
        with reading(self.folder):
            return load_array(self.folder / name)

    @cached_property
    def _dictionary_id(self) -> bytes:
        return zlib.adler32(self._dictionary or b"").to_bytes(4, "big")

    def _line(self, row: int) -> bytes:
        """Row `row`'s line. Each is a zlib stream (RFC 1950) naming the preset dictionary;
        it is inflated as raw deflate after its header is checked, because zlib's own path
        recomputes the dictionary's checksum for every stream, half the time of reading a
        row. The line's own checksum, in the stream's last 4 bytes, is still verified."""
        stored = bytes(self._lines[self._offsets[row] : self._offsets[row + 1]])
        if self._dictionary is None:
            return stored
        if len(stored) < 10 or stored[0] & 0x0F != 8 or not stored[1] & 0x20 or stored[2:6] != self._dictionary_id:
            raise self._unreadable(row, "its compressed line does not start with this segment's dictionary")
        inflater = zlib.decompressobj(wbits=-zlib.MAX_WBITS, zdict=self._dictionary)
        try:
            line = inflater.decompress(stored[6:-4])
        except zlib.error as exc:
            raise self._unreadable(row, exc) from exc
        if not inflater.eof or inflater.unused_data:
            raise self._unreadable(row, "its compressed line is cut short")
        if zlib.adler32(line).to_bytes(4, "big") != stored[-4:]:
            raise self._unreadable(row, "its line fails its checksum")
        return line

    def _unreadable(self, row: int, why: object) -> IndexCorruptError:
        return IndexCorruptError(f"cannot read document row {row} of {self.folder / self._file}: {why}")

    def read(self, rows: Iterable[int]) -> list[Row]:
        """The rows at `rows`, in that order."""
        out = []
        for row in rows:
            try:
                item = json.loads(self._line(row))
                out.append(
                    Row(item["doc_id"], item["text"], item["metadata"], int(item["passage"]), int(item["start"]))
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise self._unreadable(row, exc) from exc
        return out

    def read_ids(self, rows: Iterable[int]) -> list[str]:
        """The ids at `rows`, decoding only the start of each line (never the text)."""
        decoder = json.JSONDecoder()
        out = []
        for row in rows:
            line = self._line(row)
            try:
                if not line.startswith(_ID_PREFIX):
                    msg = "a line does not start with its doc_id"
                    raise ValueError(msg)
                doc_id, _ = decoder.raw_decode(line.decode("utf-8"), len(_ID_PREFIX))
            except ValueError as exc:
                raise self._unreadable(row, exc) from exc
            out.append(doc_id)
        return out

    def candidates(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows whose id hash is one of `hashes`: (index into `hashes`, row) int64 pairs.
        Confirm with `read_ids`: a hash match is not yet an id match."""
        sorted_hashes, rows = self._id_index[0], self._id_index[1]
        lo = np.searchsorted(sorted_hashes, hashes, side="left")
        counts = np.searchsorted(sorted_hashes, hashes, side="right") - lo
        which = np.repeat(np.arange(len(hashes)), counts)
        first = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))
        return which, rows[first].astype(np.int64)
