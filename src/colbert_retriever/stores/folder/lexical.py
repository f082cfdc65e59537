"""The lexical side of an index folder: each segment's inverted lists of its rows' words (as
bm25s stores them), for BM25 with the statistics of the whole index (colbert_retriever/bm25.py).

Files of a segment in an index with a lexical side, written once with it, listed and
checksummed in the manifest like its other files::

    lexical_words.npy    (n_words,) uint64 hashes of the distinct stems (as ids are hashed), sorted
    lexical_starts.npy   (n_words + 1,) int64 where each word's postings start
    lexical_rows.npy     (n_postings,) int32 the rows holding the word, ascending
    lexical_counts.npy   (n_postings,) uint16 how often each holds it
    lexical_lengths.npy  (n_rows,) int32 stems per row

A search sums each query word's document frequency over every segment's live rows, so the
scores do not depend on how the documents were split into segments (one write or many, before
or after merges). Segments of format 4 and before hold an SQLite FTS5 table
(``lexical.sqlite``) instead: they get the same lists built in memory from their texts when
they load, and a merge or `compact` writes them out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from colbert_retriever.atomic import FileInfo, write_npy
from colbert_retriever.bm25 import stems
from colbert_retriever.stores.folder.documents import hash_ids, load_array, reading

FILES = ("lexical_words.npy", "lexical_starts.npy", "lexical_rows.npy", "lexical_counts.npy", "lexical_lengths.npy")
FTS5_FILE = "lexical.sqlite"  # segments of format 4 and before


def query_words(text: str) -> np.ndarray:
    """The distinct word hashes of a query, in no particular order.

    >>> (query_words("Cats chase the cat") == np.sort(hash_ids(["cat", "chase", "the"]))).all()
    np.True_
    """
    return np.unique(hash_ids(stems(text)))


@dataclass(frozen=True)
class Postings:
    """One segment's inverted lists (see the module docstring for each array)."""

    words: np.ndarray
    starts: np.ndarray
    rows: np.ndarray
    counts: np.ndarray
    lengths: np.ndarray

    @classmethod
    def of(cls, texts: Iterable[str]) -> Postings:
        """The lists of `texts`, row i the i-th text."""
        vocabulary: dict[str, int] = {}  # stem -> its id, in first-seen order
        row_of: list[int] = []
        word_of: list[int] = []
        lengths: list[int] = []
        for row, text in enumerate(texts):
            ids = [vocabulary.setdefault(stem, len(vocabulary)) for stem in stems(text)]
            row_of += [row] * len(ids)
            word_of += ids
            lengths.append(len(ids))
        hashes = hash_ids(vocabulary)
        order = np.argsort(hashes)  # sorted position -> word id
        position = np.empty_like(order)
        position[order] = np.arange(len(order))  # word id -> sorted position
        n_rows = max(len(lengths), 1)
        keys = position[np.asarray(word_of, dtype=np.int64)] * n_rows + np.asarray(row_of, dtype=np.int64)
        pairs, counts = np.unique(keys, return_counts=True)  # each (word, row) once, by word then row
        words_at, rows = np.divmod(pairs, n_rows)
        starts = np.zeros(len(hashes) + 1, dtype=np.int64)
        np.cumsum(np.bincount(words_at, minlength=len(hashes)), out=starts[1:])
        return cls(
            words=hashes[order],
            starts=starts,
            rows=rows.astype(np.int32),
            counts=np.minimum(counts, np.iinfo(np.uint16).max).astype(np.uint16),
            lengths=np.asarray(lengths, dtype=np.int32),
        )

    @classmethod
    def load(cls, folder: Path) -> Postings:
        """The lists a segment folder holds (small files read, large ones mapped)."""
        with reading(folder):
            arrays = [load_array(folder / name) for name in FILES]
        return cls(*arrays)

    def write(self, folder: Path) -> dict[str, FileInfo]:
        """Write the lists into `folder`, atomically, file by file."""
        arrays = (self.words, self.starts, self.rows, self.counts, self.lengths)
        return {name: write_npy(folder / name, array) for name, array in zip(FILES, arrays, strict=True)}

    def structure_problem(self, n_rows: int) -> str | None:
        """What is inconsistent in the lists of a segment of `n_rows` rows (None: nothing)."""
        starts = self.starts.astype(np.int64)
        if len(self.lengths) != n_rows:
            return "lexical_lengths.npy does not hold one length per row"
        if len(starts) != len(self.words) + 1 or starts[0] != 0 or (np.diff(starts) < 0).any():
            return "lexical_starts.npy is not a non-decreasing offset per word from 0"
        if int(starts[-1]) != len(self.rows) or len(self.rows) != len(self.counts):
            return "lexical_starts.npy does not end at the postings' length"
        if len(self.rows) and (int(self.rows.min()) < 0 or int(self.rows.max()) >= n_rows):
            return "lexical_rows.npy refers to a row out of range"
        return None

    def find(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every posting of `words` (distinct hashes) here: which of `words` it is (its
        index), the row, and how often the row holds it."""
        at = np.searchsorted(self.words, words)
        found = at < len(self.words)
        found[found] = self.words[at[found]] == words[found]
        which = np.flatnonzero(found)
        spans = [np.arange(self.starts[at[i]], self.starts[at[i] + 1]) for i in which.tolist()]
        postings = np.concatenate(spans) if spans else np.zeros(0, dtype=np.int64)
        word = np.repeat(which, [len(span) for span in spans])
        return word, self.rows[postings].astype(np.int64), self.counts[postings].astype(np.float64)


def write_lexical(folder: Path, texts: Sequence[str]) -> dict[str, FileInfo]:
    """Write the lexical side of a segment whose rows hold `texts`; return its files."""
    return Postings.of(texts).write(folder)
