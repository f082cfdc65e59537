"""Hybrid and lexical search through `Index`: candidates from both sides, fused as documented,
filters on both sides, and a full-text side that follows every write."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from colbert_retriever import ConfigError, DocumentBatch, Index, IndexCorruptError, SearchConfig
from colbert_retriever.pipeline.fusion import blend, reciprocal_rank, saturated

DIM = 8
MODEL = {"name": "test", "format": "transformers", "dim": DIM, "digest": "x", "layout": {}}


def unit_vectors(seed: int, n: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def batch(ids: list[str], texts: list[str], meta: list[dict] | None = None, seed: int = 0) -> DocumentBatch:
    return DocumentBatch(
        ids=ids,
        texts=texts,
        metadata=meta or [{} for _ in ids],
        vectors=[unit_vectors(seed + i, 3 + i % 4) for i in range(len(ids))],
    )


def lexical_ids(index: Index, text: str, k: int = 50) -> list[str]:
    return sorted(h.doc_id for h in index.search([unit_vectors(0, 1)], k=k, mode="lexical", texts=[text])[0])


QUERY = unit_vectors(999, 5)


@pytest.mark.parametrize("fusion", ["saturated", "blend", "rrf"])
def test_a_rare_exact_token_is_found_in_hybrid_mode_and_not_in_late(tmp_path: Path, fusion: str) -> None:
    ids = [f"d{i}" for i in range(20)]
    plain = Index.create(tmp_path / "plain", model=MODEL, dim=DIM)
    plain.write([batch(ids, ["pump maintenance report"] * 20)])
    target = [h.doc_id for h in plain.search([QUERY], k=20, mode="late")[0]][5]  # just outside the top 5
    texts = ["pump fails with error ERR-4521X" if d == target else "pump maintenance report" for d in ids]
    config = SearchConfig(fusion=fusion)  # type: ignore[arg-type]
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM, search_config=config)
    index.write([batch(ids, texts)])  # the same vectors: the rare token is the only new tie to the query
    assert target not in [h.doc_id for h in index.search([QUERY], k=5, mode="late")[0]]
    hybrid = index.search([QUERY], k=5, texts=["ERR-4521X"])[0]  # hybrid: the default with a text
    assert target in [h.doc_id for h in hybrid]
    assert [h.doc_id for h in hybrid if h.lexical_score] == [target]
    assert [h.doc_id for h in index.search([QUERY], k=5, mode="lexical", texts=["ERR-4521X"])[0]] == [target]


@pytest.mark.parametrize("fusion", ["blend", "rrf", "saturated"])
def test_fused_scores_match_a_hand_computation(tmp_path: Path, fusion: str) -> None:
    texts = ["red apple pie", "green apple", "apple apple apple cider", "blue sky", "red sky at night", "pear"]
    ids = [f"d{i}" for i in range(len(texts))]
    config = SearchConfig(fusion=fusion, late_weight=0.6, rrf_k=10)  # type: ignore[arg-type]
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM, index_type="exact", search_config=config)
    index.write([batch(ids, texts)])
    query = "red apple"
    late = {h.doc_id: h.score for h in index.search([QUERY], k=6, mode="late")[0]}
    bm25 = {h.doc_id: h.score for h in index.search([QUERY], k=6, mode="lexical", texts=[query])[0]}
    assert set(bm25) == {"d0", "d1", "d2", "d4"}  # documents without either word have no BM25 score
    late_scores = np.array([late[d] for d in ids])
    lexical_scores = np.array([bm25.get(d, 0.0) for d in ids])
    if fusion == "blend":
        expected = blend(late_scores, lexical_scores, 0.6)
    elif fusion == "saturated":
        expected = saturated(late_scores / len(QUERY), lexical_scores, 0.6, SearchConfig().saturation)
    else:
        expected = reciprocal_rank(late_scores, lexical_scores, 10)
    hits = index.search([QUERY], k=6, mode="hybrid", texts=[query])[0]
    assert [h.doc_id for h in hits] == [ids[i] for i in np.argsort(-expected, kind="stable")]
    for hit in hits:
        assert hit.score == pytest.approx(expected[ids.index(hit.doc_id)], abs=1e-6)
        assert hit.late_score == pytest.approx(late[hit.doc_id], abs=1e-5)
        assert hit.lexical_score == pytest.approx(bm25.get(hit.doc_id, 0.0))
    assert len(index.search([QUERY], k=2, mode="hybrid", texts=[query])[0]) == 2  # k honoured


@pytest.mark.parametrize("mode", ["hybrid", "lexical"])
def test_normalized_score_is_late_interaction_over_query_tokens_in_every_mode(tmp_path: Path, mode: str) -> None:
    texts = ["red apple pie", "green apple", "apple apple apple cider", "blue sky", "red sky at night", "pear"]
    ids = [f"d{i}" for i in range(len(texts))]
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM, index_type="exact")
    index.write([batch(ids, texts, meta=[{"n": i} for i in range(len(texts))])])
    late = {h.doc_id: h.normalized_score for h in index.search([QUERY], k=6, mode="late")[0]}
    for text in ("red apple", "qwzx plorb fnarg"):  # a match, and nonsense
        hits = index.search([QUERY], k=6, mode=mode, texts=[text])[0]  # type: ignore[arg-type]
        assert hits or (mode == "lexical" and text.startswith("qwzx"))  # no word of it is stored
        for hit in hits:
            assert hit.normalized_score == pytest.approx(late[hit.doc_id], abs=1e-6)
            assert hit.late_score == pytest.approx(late[hit.doc_id] * len(QUERY), abs=1e-5)
    # one document left by a filter: its score is its own, not 0 after min-max over one candidate
    (alone,) = index.search([QUERY], k=6, mode=mode, texts=["red apple"], filters={"n": 1})[0]  # type: ignore[arg-type]
    assert alone.normalized_score == pytest.approx(late["d1"], abs=1e-6) != 0


def test_filters_apply_to_both_sides_before_ranking(tmp_path: Path) -> None:
    texts = [f"common words {i}" for i in range(8)] + ["the unique zebra"]
    ids = [f"d{i}" for i in range(9)]
    meta = [{"team": "a" if i % 2 else "b"} for i in range(9)]  # d8 (the zebra) is team b
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM)
    index.write([batch(ids, texts, meta)])
    hits = index.search([QUERY], k=3, filters={"team": "a"}, texts=["zebra"])[0]
    assert len(hits) == 3
    assert all(h.metadata["team"] == "a" for h in hits)
    assert index.search([QUERY], k=3, filters={"team": "a"}, mode="lexical", texts=["zebra"])[0] == []
    assert [
        h.doc_id for h in index.search([QUERY], k=3, filters={"team": "b"}, mode="lexical", texts=["zebra"])[0]
    ] == ["d8"]
    hits = index.search([QUERY], k=5, filters={"team": "b"}, texts=["zebra"])[0]
    assert {h.doc_id: bool(h.lexical_score) for h in hits} == {f"d{i}": i == 8 for i in range(0, 9, 2)}


def test_a_document_of_passages_is_one_lexical_hit_showing_the_passage_that_matched(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM)
    passages = ["intro about pumps", "the valve section", "closing words"]
    starts = [0, 18, 36]
    index.write(
        [
            DocumentBatch(
                ids=["long", "long", "long", "short"],
                texts=[*passages, "a valve and a valve again"],
                metadata=[{}] * 4,
                vectors=[unit_vectors(i, 4) for i in range(4)],
                passages=[0, 1, 2, 0],
                starts=[*starts, 0],
            )
        ]
    )
    hits = index.search([QUERY], k=5, mode="lexical", texts=["valve"])[0]
    assert sorted(h.doc_id for h in hits) == ["long", "short"]
    long_hit = next(h for h in hits if h.doc_id == "long")
    assert (long_hit.passage, long_hit.text, long_hit.start) == (1, "the valve section", 18)
    hybrid = index.search([QUERY], k=5, texts=["valve"])[0]
    assert sorted(h.doc_id for h in hybrid) == ["long", "short"]  # each document once
    assert len(index.search([QUERY], k=5, mode="hybrid", unit="passage", texts=["valve"])[0]) == 4


@pytest.mark.parametrize("index_type", ["exact", "plaid"])
def test_the_full_text_side_follows_add_upsert_delete_and_compact(tmp_path: Path, index_type: str) -> None:
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM, index_type=index_type)  # type: ignore[arg-type]
    ids = [f"d{i}" for i in range(40)]
    index.write([batch(ids, [f"doc tag{i}" for i in range(40)])])
    index.write([batch(["new"], ["doc tagnew"], seed=77)])
    assert lexical_ids(index, "tag3 tagnew") == ["d3", "new"]
    index.write([batch(["d3"], ["doc replaced"], seed=5)], upsert=True)
    assert lexical_ids(index, "tag3") == []
    assert lexical_ids(index, "replaced") == ["d3"]
    index.delete(["new", "d4"])
    assert lexical_ids(index, "tagnew tag4 tag5") == ["d5"]
    index.compact()
    assert index.info().segments == 1
    assert index.info().lexical
    assert lexical_ids(index, "tagnew tag4 tag5 replaced") == ["d3", "d5"]
    assert len(index.search([QUERY], k=50, mode="lexical", texts=["doc"])[0]) == 39
    index.verify()
    reopened = Index.open(tmp_path / "idx", verify=True)
    assert lexical_ids(reopened, "tag5") == ["d5"]


def test_compact_switches_the_full_text_side_off_and_on(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM, lexical=False)
    index.write([batch(["a", "b"], ["alpha words", "beta words"])])
    assert not index.info().lexical
    with pytest.raises(ConfigError, match="no full-text index"):
        index.search([QUERY], k=2, mode="hybrid", texts=["alpha"])
    assert len(index.search([QUERY], k=2, texts=["alpha"])[0]) == 2  # no mode: late on such an index
    index.compact(lexical=True)
    assert index.info().lexical
    assert lexical_ids(index, "alpha") == ["a"]
    index.compact(lexical=False)
    assert not index.info().lexical
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["lexical"] is False
    assert not any("lexical_words.npy" in s["files"] for s in manifest["segments"])
    Index.open(tmp_path / "idx", verify=True)


def test_a_write_staged_before_a_compact_switched_the_side_commits_consistently(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM)
    other = Index.open(tmp_path / "idx")
    index.write([batch(["a"], ["alpha"])])

    def batches():  # staged (with a full-text file) while another handle drops the side
        yield batch(["b"], ["beta"], seed=3)
        other.compact(lexical=False)
        yield batch(["c"], ["gamma"], seed=4)

    index.write(batches())
    assert not index.info().lexical
    assert len(index) == 3
    Index.open(tmp_path / "idx", verify=True)
    other.refresh()
    other.compact(lexical=True)

    def more():
        yield batch(["d"], ["delta"], seed=5)
        index.compact(lexical=False)
        index.compact(lexical=True)

    other.write(more())
    assert lexical_ids(Index.open(tmp_path / "idx", verify=True), "alpha delta") == ["a", "d"]


def test_mode_and_text_errors(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM)
    index.write([batch(["a"], ["alpha"])])
    with pytest.raises(ConfigError, match="mode must be"):
        index.search([QUERY], k=1, mode="fuzzy", texts=["alpha"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs each query's text"):
        index.search([QUERY], k=1, mode="lexical")
    assert index.search([QUERY], k=1, mode="lexical", texts=["?!"])[0] == []  # no word: nothing to match
    with pytest.raises(ConfigError, match="late_weight"):
        SearchConfig(late_weight=1.5)


def test_an_altered_full_text_file_fails_verification(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM)
    index.write([batch(["a", "b"], ["alpha", "beta"])])
    (path,) = (tmp_path / "idx" / "segments").glob("*/lexical_counts.npy")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match=r"lexical_counts\.npy"):
        index.verify()
