"""The lexical side index: a segment's rows in a SQLite FTS5 table, for exact words.

A segment of an index with a lexical side holds ``lexical.sqlite``: a contentless FTS5 table
(the texts stay in the segment's documents) over each row's text, its rowid the row number,
tokenised by FTS5's ``porter unicode61`` (Unicode words, case and diacritics folded, Porter
stems). It is written once with its segment, listed and checksummed in the manifest like the
segment's other files, and opened read-only as immutable. Ranking is FTS5's own ``bm25()``.

BM25's document frequencies are the segment's own, as Elasticsearch scores each shard with
its own: compaction rewrites a plaid index into one segment and an exact one into segments
of ~524k tokens, so that each scores with the statistics of many documents.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from colbert_retriever.atomic import FileInfo, write_with
from colbert_retriever.errors import ConfigError, IndexCorruptError

FILE = "lexical.sqlite"
_WORD = re.compile(r"\w")


def write_lexical(path: Path, texts: Iterable[str]) -> FileInfo:
    """Write the FTS5 table of `texts` (row i = rowid i) to `path`, atomically."""

    def fill(tmp: Path) -> None:
        db = sqlite3.connect(tmp)
        try:
            db.execute("PRAGMA journal_mode=OFF")  # a new file in an uncommitted segment: nothing to roll back to
            db.execute("CREATE VIRTUAL TABLE passages USING fts5(text, content='', tokenize='porter unicode61')")
            db.executemany("INSERT INTO passages(rowid, text) VALUES (?, ?)", enumerate(texts))
            db.execute("INSERT INTO passages(passages) VALUES ('optimize')")  # one b-tree: smaller, faster
            db.commit()
        except sqlite3.OperationalError as exc:
            if "fts5" in str(exc):
                msg = f"this Python's SQLite has no full-text search ({exc}); create the index with lexical=False"
                raise ConfigError(msg) from exc
            msg = f"cannot write {path}: {exc}"
            raise OSError(msg) from exc  # disk full, I/O: an IndexWriteError, the write fails whole
        finally:
            db.close()

    return write_with(path, fill)


def match_expression(query: str) -> str | None:
    """The FTS5 query for `query`: any of its whitespace-separated pieces (NUL counts as
    whitespace), each a quoted phrase (so "ERR-4521X" must match as the words err 4521x in
    a row), or None if it has no word at all.

    >>> match_expression("error ERR-4521X ?")
    '"error" OR "ERR-4521X"'
    """
    pieces = [piece for piece in query.replace("\x00", " ").split() if _WORD.search(piece)]  # FTS5 stops at NUL
    return " OR ".join('"' + piece.replace('"', '""') + '"' for piece in pieces) or None


class LexicalTable:
    """A segment's full-text table, opened once, read-only and immutable, when the segment
    loads: like its memory-mapped arrays, the open file outlives a later commit that removes
    the segment's folder, so a search on an older state still reads it. Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._db.execute("SELECT count(*) FROM sqlite_master").fetchall()  # opens the file now
        except sqlite3.Error as exc:
            msg = f"cannot open the lexical index {path}: {exc}"
            raise IndexCorruptError(msg) from exc

    def match(self, expression: str) -> tuple[np.ndarray, np.ndarray]:
        """Every row matching `expression`: (rows int64, BM25 scores float64, higher better:
        FTS5's bm25() negated), in no particular order. Scoring every match is what ranking
        them costs anyway; the caller masks and sorts in numpy."""
        query = "SELECT rowid, -bm25(passages) FROM passages WHERE passages MATCH ?"
        with self._lock:
            found = _execute(self._db, self.path, query, (expression,))
        pairs = np.array(found, dtype=np.float64).reshape(-1, 2)
        return pairs[:, 0].astype(np.int64), pairs[:, 1]


def _execute(db: sqlite3.Connection, path: Path, query: str, args: tuple[object, ...]) -> list[tuple[int, float]]:
    try:
        return db.execute(query, args).fetchall()
    except sqlite3.DatabaseError as exc:
        msg = f"the lexical index {path} cannot be read ({exc}); `colbert-retriever info --verify` checks it"
        raise IndexCorruptError(msg) from exc
