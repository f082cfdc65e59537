"""One pipeline over two stores: the same documents and settings give the same hits and
scores from an index folder and from a Qdrant collection (local mode and Edge).

Both stores get the same rows: texts, and token vectors that are unit vectors of sixteenths,
which float16 (the folder) and float32 after Qdrant's cosine normalisation hold exactly. Late
interaction is exact in both (an exact index scored in float32; a prefetch that keeps every
passage), so its scores agree within 1e-4. BM25 shares its words and formula but not its
length normalisation (the folder's live average length, Qdrant's fixed one), so lexical mode
is compared by the order of the hits, and hybrid search with RRF fusion, which reads only
that order.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("qdrant_client")

from colbert_retriever import DocumentBatch, Hit, Index, QdrantConfig, SearchConfig
from colbert_retriever.stores.qdrant.store import QdrantStore

DIM = 16
MODEL = {"name": "test", "digest": "0"}
SETTINGS = SearchConfig(passage_weights=(1.0, 0.5), fusion="rrf", scoring_dtype="float32")
PASSAGES = {  # document id -> its passages' texts (several: a long document)
    "paris": ["the eiffel tower is in paris,", " the capital of france."],
    "plant": ["a plant turns sun light and water into energy."],
    "bone": ["vitamin d helps the bone", " and the protein in the bone,", " and the cat."],
    "cat": ["the cat sat on the mat."],
    "music": ["music plays in the green house", " by the river with a cat."],
    "train": ["the red car and the blue train go to the green house with music."],
    "late": ["late interaction search", " with a query index", " is fast for the plant and the sun."],
}
QUERIES = ["green music house", "cat mat", "plant sun light", "vitamin bone", "paris"]


# Six sixteenths whose squares sum to 1: every unit vector of this kind, up to order and sign.
_SIXTEENTHS = [t for t in itertools.combinations_with_replacement(range(16), 6) if sum(x * x for x in t) == 256]


def _unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, DIM) float32 unit vectors of six signed sixteenths: exact in float16 and float32."""
    out = np.zeros((n, DIM), dtype=np.float32)
    for row in out:
        values = np.array(_SIXTEENTHS[rng.integers(len(_SIXTEENTHS))], dtype=np.float32) / 16
        row[rng.choice(DIM, size=6, replace=False)] = values * rng.choice([-1.0, 1.0], size=6)
    return out


def _batch(rng: np.random.Generator) -> DocumentBatch:
    ids, texts, metadata, vectors, passages, starts = [], [], [], [], [], []
    for n, (doc_id, parts) in enumerate(PASSAGES.items()):
        start = 0
        for number, text in enumerate(parts):
            ids.append(doc_id)
            texts.append(text)
            metadata.append({"n": n})
            vectors.append(_unit_vectors(rng, int(rng.integers(3, 9))))
            passages.append(number)
            starts.append(start)
            start += len(text)
    return DocumentBatch(ids, texts, metadata, vectors, passages, starts)


@pytest.fixture(params=["local", "edge"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Index, QdrantStore]:
    if request.param == "edge":
        pytest.importorskip("qdrant_edge")
        config = QdrantConfig(path=str(tmp_path / "edge"), edge=True, show_progress=False, prefetch_min=1000)
    else:
        config = QdrantConfig(path=":memory:", show_progress=False, prefetch_min=1000)
    folder = Index.create(tmp_path / "idx", model=MODEL, dim=DIM, index_type="exact", search_config=SETTINGS)
    qdrant = QdrantStore.create(config, model=MODEL, dim=DIM, search_config=SETTINGS)
    batch = _batch(np.random.default_rng(0))
    folder.write([batch])
    qdrant.write([batch])
    return folder, qdrant


def _queries(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [_unit_vectors(rng, 6) for _ in QUERIES]


def _shown(hits: list[Hit]) -> list[tuple[str, int, int, int, str]]:
    return [(h.doc_id, h.passage, h.start, h.end, h.text) for h in hits]


@pytest.mark.parametrize("unit", ["document", "passage"])
@pytest.mark.parametrize("mode", ["late", "hybrid"])
def test_late_and_hybrid_give_the_same_hits_and_scores(stores: tuple[Index, QdrantStore], mode: str, unit: str) -> None:
    folder, qdrant = stores
    for seed in range(3):
        queries = _queries(seed)
        expected = folder.search(queries, k=4, mode=mode, unit=unit, texts=QUERIES)  # type: ignore[arg-type]
        found = qdrant.search(queries, k=4, mode=mode, unit=unit, texts=QUERIES)  # type: ignore[arg-type]
        for mine, theirs in zip(found, expected, strict=True):
            assert _shown(mine) == _shown(theirs)
            for name in ("score", "normalized_score", "passage_score", "late_score"):
                np.testing.assert_allclose(
                    [getattr(h, name) for h in mine], [getattr(h, name) for h in theirs], atol=1e-4, err_msg=name
                )
            assert [h.metadata for h in mine] == [h.metadata for h in theirs]


def test_passage_weights_score_a_document_from_two_passages_in_both(stores: tuple[Index, QdrantStore]) -> None:
    """(1.0, 0.5): a long document scores its best passage plus half its second, in both stores."""
    queries = _queries(0)
    for store in stores:
        documents = store.search(queries, k=len(PASSAGES), mode="late")[0]
        passages = store.search(queries, k=20, mode="late", unit="passage")[0]
        for doc_id in ("bone", "late"):
            best, second = sorted((h.score for h in passages if h.doc_id == doc_id), reverse=True)[:2]
            hit = next(h for h in documents if h.doc_id == doc_id)
            assert hit.score == pytest.approx(best + 0.5 * second, abs=1e-5)
            assert hit.passage_score == pytest.approx(best, abs=1e-5)


@pytest.mark.parametrize("unit", ["document", "passage"])
def test_lexical_gives_the_same_hits_in_the_same_order(stores: tuple[Index, QdrantStore], unit: str) -> None:
    folder, qdrant = stores
    texts = ["eiffel tower", "cat", "music", "vitamin protein"]
    queries = _queries(0)[: len(texts)]
    expected = folder.search(queries, k=5, mode="lexical", unit=unit, texts=texts)  # type: ignore[arg-type]
    found = qdrant.search(queries, k=5, mode="lexical", unit=unit, texts=texts)  # type: ignore[arg-type]
    for mine, theirs in zip(found, expected, strict=True):
        assert theirs
        assert _shown(mine) == _shown(theirs)
        assert all(h.lexical_score == h.score > 0 for h in mine + theirs)
        np.testing.assert_allclose([h.late_score for h in mine], [h.late_score for h in theirs], atol=1e-4)
        np.testing.assert_allclose([h.normalized_score for h in mine], [h.normalized_score for h in theirs], atol=1e-4)
