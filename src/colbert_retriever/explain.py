"""Why a passage scored: each query token's best document token, with its place in the text.

MaxSim is a sum over query tokens of each one's best similarity in the passage, so it splits
exactly into per-token parts. The document tokens' character spans come from tokenising the
stored text again (`Encoder.document_tokens`), which yields the stored vectors' tokens in
order; in an index built with `pool_factor` > 1 the stored vectors are merged tokens, so the
passage is encoded again instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from colbert_retriever.errors import IndexCorruptError
from colbert_retriever.model.encoder import Encoder
from colbert_retriever.results import Explanation, TokenMatch
from colbert_retriever.stores.protocol import Reader, Row


def explain(
    encoder: Encoder,
    reader: Reader,
    query: np.ndarray,
    query_tokens: Sequence[str],
    doc_id: str,
    numbers: Sequence[int] | None,
) -> Explanation:
    """The `Explanation` of the passage of `doc_id` (among those numbered `numbers`, or all)
    that matches the query best, read from `reader`: the state a search scored, so a write
    racing it cannot change what its hits' highlights show.

    Raises:
        DocumentNotFoundError: `doc_id` is not in that state.
    """
    explained = [
        explain_passage(encoder, query, query_tokens, row, vectors) for row, vectors in reader.passages(doc_id, numbers)
    ]
    return max(explained, key=lambda e: e.score)


def explain_passage(
    encoder: Encoder, query: np.ndarray, query_tokens: Sequence[str], row: Row, vectors: np.ndarray
) -> Explanation:
    """The `Explanation` of stored passage `row` (its token `vectors`) for a query's
    (q_len, dim) vectors and their token texts."""
    tokens, spans = encoder.document_tokens(row.text)
    if len(tokens) != len(vectors):  # pooled vectors: no token of the text is one of them
        vectors = encoder.encode_documents([row.text])[0]
        if len(tokens) != len(vectors):
            msg = f"document {row.doc_id!r}: passage {row.passage} does not tokenise as it was encoded"
            raise IndexCorruptError(msg)
    # (q_len, n_tokens), in torch rather than numpy's BLAS, whose threads spin (see search.plaid)
    query_t, vectors_t = torch.from_numpy(query.astype(np.float32)), torch.from_numpy(np.asarray(vectors, np.float32))
    sims = (query_t @ vectors_t.T).numpy()
    best = sims.argmax(axis=1)
    values = sims[np.arange(len(query)), best]
    score = float(values.sum(dtype=np.float32))
    matches = tuple(
        TokenMatch(
            query_token=query_tokens[i],
            doc_token=tokens[b],
            start=int(spans[b, 0]),
            end=int(spans[b, 1]),
            similarity=float(values[i]),
            share=float(values[i]) / score if score else 0.0,
        )
        for i, b in enumerate(best.tolist())
    )
    return Explanation(
        doc_id=row.doc_id,
        passage=row.passage,
        start=row.start,
        end=row.start + len(row.text),
        text=row.text,
        score=score,
        matches=matches,
    )
