"""The filter language on Qdrant: every operator passes the documents it passes in an index folder."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("qdrant_client")

from colbert_retriever import ColBERT, ConfigError, QdrantConfig

METADATA: list[dict[str, Any]] = [
    {"lang": "en", "year": 2018, "draft": False, "date": "2024-01-15", "tags": ["ml", "nlp"]},
    {"lang": "fr", "year": 2019, "draft": True, "date": "2024-03-01", "tags": ["ir"]},
    {"lang": "en", "year": 2020.0, "draft": False, "date": "2024-03-02T10:00:00", "note": None},
    {"lang": "de", "year": 2021, "draft": False, "date": "2024-06-30", "tags": ["ml"]},
    {"year": 2022, "draft": True, "date": "2025-01-01", "note": "kept"},
    {"lang": "en", "draft": False, "tags": []},
    {"lang": "fr", "year": 2023, "date": "2023-12-31", "tags": ["nlp"]},
]
TEXTS = [f"the cat sat on mat number {i} with the dog" for i in range(len(METADATA))]
FILTERS: list[dict[str, Any]] = [
    {"lang": "en"},
    {"lang": {"$eq": "fr"}},
    {"lang": {"$ne": "en"}},
    {"year": 2020},
    {"year": {"$gte": 2020, "$lt": 2023}},
    {"year": {"$gt": 2021}},
    {"year": {"$lte": 2019}},
    {"lang": {"$in": ["en", "de"]}},
    {"lang": {"$nin": ["en"]}},
    {"year": {"$in": [2018, 2023]}},
    {"year": {"$nin": [2018, 2023]}},
    {"lang": {"$in": []}},
    {"draft": True},
    {"draft": {"$ne": True}},
    {"year": {"$exists": False}},
    {"lang": {"$exists": True}},
    {"tags": {"$contains": "ml"}},
    {"date": {"$gt": "2024-03-01"}},
    {"date": {"$lte": "2024-06-30"}},
    {"date": {"$gte": "2024-03-01", "$lt": "2025-01-01"}},
    {"note": None},
    {"$or": [{"lang": "de"}, {"year": {"$lt": 2019}}]},
    {"$not": {"lang": "en"}},
    {"$and": [{"draft": False}, {"lang": "en"}]},
    {"lang": "en", "year": {"$gte": 2019}},
    {},
]


@pytest.fixture(scope="module", params=["local", "edge"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, checkpoints
) -> tuple[ColBERT, ColBERT]:
    folder = tmp_path_factory.mktemp("filters")
    if request.param == "edge":
        pytest.importorskip("qdrant_edge")
        config = QdrantConfig(path=str(folder / "edge"), edge=True, show_progress=False)
    else:
        config = QdrantConfig(path=":memory:", show_progress=False)
    stores = (
        ColBERT.create(folder / "idx", model=checkpoints["stanford"], index_type="exact", show_progress=False),
        ColBERT.create(config, model=checkpoints["stanford"], show_progress=False),
    )
    for retriever in stores:
        retriever.add(TEXTS, ids=[f"d{i}" for i in range(len(TEXTS))], metadata=METADATA)
    return stores


def _on_a_bool(spec: Any) -> bool:
    return "draft" in str(spec)  # the one true/false field


@pytest.mark.parametrize("spec", FILTERS, ids=[str(f) for f in FILTERS])
def test_each_operator_passes_what_it_passes_in_an_index_folder(pair: tuple[ColBERT, ColBERT], spec: dict) -> None:
    folder, qdrant = pair
    if qdrant.index.config.edge and _on_a_bool(spec):  # type: ignore[attr-defined]
        with pytest.raises(ConfigError, match="true or false"):  # qdrant-edge-py 0.9 cannot match a bool
            qdrant.search("the cat", k=20, filters=spec)
        return
    expected = {h.doc_id for h in folder.search("the cat", k=20, filters=spec, mode="late")}
    assert {h.doc_id for h in qdrant.search("the cat", k=20, filters=spec, mode="late")} == expected
    assert {h.doc_id for h in qdrant.search("the cat", k=20, filters=spec, mode="hybrid")} == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (lambda metadata: True, "callable filter cannot run inside Qdrant"),
        ({"date": {"$gt": "yesterday"}}, "only as ISO dates"),
        ({"a.b": 1}, "as a path"),
        ({"tags": ["ml", "nlp"]}, "cannot compare a whole list"),
        ({"year": {"$near": 3}}, "not an operator"),
    ],
)
def test_what_qdrant_cannot_evaluate_is_a_clear_error(pair: tuple[ColBERT, ColBERT], spec: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        pair[1].search("the cat", k=3, filters=spec)


def test_filters_narrow_before_ranking(pair: tuple[ColBERT, ColBERT]) -> None:
    """k hits come back whenever k documents pass, however low they would rank."""
    hits = pair[1].search("the cat", k=2, filters={"lang": "fr"}, mode="late")
    assert sorted(h.doc_id for h in hits) == ["d1", "d6"]
