"""Segments: write-once folders holding a batch of documents and their token vectors.

Every segment folder holds, readable without this library:

* ``doclens.npy``: (n_rows,) int64, tokens per document, in order;
* the documents, read lazily (see documents.py: their compressed JSON lines, the
  lines' offsets, an id index and the metadata columns);
* in an index with a lexical side, ``lexical_*.npy``: the inverted lists of the rows' words
  (lexical.py; ``lexical.sqlite``, an FTS5 table, in segments of format 4 and before);

and the token vectors, back to back, either exact (exact index):

* ``embeddings.npy``: (n_tokens, dim) float16;

or compressed (PLAID index; see codec.py for the codec they need):

* ``codes.npy``: (n_tokens,) nearest centroid of each token (uint16, or int32 past 65,536
  centroids);
* ``residuals.npy``: (n_tokens, dim * nbits / 8) uint8 packed residuals;
* ``norms.npy``: (n_tokens,) float16 length of centroid + residual (decoding divides by it);
* ``ivf_offsets.npy``, ``ivf_docs.npy``: the inverted lists: centroid c is used by the
  segment's documents (rows) ``ivf_docs[ivf_offsets[c]:ivf_offsets[c + 1]]``, each once
  (uint16 rows where the segment has at most 65,536, else int32; format 3 wrote int32).

A segment is never edited: deletes are tombstones (row numbers) in the manifest, and
compaction writes new segments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from colbert_retriever.atomic import FileInfo, fsync_dir, sha256_file, write_npy
from colbert_retriever.errors import IndexCorruptError
from colbert_retriever.stores.folder import documents, lexical
from colbert_retriever.stores.folder.documents import DocumentTable, Row
from colbert_retriever.stores.folder.manifest import SegmentEntry

VECTOR_FILES = ("embeddings.npy",)
COMPRESSED_FILES = ("codes.npy", "residuals.npy", "norms.npy", "ivf_offsets.npy", "ivf_docs.npy")
_LEXICAL = frozenset({*lexical.FILES, lexical.FTS5_FILE})
_LAYOUTS = tuple(  # the files of a segment, without its optional lexical side
    frozenset({"doclens.npy", *docs, *vectors})
    for docs in (documents.FILES, documents.PLAIN_FILES)
    for vectors in (VECTOR_FILES, COMPRESSED_FILES)
)


@dataclass(frozen=True)
class Compressed:
    """A segment's compressed token vectors and inverted lists (see the module docstring)."""

    codes: np.ndarray
    residuals: np.ndarray
    norms: np.ndarray
    ivf_offsets: np.ndarray
    ivf_docs: np.ndarray


