"""A segment's inverted lists: written once, read back, found by a query's words."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from test_index import MODEL

from colbert_retriever import DocumentBatch, Index
from colbert_retriever.bm25 import stems
from colbert_retriever.stores.folder.documents import hash_ids
from colbert_retriever.stores.folder.lexical import FILES, Postings, query_words, write_lexical

TEXTS = ["the cat sat on the mat", "dogs chase cats", "error ERR-4521X in the pump", "nothing to see"]


def _postings_of(postings: Postings, word: str) -> dict[int, int]:
    """{row: count} of one word, read from the lists."""
    which, rows, counts = postings.find(hash_ids([word]))
    assert set(which.tolist()) <= {0}
    return dict(zip(rows.tolist(), counts.astype(int).tolist(), strict=True))


def test_the_lists_hold_each_rows_word_counts_against_a_plain_count() -> None:
    postings = Postings.of(TEXTS)
    for row, text in enumerate(TEXTS):
        assert postings.lengths[row] == len(stems(text))
        for word, count in Counter(stems(text)).items():
            assert _postings_of(postings, word)[row] == count
    assert _postings_of(postings, "cat") == {0: 1, 1: 1}  # stems: cats == cat
    assert _postings_of(postings, "the") == {0: 2, 2: 1}
    assert _postings_of(postings, "absent") == {}
    assert np.all(np.diff(postings.words.astype(np.float64)) > 0)  # sorted, distinct


def test_find_returns_which_query_word_each_posting_is() -> None:
    postings = Postings.of(TEXTS)
    words = query_words("cats pump unknownword cat")  # cat once: distinct words
    assert len(words) == 3
    which, rows, _ = postings.find(words)
    found = {(int(words[w]), int(r)) for w, r in zip(which, rows, strict=True)}
    cat, pump = hash_ids(["cat", "pump"]).tolist()
    assert found == {(cat, 0), (cat, 1), (pump, 2)}


def test_written_lists_read_back_the_same(tmp_path: Path) -> None:
    files = write_lexical(tmp_path, TEXTS)
    assert set(files) == set(FILES)
    assert all(files[name].bytes == (tmp_path / name).stat().st_size for name in FILES)
    assert not list(tmp_path.glob(".*"))  # no temporary file left beside them
    loaded, built = Postings.load(tmp_path), Postings.of(TEXTS)
    for name in ("words", "starts", "rows", "counts", "lengths"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(built, name))


def test_a_text_without_words_has_none() -> None:
    postings = Postings.of(["?! --", "cat"])
    assert postings.lengths.tolist() == [0, 1]
    assert _postings_of(postings, "cat") == {1: 1}
    assert len(query_words("?! --")) == 0
    assert len(query_words("cat\x00pump")) == 2  # a NUL is a word break


def test_a_document_added_alone_scores_as_in_a_bulk_write(tmp_path: Path) -> None:
    """Regression: BM25 statistics were each segment's, and FTS5 clamps the idf of a word
    found in half a segment's rows to 1e-6: a document added alone holding both query words
    scored 2e-06 and ranked last, behind every document holding one of them."""
    texts = [f"my bicycle number {i} is red" for i in range(20)] + ["how to change a bicycle tyre"]
    ids = [f"d{i}" for i in range(len(texts))]
    rng = np.random.default_rng(0)
    vectors = [v / np.linalg.norm(v, axis=1, keepdims=True) for v in rng.standard_normal((len(texts), 3, 8))]

    def rows(which: slice) -> DocumentBatch:
        return DocumentBatch(ids[which], texts[which], [{}] * len(ids[which]), [np.float32(v) for v in vectors[which]])

    bulk = Index.create(tmp_path / "bulk", model=MODEL, dim=8)
    bulk.write([rows(slice(None))])
    alone = Index.create(tmp_path / "alone", model=MODEL, dim=8)
    alone.write([rows(slice(0, 20))])
    alone.write([rows(slice(20, None))])
    query = [vectors[0]]
    (expected,) = bulk.search(query, k=21, mode="lexical", texts=["bicycle tyre"])
    (found,) = alone.search(query, k=21, mode="lexical", texts=["bicycle tyre"])
    assert found[0].doc_id == expected[0].doc_id == "d20"
    assert [h.doc_id for h in found] == [h.doc_id for h in expected]
    np.testing.assert_allclose([h.score for h in found], [h.score for h in expected], atol=1e-4)
    assert found[0].score > 2 * found[1].score  # the rare word counts


def test_verify_finds_lists_that_point_out_of_range(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx", model=MODEL, dim=8)
    vectors = [np.ones((2, 8), dtype=np.float32) / np.sqrt(8)] * 2
    index.write([DocumentBatch(["a", "b"], ["alpha beta", "beta"], [{}, {}], vectors)])
    segment = index._snapshot.segments[0]
    assert segment.lexical is not None
    assert segment.lexical.structure_problem(segment.n_rows) is None
    assert "one length per row" in str(segment.lexical.structure_problem(1))
    lists = segment.lexical
    shifted = Postings(lists.words, lists.starts, lists.rows + 1, lists.counts, lists.lengths)
    assert "out of range" in str(shifted.structure_problem(segment.n_rows))
