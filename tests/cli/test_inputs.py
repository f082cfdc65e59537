from __future__ import annotations

from pathlib import Path

import pytest

from colbert_retriever.cli.inputs import Corpus, check_new_index_path, parse_filters
from colbert_retriever.errors import ConfigError
from colbert_retriever.results import Document


def test_an_empty_filter_value_is_refused_with_the_two_fixes() -> None:
    """Regression: `--filter 'title='` matched nothing and exited 0."""
    with pytest.raises(ConfigError, match=r"no value.*\{\"title\": \"\"\}.*\$exists"):
        parse_filters(["title="], [])


def test_parse_filters_reads_values_as_strings_and_ands_everything() -> None:
    assert parse_filters([], []) is None
    assert parse_filters(["title=1984"], []) == {"title": "1984"}
    assert parse_filters(["note=a=b"], []) == {"note": "a=b"}  # only the first "=" splits
    assert parse_filters(["lang=en", "lang=fr", "year=2020"], []) == {
        "$and": [{"lang": {"$in": ["en", "fr"]}}, {"year": "2020"}]
    }
    assert parse_filters(["lang=en"], ['{"year": {"$gte": 2020}}']) == {
        "$and": [{"lang": "en"}, {"year": {"$gte": 2020}}]
    }
    for bad in ("title==1984", "=x", "novalue"):
        with pytest.raises(ConfigError, match="FIELD=VALUE"):
            parse_filters([bad], [])
    for bad in ("[1]", '"x"', "{"):
        with pytest.raises(ConfigError, match="--filter-json"):
            parse_filters([], [bad])


def test_corpus_skips_blank_documents_or_refuses_them() -> None:
    docs = [Document("a", "text"), Document("b", " \n"), Document("c", "\u200b"), Document("d", "more")]
    corpus = Corpus(iter(docs), total=4)
    assert len(corpus) == 4
    assert [d.doc_id for d in corpus] == ["a", "d"]
    assert corpus.blank_report() == "skipped 2 blank document(s): 'b', 'c' (--strict to refuse them)"
    assert Corpus(iter(docs[:1]), total=1).blank_report() is None
    with pytest.raises(ConfigError, match="'b' is blank"):
        list(Corpus(iter(docs), total=4, strict=True))


def test_check_new_index_path(tmp_path: Path) -> None:
    check_new_index_path(tmp_path / "new" / "deeper")  # folders that do not exist yet: fine
    (tmp_path / "empty").mkdir()
    check_new_index_path(tmp_path / "empty")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for path, named in [
        (tmp_path / "full", "other content"),
        (a_file, "is a file"),
        (a_file / "under", "is a file, not a folder"),
    ]:
        with pytest.raises(ConfigError, match=named):
            check_new_index_path(path)
