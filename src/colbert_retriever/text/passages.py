"""Long texts as passages: split where the text breaks, measured in the model's word pieces.

A ColBERT model reads `doc_maxlen` tokens of a document and drops the rest. A longer text
is stored as passages that each fit: the splitter works on the character spans of the text's
word pieces (`Encoder.piece_spans`), so a passage's length is counted exactly as the model
counts it. Each passage ends at a paragraph break in its last half if there is one, else
after a sentence, else between words (mid-word only for a word longer than a passage), and
the next one starts at most `overlap` pieces earlier: at the first sentence that starts
there, else at the start of a word.

Passages cover the text without gaps: passage i is ``text[start_i:end_i]`` with
``start_0 = 0``, ``start_(i+1) <= end_i`` and the last ending at ``len(text)``, so the
document's text is rebuilt from its passages exactly (`storage.documents.join_passages`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from colbert_retriever.config import Chunking
from colbert_retriever.errors import ConfigError
from colbert_retriever.model.encoder import Encoder
from colbert_retriever.results import Document
from colbert_retriever.stores.protocol import DocumentBatch
from colbert_retriever.validation import check_documents

logger = logging.getLogger(__name__)
_SENTENCE_END = ".!?。！？"


def split_text(text: str, pieces: np.ndarray, max_pieces: int, overlap: int) -> list[tuple[int, int]]:
    """Character spans (start, end) of the passages of `text`, each holding at most
    `max_pieces` of its word pieces `pieces` ((n, 2) character spans, in order)."""
    n = len(pieces)
    if n <= max_pieces:
        return [(0, len(text))]
    spans = []
    first, start = 0, 0  # the current passage's first piece, and its first character
    while n - first > max_pieces:
        cut = _cut(text, pieces, first, first + max_pieces)  # the first piece of what comes next
        spans.append((start, int(pieces[cut, 0])))
        first = _restart(text, pieces, max(cut - overlap, first + 1), cut, first)
        start = int(pieces[first, 0])
    spans.append((start, len(text)))
    return spans


def _restart(text: str, pieces: np.ndarray, earliest: int, cut: int, previous: int) -> int:
    """The first piece of the next passage: from `earliest` on (its overlap), the first that
    starts a sentence before `cut`, else the start of the word `earliest` is in (but after
    `previous`, the last passage's first piece)."""
    for c in range(max(earliest, 1), cut):
        if pieces[c, 0] > pieces[c - 1, 1] and text[pieces[c - 1, 1] - 1] in _SENTENCE_END:
            return c
    while earliest > previous + 1 and pieces[earliest, 0] == pieces[earliest - 1, 1]:
        earliest -= 1  # inside a word: back to its start
    return earliest


def _cut(text: str, pieces: np.ndarray, first: int, stop: int) -> int:
    """Where to end a passage of pieces [first, stop): the piece after the best break, a
    paragraph in the last half, else a sentence end in the last half, else between words."""
    half = first + (stop - first) // 2
    candidates = range(stop, first, -1)  # cut before piece c; latest first
    gaps = {c: text[pieces[c - 1, 1] : pieces[c, 0]] for c in candidates}
    for c in candidates:
        if c > half and "\n\n" in gaps[c].replace("\r", "").replace(" ", "").replace("\t", ""):
            return c
    for c in candidates:
        if c > half and gaps[c] and text[pieces[c - 1, 1] - 1] in _SENTENCE_END:
            return c
    for c in candidates:
        if gaps[c]:
            return c
    return stop


def passage_spans(encoder: Encoder, text: str, chunking: Chunking | None) -> tuple[list[tuple[int, int]], bool]:
    """The spans of `text`'s passages under `chunking`, and whether the text is cut: with
    `chunking` None, one span, cut when the text is longer than the model reads."""
    most = encoder.passage_pieces
    pieces = encoder.piece_spans(text)
    if chunking is None:
        return [(0, len(text))], len(pieces) > most
    most = min(most, chunking.max_tokens or most)
    return split_text(text, pieces, most, min(chunking.overlap, most // 2)), False


def encode_documents(
    encoder: Encoder,
    documents: Iterator[Any],
    chunking: Chunking | None,
    *,
    size: int,
    total: int | None,
    upsert: bool,
    written: list[str],
) -> Iterator[DocumentBatch]:
    """Check, split and encode `documents`, `size` rows (passages) at a time, with a
    progress bar over `total` documents; record their ids in `written` as they are encoded."""
    pending: list[tuple[Document, list[tuple[int, int]], bool]] = []
    n_rows = n_cut = 0
    with tqdm(total=total, desc="Indexing", unit="doc", disable=not encoder.config.show_progress) as bar:
        for doc in documents:
            if not isinstance(doc, Document):
                msg = f"documents must be Document objects, got {type(doc).__name__}"
                raise ConfigError(msg)
            check_documents([doc.doc_id], [doc.text], [doc.metadata], upsert=upsert)
            spans, cut = passage_spans(encoder, doc.text, chunking)
            pending.append((doc, spans, cut))
            n_rows, n_cut = n_rows + len(spans), n_cut + cut
            if n_rows >= size:
                yield _encoded(encoder, pending, written, bar)
                pending, n_rows = [], 0
        if pending:
            yield _encoded(encoder, pending, written, bar)
    report_cut(n_cut, encoder.config.doc_maxlen)


def _encoded(
    encoder: Encoder, planned: list[tuple[Document, list[tuple[int, int]], bool]], written: list[str], bar: Any
) -> DocumentBatch:
    batch = encode_rows(encoder, planned)
    written.extend(doc.doc_id for doc, _, _ in planned)
    bar.update(len(planned))
    return batch


def encode_rows(encoder: Encoder, planned: Sequence[tuple[Document, list[tuple[int, int]], bool]]) -> DocumentBatch:
    """The rows to store for documents with their passage spans and cut flags: one per
    passage, with its text's start in the document and its token vectors."""
    batch = DocumentBatch(ids=[], texts=[], metadata=[])
    for doc, spans, cut in planned:
        if cut:
            batch.cut.append(len(batch.ids))
        for number, (start, end) in enumerate(spans):
            batch.ids.append(doc.doc_id)
            batch.texts.append(doc.text[start:end])
            batch.metadata.append(doc.metadata)
            batch.passages.append(number)
            batch.starts.append(start)
    batch.vectors.extend(encoder.encode_documents(batch.texts))
    return batch


def report_cut(n_cut: int, doc_maxlen: int) -> None:
    """Warn that `n_cut` documents were stored cut (never silently)."""
    if n_cut:
        logger.warning(
            "%d document(s) were longer than doc_maxlen=%d tokens and were cut (chunking=None); "
            "the default chunking stores them whole, as passages",
            n_cut,
            doc_maxlen,
        )
