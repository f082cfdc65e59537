"""An index folder's answers to the search pipeline (`stores.protocol.Reader`), over one
loaded state (a `Snapshot`) and the rows a filter allows.

A row is named by its position: rows numbered across the state's segments in order. A
document is named by the position of its first row. Late interaction runs exact MaxSim
(exact.py) or PLAID's stages (plaid.py) over the allowed rows; BM25 (colbert_retriever/bm25.py)
reads each segment's inverted lists (lexical.py) and the statistics of the whole index.

Arrays that pass their checksums but point out of range surface as `IndexError` or
`ValueError` deep in numpy: those, and only those raised while reading the state, are
reported as a damaged index. The filter runs before, so a callable's own errors pass through.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path

import numpy as np

from colbert_retriever.bm25 import idf, term_weight
from colbert_retriever.config import SearchConfig
from colbert_retriever.devices import scoring_dtype
from colbert_retriever.errors import ColbertRetrieverError, DocumentNotFoundError, IndexCorruptError
from colbert_retriever.maxsim import maxsim
from colbert_retriever.stores.folder.compression import token_vectors
from colbert_retriever.stores.folder.exact import exact_search
from colbert_retriever.stores.folder.lexical import query_words
from colbert_retriever.stores.folder.plaid import PlaidParams, plaid_search
from colbert_retriever.stores.folder.segment import Segment
from colbert_retriever.stores.folder.snapshot import Snapshot
from colbert_retriever.stores.protocol import Row, ScoredRow
from colbert_retriever.validation import check_ids


class FolderReader:
    """One snapshot of an index folder, restricted to the live rows `accept` passes."""

    lexical_hint = "this index has none; compact(lexical=True) adds one"

    def __init__(
        self,
        path: Path,
        snapshot: Snapshot,
        accept: Callable[[Segment], np.ndarray] | None,
        config: SearchConfig,
    ) -> None:
        self.path, self.snapshot, self.config = path, snapshot, config
        self.segments, self.codec = snapshot.segments, snapshot.codec
        self.dim, self.lexical = snapshot.manifest.dim, snapshot.manifest.lexical
        self.allowed = [~seg.deleted & accept(seg) if accept else ~seg.deleted for seg in self.segments]
        self.bases = np.zeros(len(self.segments) + 1, dtype=np.int64)  # each segment's first position
        np.cumsum([seg.n_rows for seg in self.segments], out=self.bases[1:])
        self._matched: dict[str, dict[int, float]] = {}  # query text -> BM25 of each allowed row it matches

    @property
    def n_documents(self) -> int:
        return self.snapshot.manifest.n_documents

    @property
    def n_rows(self) -> int:
        return self.snapshot.manifest.n_passages

    def best_late(self, queries: Sequence[np.ndarray], n: int, *, documents: int) -> list[list[ScoredRow]]:
        with self._reading():
            if self.codec is None:
                scores, positions = exact_search(self.segments, queries, self.allowed, k=n, config=self.config)
                found = list(zip(scores, positions, strict=True))
            else:
                found = plaid_search(
                    self.codec,
                    self.segments,
                    queries,
                    self.allowed,
                    k=n,
                    params=self._plaid_params(documents),
                    dtype=scoring_dtype(self.config.scoring_dtype),
                )
            out = []
            for scores, positions in found:
                keep = (positions >= 0) & (scores > -np.inf)
                scores, positions = scores[keep], positions[keep]
                order = np.argsort(-scores, kind="stable")
                out.append(self._scored(scores[order], positions[order]))
            return out

    def best_lexical(self, text: str, n: int) -> list[ScoredRow]:
        matched = self._match(text)
        positions = np.fromiter(matched.keys(), dtype=np.int64, count=len(matched))
        scores = np.fromiter(matched.values(), dtype=np.float64, count=len(matched))
        order = np.lexsort((positions, -scores))[:n]  # best first, ties by position
        with self._reading():
            return self._scored(scores[order], positions[order])

    def late_scores(self, query: np.ndarray, rows: Sequence[Hashable]) -> list[float]:
        positions = np.asarray(rows, dtype=np.int64)
        scores = np.empty(len(positions), dtype=np.float64)
        budget = max(1, self.config.max_scores_per_chunk // len(query))
        with self._reading():
            for seg_no, mine in self._by_segment(positions):
                segment, base = self.segments[seg_no], int(self.bases[seg_no])
                at = np.flatnonzero(mine)
                at = at[np.argsort(positions[at], kind="stable")]  # this segment's rows, in storage order
                start = 0
                for chunk in segment.chunks(positions[at] - base, budget):
                    tokens, offsets = segment.tokens(chunk)
                    vectors = token_vectors(segment, tokens, self.codec)
                    scores[at[start : start + len(chunk)]] = maxsim(query[None].astype(np.float32), vectors, offsets)[0]
                    start += len(chunk)
        return scores.tolist()

    def lexical_scores(self, text: str, rows: Sequence[Hashable]) -> list[float]:
        matched = self._match(text)
        return [matched.get(position, 0.0) for position in _positions(rows)]

    def document_rows(self, documents: Sequence[Hashable]) -> list[list[Hashable]]:
        out: list[list[Hashable]] = []
        with self._reading():
            for first in _positions(documents):
                seg_no, row = self._locate(first)
                passages, end = self.segments[seg_no].documents.passages, row + 1
                while end < len(passages) and passages[end] != 0:
                    end += 1
                out.append(list(range(first, first + end - row)))
        return out

    def read(self, rows: Sequence[Hashable]) -> list[Row]:
        out = []
        with self._reading():
            for position in _positions(rows):
                seg_no, row = self._locate(position)
                out.extend(self.segments[seg_no].documents.read([row]))
        return out

    def passages(self, doc_id: str, numbers: Sequence[int] | None = None) -> list[tuple[Row, np.ndarray]]:
        located = self.snapshot.locate(check_ids([doc_id]))
        if doc_id not in located:
            msg = f"document {doc_id!r} is not in the index"
            raise DocumentNotFoundError(msg)
        seg_no, rows = located[doc_id]
        if numbers is not None:
            rows = [rows[n] for n in numbers if 0 <= n < len(rows)]
        segment = self.segments[seg_no]
        return [
            (row, token_vectors(segment, np.arange(segment.offsets[r], segment.offsets[r + 1]), self.codec))
            for r, row in zip(rows, segment.documents.read(rows), strict=True)
        ]

    def _plaid_params(self, documents: int) -> PlaidParams:
        """PLAID's stage sizes for `documents` wanted, with the search settings' overrides."""
        overrides = {"ncells": self.config.ncells, "ndocs": self.config.ndocs}
        return dataclasses.replace(
            PlaidParams.for_k(documents),
            **{name: value for name, value in overrides.items() if value is not None},
            centroid_score_threshold=self.config.centroid_score_threshold,
        )

    def _match(self, text: str) -> dict[int, float]:
        """BM25 of every allowed row holding a word of `text` (position -> score), computed
        once per query text, with the document frequencies and average length of the whole
        index's live rows (not one segment's: scores do not depend on the write history)."""
        if text not in self._matched:
            words = query_words(text)
            lists = [seg.lexical for seg in self.segments if seg.lexical is not None]
            assert len(lists) == len(self.segments), "the pipeline asks only an index with a lexical side"
            found = [postings.find(words) for postings in lists]
            df = np.zeros(len(words))
            for segment, (word, rows, _) in zip(self.segments, found, strict=True):
                df += np.bincount(word[~segment.deleted[rows]], minlength=len(words))
            n_rows = self.snapshot.manifest.n_passages
            weight, average = idf(df, n_rows), self.snapshot.live_words / max(n_rows, 1)
            matched: dict[int, float] = {}
            for seg_no, (postings, (word, rows, counts)) in enumerate(zip(lists, found, strict=True)):
                keep = self.allowed[seg_no][rows]
                word, rows, counts = word[keep], rows[keep], counts[keep]
                scores = weight[word] * term_weight(counts, postings.lengths[rows], average)
                unique, inverse = np.unique(rows, return_inverse=True)
                summed = np.bincount(inverse, weights=scores, minlength=len(unique))
                matched |= dict(zip((int(self.bases[seg_no]) + unique).tolist(), summed.tolist(), strict=True))
            self._matched[text] = matched
        return self._matched[text]

    def _scored(self, scores: np.ndarray, positions: np.ndarray) -> list[ScoredRow]:
        """`ScoredRow`s of rows at `positions`, each with its document's first position."""
        firsts = positions.copy()
        for seg_no, mine in self._by_segment(positions):
            base = int(self.bases[seg_no])
            firsts[mine] = base + self.segments[seg_no].first_rows(positions[mine] - base)
        return [
            ScoredRow(s, p, f) for s, p, f in zip(scores.tolist(), positions.tolist(), firsts.tolist(), strict=True)
        ]

    def _by_segment(self, positions: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """(segment number, mask of `positions` in it) for each segment holding some."""
        seg_of = np.searchsorted(self.bases, positions, side="right") - 1
        for seg_no in np.unique(seg_of).tolist():
            yield seg_no, seg_of == seg_no

    def _locate(self, position: int) -> tuple[int, int]:
        seg_no = int(np.searchsorted(self.bases, position, side="right")) - 1
        return seg_no, position - int(self.bases[seg_no])

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except ColbertRetrieverError:
            raise
        except (IndexError, ValueError) as exc:  # arrays that pass their checksums but point out of range
            msg = f"the index at {self.path} is damaged ({exc}); `colbert-retriever info --verify` names the file"
            raise IndexCorruptError(msg) from exc


def _positions(keys: Sequence[Hashable]) -> list[int]:
    """Row (or document) keys as the positions they are."""
    return np.asarray(keys, dtype=np.int64).tolist()
