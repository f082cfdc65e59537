"""The full-text side file of a segment: written once, read-only, BM25 by SQLite FTS5."""

from __future__ import annotations

from pathlib import Path

import pytest

from colbert_retriever.errors import IndexCorruptError
from colbert_retriever.stores.folder.lexical import LexicalTable, match_expression, write_lexical

TEXTS = ["the cat sat on the mat", "dogs chase cats", "error ERR-4521X in the pump", "nothing to see"]


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "lexical.sqlite"
    info = write_lexical(path, TEXTS)
    assert info.bytes == path.stat().st_size
    assert len(info.sha256) == 64
    assert not list(tmp_path.glob(".*"))  # no temporary file left beside it
    return path


def found(table: Path, query: str) -> dict[int, float]:
    expression = match_expression(query)
    assert expression is not None
    rows, scores = LexicalTable(table).match(expression)
    return dict(zip(rows.tolist(), scores.tolist(), strict=True))


def test_every_matching_row_with_a_positive_bm25(table: Path) -> None:
    scores = found(table, "cats")  # porter stems: cat == cats
    assert sorted(scores) == [0, 1]
    assert all(s > 0 for s in scores.values())
    assert scores[1] > scores[0]  # the shorter row, with the word once, scores higher
    both = found(table, "cat pump")
    assert sorted(both) == [0, 1, 2]
    assert both[0] == pytest.approx(scores[0])


def test_an_id_like_token_matches_as_a_phrase(table: Path) -> None:
    assert list(found(table, "ERR-4521X")) == [2]
    assert found(table, "4521X-ERR") == {}  # the same words in another order


def test_match_expression_quotes_and_skips_wordless_pieces() -> None:
    assert match_expression('say "hi" ?! --') == '"say" OR """hi"""'
    assert match_expression("?! --") is None
    assert match_expression("AND OR NOT NEAR(") == '"AND" OR "OR" OR "NOT" OR "NEAR("'


def test_a_nul_in_the_query_is_a_word_break(table: Path) -> None:
    """Regression: FTS5 read a query string only up to a NUL ("unterminated string")."""
    assert match_expression("cat\x00pump") == '"cat" OR "pump"'
    assert sorted(found(table, "cat\x00pump")) == [0, 1, 2]


def test_operator_words_are_searched_as_words(table: Path) -> None:
    assert sorted(found(table, "NOT cat")) == [0, 1]  # no FTS5 syntax error, no negation


def test_an_open_table_outlives_its_file(table: Path) -> None:
    """Regression: a search on an older state failed once a commit had removed that
    state's segment folder (the file was opened per query)."""
    opened = LexicalTable(table)
    table.unlink()
    assert sorted(opened.match('"cat"')[0].tolist()) == [0, 1]


def test_a_damaged_file_is_a_corrupt_index(table: Path) -> None:
    table.write_bytes(b"not a database" * 100)
    with pytest.raises(IndexCorruptError, match="lexical index"):
        LexicalTable(table).match('"cat"')
