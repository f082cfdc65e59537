"""Property-based tests: whatever users type goes in faithfully or is refused with a
`ColbertRetrieverError`, never a crash or a corrupt file."""

from __future__ import annotations

import json
import logging
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colbert_retriever import ColBERT, ColbertRetrieverError, ConfigError, Encoder, Index
from colbert_retriever.cli import main
from colbert_retriever.validation import is_blank

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

texts = st.text(min_size=1, max_size=400).filter(str.strip)  # any unicode, control characters too
huge_texts = st.builds(lambda text, times: (text + " ") * times, texts, st.integers(500, 3000))
ids = st.one_of(
    st.text(min_size=1, max_size=50).filter(lambda text: not is_blank(text)),
    st.sampled_from(["../x", "/etc/passwd", "a/b\\c", "C:\\x", ".", "..", "~", "x" * 5000, "nul\x00byte"]),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
metadata = st.dictionaries(st.text(max_size=20), json_values, max_size=5)


def _fresh(encoder: Encoder, folder: str) -> ColBERT:
    index = Index.create(Path(folder) / "idx", model=encoder.fingerprint.to_dict(), dim=encoder.dim)
    return ColBERT(encoder, index)


@SETTINGS
@given(
    docs=st.lists(st.tuples(ids, texts | huge_texts, metadata), min_size=1, max_size=6, unique_by=lambda d: d[0]),
    query=texts,
    k=st.integers(1, 50),
)
def test_documents_round_trip_and_search_never_crashes(encoder: Encoder, docs, query: str, k: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        retriever = _fresh(encoder, folder)
        doc_ids = [d[0] for d in docs]
        retriever.add([d[1] for d in docs], ids=doc_ids, metadata=[d[2] for d in docs])
        for stored in (retriever.get(doc_ids), Index.open(Path(folder) / "idx").get(doc_ids)):
            assert [(d.doc_id, d.text, d.metadata) for d in stored] == docs
        hits = retriever.search(query, k=k)
        assert len(hits) == min(k, len(docs))  # k larger than the corpus returns the corpus
        assert {h.doc_id for h in hits} <= set(doc_ids)
        assert all(-1 - 1e-3 <= h.normalized_score <= 1 + 1e-3 for h in hits)
        # ids such as "../x" never became paths: nothing beside or inside the index but its own files
        assert [p.name for p in Path(folder).iterdir()] == ["idx"]
        index_files = sorted(p.name for p in Path(folder, "idx").iterdir())
        assert index_files == ["manifest.json", "segments", "staging", "write.lock", "writer.pid"]
        assert not any(Path(folder, "idx", "staging").iterdir())  # the writer's staging folder went


@SETTINGS
@given(
    bad=st.one_of(
        st.tuples(st.just("x"), st.just("text"), st.just({"v": math.nan})),
        st.tuples(st.just("x"), st.just("text"), st.just({"v": [1, {"w": -math.inf}]})),
        st.tuples(st.just("x"), st.just("text"), st.just({"v": object()})),
        st.tuples(st.just("x"), st.text(alphabet=" \t\n\r\x0b\x0c\u3000", max_size=5), st.just({})),
        st.tuples(st.just("x"), st.just("half a pair \ud800"), st.just({})),
        st.tuples(st.just("\udfff"), st.just("text"), st.just({})),
        st.tuples(st.integers(), st.just("text"), st.just({})),
        st.tuples(st.just(""), st.just("text"), st.just({})),
        st.tuples(st.sampled_from([" ", "\t\n", "\u200b", "\ufeff "]), st.just("text"), st.just({})),
        st.tuples(st.just("x"), st.just("text"), st.just({1: "a"})),
        st.tuples(st.just("x"), st.just("text"), st.just({"n": 10**400})),
        st.tuples(st.just("x"), st.just("text"), st.just({"deep": [{"n": -(2**64)}]})),
        st.tuples(st.just("x"), st.binary(min_size=1), st.just({})),
        st.tuples(st.just("x"), st.just("text"), st.lists(st.integers(), max_size=2)),
    )
)
def test_bad_documents_are_refused_and_change_nothing(encoder: Encoder, bad) -> None:
    with tempfile.TemporaryDirectory() as folder:
        retriever = _fresh(encoder, folder)
        retriever.add(["kept"], ids=["kept"])
        manifest = (Path(folder) / "idx" / "manifest.json").read_bytes()
        with pytest.raises(ConfigError):
            retriever.add([bad[1]], ids=[bad[0]], metadata=[bad[2]])
        assert (Path(folder) / "idx" / "manifest.json").read_bytes() == manifest
        assert Index.open(Path(folder) / "idx").doc_ids() == ["kept"]


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory: pytest.TempPathFactory, checkpoints) -> Path:
    corpus = tmp_path_factory.mktemp("cli") / "corpus.jsonl"
    rows = [{"_id": f"d{i}", "title": "", "text": t} for i, t in enumerate(["the cat", "a dog, a car", "paris"])]
    corpus.write_text("\n".join(json.dumps(r) for r in rows))
    index = corpus.parent / "idx"
    argv = ["index", "--model", str(checkpoints["stanford"]), "--input", str(corpus), "--index", str(index), "-q"]
    assert main(argv) == 0
    return index


@SETTINGS
@given(query=st.text(max_size=300), k=st.integers(-3, 10))
def test_cli_search_answers_any_query(cli_index: Path, query: str, k: int) -> None:
    if query.startswith("-"):
        query = " " + query  # argparse would read it as an option
    try:
        code = main(["search", "--index", str(cli_index), "-k", str(k), "--json", "-q", "--", query])
    except SystemExit as exc:  # argparse usage errors only
        code = exc.code
    valid = bool(query.strip()) and k >= 1
    assert code == (0 if valid else 1)


def test_very_long_document_without_chunking_is_cut_and_counted(
    encoder: Encoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    retriever = _fresh(encoder, str(tmp_path))
    retriever.chunking = None
    with caplog.at_level(logging.WARNING, logger="colbert_retriever"):
        retriever.add(["word " * 100_000, "short"], ids=["long", "short"])
    assert "1 document(s) were longer than doc_maxlen" in caplog.text  # never silent
    assert retriever.index.n_passages == 2
    assert retriever.index.n_tokens <= 2 * encoder.config.doc_maxlen
    assert retriever.info().cut == 1
    assert retriever.search("word", k=1)[0].doc_id == "long"
    retriever.delete(["long"])
    assert retriever.info().cut == 0


def test_errors_are_all_in_one_tree() -> None:
    with pytest.raises(ColbertRetrieverError):
        Index.open("/nonexistent/index")
