"""Hybrid and lexical ranking: candidates from both sides, both scores for each, one order.

A query's candidates are the best `SearchConfig.candidates` documents by late interaction
(found by search/dispatch.py) and by BM25 (each segment's full-text index,
storage/lexical.py), among the rows the filters allow. Every candidate then gets both
scores: the MaxSim of its passages (from the stored vectors, decompressed in a PLAID index)
where late interaction did not find it, the BM25 of its passages where BM25 did not. A
document scores on the late side as in late search (`SearchConfig.passage_weights`), on the
lexical side by its best passage; `SearchConfig.fusion` makes one score of the two.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from colbert_retriever.compression import token_vectors
from colbert_retriever.config import Mode, SearchConfig
from colbert_retriever.maxsim import maxsim
from colbert_retriever.search import fusion
from colbert_retriever.search.codec import ResidualCodec
from colbert_retriever.storage.lexical import match_expression
from colbert_retriever.storage.segment import Segment


@dataclass(frozen=True)
class Ranked:
    """A result before it is read into a `Hit`. A position numbers rows across segments.

    Attributes:
        score: The mode's score of the document (or passage).
        position: The row shown: the passage that scored best (by MaxSim, in lexical
            mode by BM25).
        passage_score: That passage's own score on the same side.
        late: The late-interaction score (None in lexical mode).
        lexical: The BM25 score (None in late mode; 0 when no query word occurs).
    """

    score: float
    position: int
    passage_score: float
    late: float | None = None
    lexical: float | None = None


class _Rows:
    """Maps between positions (rows numbered across segments) and segments' own rows."""

    def __init__(self, segments: Sequence[Segment], grouped: bool) -> None:
        self.segments, self.grouped = segments, grouped
        self.bases = np.zeros(len(segments) + 1, dtype=np.int64)
        np.cumsum([seg.n_rows for seg in segments], out=self.bases[1:])

    def locate(self, position: int) -> tuple[int, int]:
        seg_no = int(np.searchsorted(self.bases, position, side="right")) - 1
        return seg_no, position - int(self.bases[seg_no])

    def key(self, seg_no: int, row: int) -> int:
        """The position naming the candidate `row` belongs to: its document's first row
        (or the row itself when ranking passages)."""
        if self.grouped:
            row -= int(self.segments[seg_no].documents.passages[row])
        return int(self.bases[seg_no]) + row

    def of(self, key: int) -> list[int]:
        """The positions of a candidate's rows: every passage of its document."""
        if not self.grouped:
            return [key]
        seg_no, row = self.locate(key)
        passages, end = self.segments[seg_no].documents.passages, row + 1
        while end < len(passages) and passages[end] != 0:
            end += 1
        return list(range(key, key + end - row))


def rank(
    segments: Sequence[Segment],
    codec: ResidualCodec | None,
    query: np.ndarray,
    text: str,
    late: Sequence[Ranked],
    allowed: Sequence[np.ndarray],
    *,
    mode: Mode,
    grouped: bool,
    n: int,
    config: SearchConfig,
) -> list[Ranked]:
    """The candidates of one query, fused (`mode` "hybrid") or by BM25 alone ("lexical").

    Args:
        query: (n_tokens, dim) query vectors; `text`: the query's text.
        late: Late interaction's best `n` (empty in lexical mode).
        allowed: Per segment, (n_rows,) bool: live rows that pass the filters.
        grouped: Rank documents (rows grouped by document), else passages.
        n: Candidates taken from the lexical side.
    """
    rows = _Rows(segments, grouped)
    expression = match_expression(text)
    matched = _bm25(rows, allowed, expression) if expression else {}
    found_lexical = dict(itertools.islice(matched.items(), n))
    if mode == "lexical":
        return [Ranked(s, p, s, lexical=s) for s, p in found_lexical.values()]
    scored = {rows.key(*rows.locate(r.position)): r for r in late}  # key -> its late-interaction Ranked
    added = [key for key in found_lexical if key not in scored]
    scored |= dict(zip(added, _maxsim(rows, codec, query, added, config), strict=True))
    late_scores = np.array([r.score for r in scored.values()])
    lexical_scores = np.array([matched[key][0] if key in matched else 0.0 for key in scored])
    if config.fusion == "rrf":
        fused = fusion.reciprocal_rank(late_scores, lexical_scores, config.rrf_k)
    else:
        fused = fusion.blend(late_scores, lexical_scores, config.late_weight)
    return [
        Ranked(score, shown.position, shown.passage_score, shown.score, lexical_score)
        for score, shown, lexical_score in zip(fused.tolist(), scored.values(), lexical_scores.tolist(), strict=True)
    ]


def _bm25(rows: _Rows, allowed: Sequence[np.ndarray], expression: str) -> dict[int, tuple[float, int]]:
    """Every allowed candidate with a query word: key -> (BM25 of its best row, that row's
    position), best first."""
    keys, scores, positions = [np.zeros(0, np.int64)], [np.zeros(0)], [np.zeros(0, np.int64)]
    for seg_no, segment in enumerate(rows.segments):
        assert segment.lexical is not None, "dispatch checks the index has a lexical side"
        found, bm25 = segment.lexical.match(expression)
        keep = allowed[seg_no][found]
        found, base = found[keep], int(rows.bases[seg_no])
        keys.append(base + (segment.first_rows(found) if rows.grouped else found))
        scores.append(bm25[keep])
        positions.append(base + found)
    order = np.argsort(-np.concatenate(scores), kind="stable")
    key, score, position = (np.concatenate(a)[order] for a in (keys, scores, positions))
    best = np.sort(np.unique(key, return_index=True)[1])  # each key's first row in BM25 order
    return {int(k): (float(s), int(p)) for k, s, p in zip(key[best], score[best], position[best], strict=True)}


def _maxsim(
    rows: _Rows, codec: ResidualCodec | None, query: np.ndarray, keys: Sequence[int], config: SearchConfig
) -> list[Ranked]:
    """Each candidate's late-interaction score from its rows' stored vectors, with the row
    that scored best (as `Ranked`: score, position, passage score)."""
    positions = [p for key in keys for p in rows.of(key)]
    row_scores: dict[int, float] = {}
    budget = max(1, config.max_scores_per_chunk // len(query))
    for seg_no, segment in enumerate(rows.segments):
        base, end = int(rows.bases[seg_no]), int(rows.bases[seg_no + 1])
        mine = np.array([p - base for p in positions if base <= p < end], dtype=np.int64)
        for chunk in segment.chunks(mine, budget) if len(mine) else ():
            tokens, offsets = segment.tokens(chunk)
            scores = maxsim(query[None].astype(np.float32), token_vectors(segment, tokens, codec), offsets)[0]
            row_scores |= dict(zip((base + chunk).tolist(), scores.tolist(), strict=True))
    out = []
    for key in keys:
        ranked = sorted(((row_scores[p], p) for p in rows.of(key)), reverse=True)
        score = sum(w * s for w, (s, _) in zip(config.passage_weights, ranked, strict=False))
        out.append(Ranked(score, ranked[0][1], ranked[0][0]))
    return out
