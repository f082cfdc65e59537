"""Long documents as passages: where texts split, and the document kept as the unit of
add / upsert / delete / get / search."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from colbert_retriever import Chunking, ColBERT, ConfigError, IndexConfig, PlaidConfig, SearchConfig
from colbert_retriever.stores.protocol import Row, join_passages
from colbert_retriever.text.passages import split_text


def words(text: str) -> np.ndarray:
    """Word pieces as a whitespace tokenizer would give them, punctuation split off."""
    return np.array([m.span() for m in re.finditer(r"\w+|[^\w\s]", text)], dtype=np.int64).reshape(-1, 2)


def rebuilt(text: str, spans: list[tuple[int, int]]) -> str:
    return join_passages([Row("d", text[s:e], {}, i, s) for i, (s, e) in enumerate(spans)])


def test_a_text_that_fits_is_one_passage() -> None:
    text = "a short text."
    assert split_text(text, words(text), 10, 2) == [(0, len(text))]


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from("ab .\n"), max_size=400),
    most=st.integers(4, 40),
    overlap=st.integers(0, 2),
)
def test_passages_fit_and_cover_the_text_without_gaps(text: str, most: int, overlap: int) -> None:
    pieces = words(text)
    spans = split_text(text, pieces, most, overlap)
    assert spans[0][0] == 0
    assert spans[-1][1] == len(text)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start <= end  # no gap
    for start, end in spans:  # every passage holds at most `most` pieces
        assert ((pieces[:, 0] >= start) & (pieces[:, 1] <= end)).sum() <= most
    assert rebuilt(text, spans) == text


def test_passages_end_at_paragraphs_then_sentences_then_words() -> None:
    paragraph = "one two three four five six.\n\nseven eight nine ten"
    spans = split_text(paragraph, words(paragraph), 10, 0)
    assert paragraph[slice(*spans[0])].rstrip() == "one two three four five six."
    sentences = "one two three four five. six seven eight nine ten eleven"
    spans = split_text(sentences, words(sentences), 8, 0)
    assert sentences[slice(*spans[0])].rstrip() == "one two three four five."
    plain = "one two three four five six seven eight nine ten eleven"
    spans = split_text(plain, words(plain), 4, 1)
    assert [plain[s:e].split()[0] for s, e in spans] == ["one", "four", "seven", "ten"]  # one word repeated
    assert all(plain[s:e].strip().count(" ") <= 3 for s, e in spans)


def test_chunking_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="overlap"):
        Chunking(overlap=-1)
    with pytest.raises(ConfigError, match="at most half"):
        Chunking(overlap=10, max_tokens=12)
    with pytest.raises(ConfigError, match="passage_weights"):
        SearchConfig(passage_weights=())


LONG = " ".join(
    [
        "the eiffel tower is in paris.",
        "the capital of france is paris.",
        "a plant turns sun light and water into energy.",
        "vitamin d helps the bone and the protein.",
        "the cat sat on the mat with the dog.",
        "late interaction search with a query index is fast.",
    ]
)


@pytest.fixture
def retriever(tmp_path: Path, checkpoints) -> ColBERT:
    return ColBERT.create(tmp_path / "idx", model=checkpoints["stanford"], index_type="exact", show_progress=False)


def test_a_long_document_is_stored_whole_as_passages(retriever: ColBERT) -> None:
    retriever.add([LONG, "the cat sat."], ids=["long", "short"], metadata=[{"kind": "long"}, {"kind": "short"}])
    assert len(retriever) == 2
    assert retriever.info().passages > 3  # doc_maxlen 12: a handful of words per passage
    assert retriever.get(["long"])[0].text == LONG  # the whole text back
    passages = retriever.search("the capital of france", k=50, unit="passage")
    assert {h.doc_id for h in passages} == {"long", "short"}
    for hit in passages:  # each passage is its own span of the document's text
        assert retriever.get([hit.doc_id])[0].text[hit.start : hit.end] == hit.text
        assert hit.metadata == {"kind": hit.doc_id}
    numbers = sorted(h.passage for h in passages if h.doc_id == "long")
    assert numbers == list(range(retriever.info().passages - 1))
    hits = retriever.search("the capital of france", k=10)
    assert [h.doc_id for h in hits].count("long") == 1  # documents, not passages
    best = max((h for h in passages if h.doc_id == "long"), key=lambda h: h.late_score or 0.0)
    (shown,) = [h for h in hits if h.doc_id == "long"]  # shows the passage late interaction liked best
    assert (shown.passage, shown.passage_score) == (best.passage, pytest.approx(best.late_score))


def test_passages_are_stable_and_leave_with_their_document(retriever: ColBERT) -> None:
    retriever.add([LONG, LONG + " more"], ids=["a", "b"])
    before = {(h.doc_id, h.passage, h.start, h.end) for h in retriever.search("paris", k=100, unit="passage")}
    retriever.add(["another text about paris."], ids=["c"])
    after = {(h.doc_id, h.passage, h.start, h.end) for h in retriever.search("paris", k=100, unit="passage")}
    assert before <= after  # adding leaves other documents' passages as they were
    n = retriever.info().passages
    retriever.upsert(["the cat sat on the mat."], ids=["a"])  # all of a's passages replaced by one
    assert retriever.info().passages < n
    assert retriever.get(["a"])[0].text == "the cat sat on the mat."
    assert [h.passage for h in retriever.search("the eiffel tower", k=100, unit="passage") if h.doc_id == "a"] == [0]
    retriever.delete(["b"])
    assert "b" not in {h.doc_id for h in retriever.search("paris", k=100, unit="passage")}
    assert (
        retriever.info().passages
        == 1 + retriever.info().passages - 1
        == len(retriever.index.passages("a")) + len(retriever.index.passages("c"))
    )
    retriever.index.compact()
    assert retriever.get(["a", "c"])[1].text == "another text about paris."


@pytest.mark.parametrize("index_type", ["exact", "plaid"])
def test_k_documents_come_back_however_many_passages_match(tmp_path: Path, checkpoints, index_type: str) -> None:
    retriever = ColBERT.create(
        tmp_path / "idx",
        model=checkpoints["stanford"],
        index_type=index_type,  # type: ignore[arg-type]
        plaid=PlaidConfig(n_centroids=16),
        index_config=IndexConfig(docs_per_segment=3),
        show_progress=False,
    )
    crowd = " ".join(["paris is the capital of france."] * 40)  # ~40 passages that all match
    others = [f"{w} paris in france." for w in ("cat", "dog", "river", "cell", "gene", "sun")]
    retriever.add([crowd, *others], ids=["crowd", *(f"o{i}" for i in range(6))], metadata=[{"n": i} for i in range(7)])
    for k in (1, 3, 7):
        hits = retriever.search("paris capital of france", k=k)
        assert len(hits) == k
        assert len({h.doc_id for h in hits}) == k
    hits = retriever.search("paris capital of france", k=5, filters={"n": {"$gte": 3}})
    assert sorted(h.doc_id for h in hits) == ["o2", "o3", "o4", "o5"]  # all that pass, each once
    assert len(retriever.search("paris", k=100)) == 7


def test_explanation_sums_to_the_exact_score(retriever: ColBERT) -> None:
    retriever.add([LONG, "the cat sat on the mat."], ids=["long", "cat"])
    query = "where is the eiffel tower?"
    hit = next(h for h in retriever.search(query, k=2, mode="late", highlights=True) if h.doc_id == "long")
    explanation = retriever.explain(query, "long")
    assert explanation.passage == hit.passage
    assert sum(m.similarity for m in explanation.matches) == pytest.approx(hit.passage_score, rel=1e-5)
    assert explanation.score == pytest.approx(hit.score, rel=1e-5)
    assert sum(m.share for m in explanation.matches) == pytest.approx(1.0, rel=1e-5)
    assert len(explanation.matches) == 8  # query_maxlen, [MASK] expansion included
    assert explanation.matches[0].query_token == "[CLS]"
    text = retriever.get(["long"])[0].text
    for match in explanation.matches:  # real spans of the passage, which is a real span of the document
        assert explanation.text[match.start : match.end].lower() == match.doc_token.removeprefix("##") or (
            match.start == match.end
        )
        assert (
            text[explanation.start + match.start : explanation.start + match.end]
            == (explanation.text[match.start : match.end])
        )
    assert hit.explanation == explanation
    spans = hit.highlights  # sorted, merged, inside the passage's text
    assert spans
    assert all(0 <= s < e <= len(hit.text) for s, e in spans)
    assert all(e1 < s2 for (_, e1), (s2, _) in itertools.pairwise(spans))
