"""BM25 as both stores score it: the same words, the same formula.

Words are the lower-cased `\\w+` runs of a text, each reduced to its Snowball English stem
(PyStemmer). A row's score for a query sums, over the query's distinct stems it holds,

    idf(df, n) * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / average_length))

with Lucene's idf, log(1 + (n - df + 0.5) / (df + 0.5)), which stays positive for a word
found in most rows (FTS5's clamps such a word to 1e-6, so that a short query's common word
drowned its rare one). An index folder counts df, n and the average length over the whole
index's live rows, so a document scores the same however it was written; a Qdrant collection
takes df and n from Qdrant's own IDF modifier and a fixed average length.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import numpy as np

from colbert_retriever.errors import MissingDependencyError

K1 = 1.2
B = 0.75
_WORD = re.compile(r"\w+")


def stems(text: str) -> list[str]:
    """The stems of `text`'s words, in order.

    >>> stems("Cats chased the cat's toys")
    ['cat', 'chase', 'the', 'cat', 's', 'toy']
    """
    words: list[str] = _stemmer().stemWords(_WORD.findall(text.lower()))
    return words


def idf(df: np.ndarray, n: int) -> np.ndarray:
    """Inverse document frequency of words found in `df` of `n` rows.

    >>> idf(np.array([1.0, 5.0]), 10).round(3).tolist()
    [1.992, 0.693]
    """
    return np.log1p((n - df + 0.5) / (df + 0.5))


def term_weight(tf: np.ndarray, length: np.ndarray | float, average_length: float) -> np.ndarray:
    """BM25's saturated term frequency of a word found `tf` times in a row of `length` words.

    >>> term_weight(np.array([1.0, 2.0]), 10, 10.0).round(3).tolist()
    [1.0, 1.375]
    """
    return tf * (K1 + 1) / (tf + K1 * (1 - B + B * np.asarray(length) / max(average_length, 1e-9)))


@cache
def _stemmer() -> Any:
    try:
        import Stemmer
    except ImportError as exc:
        msg = "the full-text side needs PyStemmer: pip install PyStemmer"
        raise MissingDependencyError(msg) from exc
    return Stemmer.Stemmer("english")