@dataclass(frozen=True)
class Segment:
    """A loaded segment. Arrays are memory-mapped; nothing here is ever written.

    Attributes:
        name: Folder name under ``segments/``.
        offsets: (n_rows + 1,) int64; document i is tokens offsets[i]:offsets[i+1].
        deleted: (n_rows,) bool tombstones.
        documents: Ids, texts and metadata, read on demand.
        embeddings: (n_tokens, dim) float16 in an exact index, else None.
        compressed: The compressed tokens in a PLAID index, else None.
        cut: Rows whose text was longer than the model reads (stored without passages).
        lexical: The inverted lists of its rows' words, if the index has a lexical side.
    """

    name: str
    offsets: np.ndarray
    deleted: np.ndarray
    documents: DocumentTable
    embeddings: np.ndarray | None = None
    compressed: Compressed | None = None
    cut: tuple[int, ...] = ()
    lexical: lexical.Postings | None = None

    @property
    def n_rows(self) -> int:
        return len(self.offsets) - 1

    @property
    def live_rows(self) -> np.ndarray:
        return np.flatnonzero(~self.deleted)

    def first_rows(self, rows: np.ndarray) -> np.ndarray:
        """The first row (passage 0) of the document each of `rows` belongs to."""
        return rows - self.documents.passages[rows]

    def cut_among(self, rows: np.ndarray) -> list[int]:
        """Positions in `rows` of the rows stored cut (to carry them into a rewritten segment)."""
        return np.flatnonzero(np.isin(rows, self.cut)).tolist()

    def tokens(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Token indices of documents `rows`, back to back, and their (len(rows) + 1,)
        offsets within that list.

        >>> seg = Segment("s", np.array([0, 3, 5, 9]), np.zeros(3, bool), DocumentTable(Path("s"), 3))
        >>> [a.tolist() for a in seg.tokens(np.array([2, 0]))]
        [[5, 6, 7, 8, 0, 1, 2], [0, 4, 7]]
        """
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        local = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(ends - starts, out=local[1:])
        return np.repeat(starts - local[:-1], ends - starts) + np.arange(local[-1]), local

    def chunks(self, rows: np.ndarray, max_tokens: int) -> Iterator[np.ndarray]:
        """`rows` in consecutive runs of whole documents of at most `max_tokens` tokens
        (or one document, if longer)."""
        ends = np.cumsum(self.offsets[rows + 1] - self.offsets[rows])
        start = 0
        while start < len(rows):
            done = int(ends[start - 1]) if start else 0
            stop = max(start + 1, int(np.searchsorted(ends, done + max_tokens, side="right")))
            yield rows[start:stop]
            start = stop


def write_segment(
    folder: Path, rows: Sequence[Row], vectors: Sequence[np.ndarray], cut: Sequence[int] = (), *, lexical: bool
) -> SegmentEntry:
    """Write a new exact segment folder; return its manifest entry (counts and file
    checksums). `cut`: rows whose text was longer than the model reads; `lexical`: write
    the rows' full-text index too."""
    folder.mkdir(parents=True)
    embeddings = np.concatenate(vectors, dtype=np.float16)  # (n_tokens, dim) float16
    doclens = np.array([len(v) for v in vectors], dtype=np.int64)  # (n_rows,) int64
    files = {"embeddings.npy": write_npy(folder / "embeddings.npy", embeddings)}
    return _finish(folder, files, rows, doclens, cut, lexical)


def write_compressed_segment(
    folder: Path,
    rows: Sequence[Row],
    doclens: np.ndarray,
    codes: np.ndarray,
    residuals: np.ndarray,
    norms: np.ndarray,
    n_centroids: int,
    cut: Sequence[int] = (),
    *,
    lexical: bool,
) -> SegmentEntry:
    """Write a new compressed segment folder, inverted lists included; return its manifest entry."""
    folder.mkdir(parents=True)
    n_docs = len(doclens)
    doc_of_token = np.repeat(np.arange(n_docs, dtype=np.int64), doclens)
    pairs = np.unique(codes.astype(np.int64) * n_docs + doc_of_token)  # each (centroid, document) once
    centroid_of_pair, ivf_docs = np.divmod(pairs, n_docs)
    ivf_offsets = np.zeros(n_centroids + 1, dtype=np.int64)
    np.cumsum(np.bincount(centroid_of_pair, minlength=n_centroids), out=ivf_offsets[1:])
    code_type, row_type = (np.uint16 if n <= 1 << 16 else np.int32 for n in (n_centroids, n_docs))
    files = {
        "codes.npy": write_npy(folder / "codes.npy", codes.astype(code_type)),
        "residuals.npy": write_npy(folder / "residuals.npy", residuals),
        "norms.npy": write_npy(folder / "norms.npy", norms.astype(np.float16)),
        "ivf_offsets.npy": write_npy(folder / "ivf_offsets.npy", ivf_offsets),
        "ivf_docs.npy": write_npy(folder / "ivf_docs.npy", ivf_docs.astype(row_type)),
    }
    return _finish(folder, files, rows, np.asarray(doclens, dtype=np.int64), cut, lexical)


def _finish(
    folder: Path, files: dict[str, FileInfo], rows: Sequence[Row], doclens: np.ndarray, cut: Sequence[int], lex: bool
) -> SegmentEntry:
    """Write the files every segment has (and its full-text index if `lex`); return the
    manifest entry."""
    files["doclens.npy"] = write_npy(folder / "doclens.npy", doclens)
    files |= documents.write_documents(folder, rows)
    if lex:
        files |= lexical.write_lexical(folder, [row.text for row in rows])
    fsync_dir(folder)
    fsync_dir(folder.parent)
    return SegmentEntry(
        name=folder.name,
        n_rows=len(doclens),
        n_documents=sum(row.passage == 0 for row in rows),
        n_tokens=int(doclens.sum()),
        files=files,
        cut=tuple(sorted(cut)),
    )


def set_lexical(folder: Path, entry: SegmentEntry, segment: Segment, *, on: bool) -> SegmentEntry:
    """`entry` of an uncommitted segment with its full-text index written (`on`) or removed:
    a write staged before a compact switched the index's lexical side commits after it."""
    files = {name: info for name, info in entry.files.items() if name not in _LEXICAL}
    for name in _LEXICAL:
        (folder / name).unlink(missing_ok=True)
    if on:
        rows = segment.documents.read(list(range(segment.n_rows)))
        files |= lexical.write_lexical(folder, [row.text for row in rows])
    return dataclasses.replace(entry, files=files)


def load_segment(folder: Path, entry: SegmentEntry, *, verify: bool) -> Segment:
    """Load a segment listed in the manifest, checking every file's size (and checksum)."""
    names = set(entry.files)
    if names - _LEXICAL not in _LAYOUTS or names & _LEXICAL not in (set(), set(lexical.FILES), {lexical.FTS5_FILE}):
        msg = f"segment {folder}: its manifest entry lists unexpected files {sorted(names)}"
        raise IndexCorruptError(msg)
    check_files(folder, entry.files, verify=verify)
    with documents.reading(folder):
        arrays = {
            name.removesuffix(".npy"): documents.load_array(folder / name, mode="c")
            for name in names & {*VECTOR_FILES, *COMPRESSED_FILES, "doclens.npy"}
        }
    doclens = np.asarray(arrays.pop("doclens"))
    tokens = arrays["embeddings" if "embeddings" in arrays else "codes"]
    if len(doclens) != entry.n_rows or tokens.shape[0] != int(doclens.sum()):
        msg = f"segment {folder} does not match its manifest entry (documents or tokens differ)"
        raise IndexCorruptError(msg)
    offsets = np.zeros(entry.n_rows + 1, dtype=np.int64)
    np.cumsum(doclens, out=offsets[1:])
    table = DocumentTable(folder, entry.n_rows, plain=documents.PLAIN_LINES in names).map()
    postings = None
    if lexical.FILES[0] in names:
        postings = lexical.Postings.load(folder)
    elif lexical.FTS5_FILE in names:  # format 4 and before: the same lists, from the texts
        postings = lexical.Postings.of(row.text for row in table.read(list(range(entry.n_rows))))
    return Segment(
        name=folder.name,
        offsets=offsets,
        deleted=deleted_mask(entry),
        documents=table,
        embeddings=arrays.pop("embeddings", None),
        compressed=Compressed(**arrays) if arrays else None,
        cut=entry.cut,
        lexical=postings,
    )


def check_structure(folder: Path, segment: Segment, *, dim: int, n_centroids: int, packed_width: int) -> None:
    """Invariants a checksum cannot vouch for (a file may be consistent with its checksum
    and still wrong): token counts, vector shapes, centroid codes and inverted lists in
    range, document offsets. Reads every array; `IndexCorruptError` names the first problem.
    `n_centroids` and `packed_width` matter only for compressed segments."""
    n_docs, n_tokens = segment.n_rows, int(segment.offsets[-1])
    problem = None
    if (np.diff(segment.offsets) < 1).any():
        problem = "doclens.npy has a document without tokens"
    elif segment.embeddings is not None and segment.embeddings.shape != (n_tokens, dim):
        problem = f"embeddings.npy has shape {segment.embeddings.shape}, expected ({n_tokens}, {dim})"
    elif (c := segment.compressed) is not None:
        ivf = c.ivf_offsets.astype(np.int64)
        if not len(c.codes) == len(c.norms) == len(c.residuals) == n_tokens:
            problem = "codes, norms and residuals do not have one entry per token"
        elif c.residuals.ndim != 2 or c.residuals.shape[1] != packed_width:
            problem = f"residuals.npy rows are not {packed_width} bytes"
        elif n_tokens and int(c.codes.max()) >= n_centroids:
            problem = f"codes.npy refers to centroid {int(c.codes.max())} of {n_centroids}"
        elif len(ivf) < 1 or len(ivf) > n_centroids + 1 or ivf[0] != 0 or (np.diff(ivf) < 0).any():
            problem = "ivf_offsets.npy is not a non-decreasing offset per centroid from 0"
        elif int(ivf[-1]) != len(c.ivf_docs):
            problem = "ivf_offsets.npy does not end at the length of ivf_docs.npy"
        elif len(c.ivf_docs) and (int(c.ivf_docs.min()) < 0 or int(c.ivf_docs.max()) >= n_docs):
            problem = "ivf_docs.npy refers to a document row out of range"
    problem = problem or segment.documents.structure_problem()
    if segment.lexical is not None:
        problem = problem or segment.lexical.structure_problem(n_docs)
    if problem:
        msg = f"segment {folder}: {problem}"
        raise IndexCorruptError(msg)


def deleted_mask(entry: SegmentEntry) -> np.ndarray:
    """(n_rows,) bool tombstones of a manifest segment entry."""
    deleted = np.zeros(entry.n_rows, dtype=bool)
    deleted[np.asarray(entry.deleted, dtype=np.int64)] = True
    return deleted


def check_files(folder: Path, files: Mapping[str, FileInfo], *, verify: bool) -> None:
    """`check_file` for each of `files` in `folder`."""
    for name, expected in files.items():
        check_file(folder / name, expected, verify=verify)


def check_file(path: Path, expected: FileInfo, *, verify: bool) -> None:
    """Raise `IndexCorruptError` naming `path` if it is missing, of another size than the
    manifest says or (with `verify`) fails its sha256."""
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        msg = f"index file {path} is missing"
        raise IndexCorruptError(msg) from exc
    if size != expected.bytes:
        msg = f"index file {path} has {size} bytes, the manifest says {expected.bytes} (truncated or overwritten)"
        raise IndexCorruptError(msg)
    if verify and sha256_file(path) != expected.sha256:
        msg = f"index file {path} fails its sha256 checksum (corrupted on disk)"
        raise IndexCorruptError(msg)
