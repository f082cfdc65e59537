"""The filter language: vectorised evaluation over metadata columns against a plain-Python
reading of the documented semantics, clear errors, and k hits under selective filters."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_index import DIM, MODEL, vectors_for

from colbert_retriever import ConfigError, DocumentBatch, Index, PlaidConfig
from colbert_retriever.filters import parse
from colbert_retriever.stores.folder.documents import DocumentTable, write_documents
from colbert_retriever.stores.folder.filtering import evaluate
from colbert_retriever.stores.protocol import Row

# ---- a plain-Python reference of the documented semantics -------------------------------


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def json_equal(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _number(a) and _number(b):
        return float(a) == float(b)  # type: ignore[arg-type]
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        canon = {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": False}
        return type(a) is type(b) and json.dumps(a, **canon) == json.dumps(b, **canon)  # type: ignore[arg-type]
    return type(a) is type(b) and a == b


def reference(meta: dict[str, Any], spec: dict[str, Any]) -> bool:
    return all(_reference_item(meta, key, value) for key, value in spec.items())


def _reference_item(meta: dict[str, Any], key: str, value: Any) -> bool:
    if key == "$and":
        return all(reference(meta, part) for part in value)
    if key == "$or":
        return any(reference(meta, part) for part in value)
    if key == "$not":
        return not reference(meta, value)
    if isinstance(value, dict) and any(op.startswith("$") for op in value):
        return all(_reference_op(meta, key, op, operand) for op, operand in value.items())
    return _reference_op(meta, key, "$eq", value)


def _reference_op(meta: dict[str, Any], key: str, op: str, x: Any) -> bool:
    present, value = key in meta, meta.get(key)
    if op == "$eq":
        return present and json_equal(value, x)
    if op == "$ne":
        return not _reference_op(meta, key, "$eq", x)
    if op == "$in":
        return present and any(json_equal(value, y) for y in x)
    if op == "$nin":
        return not _reference_op(meta, key, "$in", x)
    if op == "$exists":
        return present == x
    if op == "$contains":
        return present and isinstance(value, list) and any(json_equal(e, x) for e in value)
    same_kind = (_number(value) and _number(x)) or (isinstance(value, str) and isinstance(x, str))
    compare = {"$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b, "$lt": lambda a, b: a < b}
    compare["$lte"] = lambda a, b: a <= b
    return present and same_kind and compare[op](value, x)


# ---- strategies -----------------------------------------------------------------------------

KEYS = ["lang", "date", "ünï"]  # few keys: filters and documents meet often
STRINGS = ["en", "fr", "", "2024-01-31", "2024-02-01", "2023-12-31T23:59", "é", "1", "true"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, 1.0, 1.5, -2.5, 2020, 2021.0, *STRINGS])
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.sampled_from(["x", "y"]), scalars, max_size=2),
)
metadata = st.lists(st.dictionaries(st.sampled_from(KEYS), values, max_size=4), min_size=1, max_size=25)
ranged = st.one_of(st.integers(-3, 3), st.sampled_from([1.5, *STRINGS, "2024", "e", "f", "é!"]))  # stored or not
operators = st.one_of(
    st.tuples(st.sampled_from(["$eq", "$ne", "$contains"]), values),
    st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(values, max_size=3)),
    st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), ranged),
    st.tuples(st.just("$exists"), st.booleans()),
)
field = st.one_of(
    st.builds(lambda k, v: {k: v}, st.sampled_from(KEYS), scalars),
    st.builds(lambda k, ops: {k: dict(ops)}, st.sampled_from(KEYS), st.lists(operators, min_size=1, max_size=2)),
)
single = st.builds(lambda k, op: {k: dict([op])}, st.sampled_from(KEYS), operators)
filters = st.recursive(
    st.one_of(single, field),
    lambda inner: st.one_of(
        st.builds(lambda parts: {"$and": parts}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda parts: {"$or": parts}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda part: {"$not": part}, inner),
        st.builds(lambda a, b: {**a, **b}, inner, inner),
    ),
    max_leaves=6,
)


def columns_of(folder: Path, metas: list[dict[str, Any]]) -> DocumentTable:
    n = len(metas)
    write_documents(folder, [Row(str(i), "text", meta) for i, meta in enumerate(metas)])
    return DocumentTable(folder, n)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metas=metadata, spec=filters)
def test_vectorised_evaluation_matches_the_reference(metas: list[dict[str, Any]], spec: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        table = columns_of(Path(folder), metas)
        got = evaluate(parse(spec), table.columns)
    assert got.tolist() == [reference(meta, spec) for meta in metas]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stored=st.lists(scalars, min_size=1, max_size=12), op=operators)
def test_one_operator_on_one_field_matches_the_reference(stored: list[Any], op: tuple[str, Any]) -> None:
    """Denser than the test above where it matters most: every document has the field."""
    metas, spec = [{"v": value} for value in stored], {"v": dict([op])}
    with tempfile.TemporaryDirectory() as folder:
        got = evaluate(parse(spec), columns_of(Path(folder), metas).columns)
    assert got.tolist() == [reference(meta, spec) for meta in metas]


def test_documented_examples(tmp_path: Path) -> None:
    metas = [
        {"lang": "en", "year": 2021, "tags": ["ml", "ir"], "date": "2024-03-05"},
        {"lang": "fr", "year": 2019.0, "tags": ["ir"], "date": "2023-11-30", "draft": True},
        {"lang": "en", "year": "2020", "tags": [], "date": "2024-02-29T10:00"},
        {"year": 2020, "flag": 1, "nested": {"a": [1, 2]}},
    ]
    columns = columns_of(tmp_path, metas).columns

    def passing(spec: dict[str, Any]) -> list[int]:
        return np.flatnonzero(evaluate(parse(spec), columns)).tolist()

    assert passing({"lang": "en"}) == [0, 2]
    assert passing({"year": {"$gte": 2020, "$lt": 2022}}) == [0, 3]  # "2020" is a string: no range match
    assert passing({"year": 2019}) == [1]  # 2019 equals 2019.0
    assert passing({"date": {"$gt": "2024-02-01"}}) == [0, 2]  # ISO dates compare as strings
    # at the boundaries: a value stored (its code) and not stored (between two codes)
    assert passing({"date": {"$gt": "2023-11-30"}}) == [0, 2]
    assert passing({"date": {"$gte": "2024-02-29T10:00"}}) == [0, 2]
    assert passing({"date": {"$lt": "2024-02-29T10:00"}}) == [1]
    assert passing({"date": {"$lte": "2024-02-29T10:00"}}) == [1, 2]
    assert passing({"date": {"$gt": "2024-03"}}) == [0]
    assert passing({"date": {"$lte": "2024-03"}}) == [1, 2]
    assert passing({"year": {"$gt": 2020}}) == [0]
    assert passing({"year": {"$lte": 2020}}) == [1, 3]
    assert passing({"tags": {"$contains": "ir"}}) == [0, 1]
    assert passing({"tags": []}) == [2]
    assert passing({"lang": {"$in": ["fr", "de"]}}) == [1]
    assert passing({"lang": {"$nin": ["fr"]}}) == [0, 2, 3]  # a missing field is not "fr"
    assert passing({"lang": {"$ne": "en"}}) == [1, 3]
    assert passing({"draft": {"$exists": False}}) == [0, 2, 3]
    assert passing({"flag": True}) == []  # true is not 1
    assert passing({"nested": {"a": [1, 2]}}) == [3]  # no "$": equality with an object
    assert passing({"$or": [{"lang": "fr"}, {"$not": {"year": {"$lt": 2021}}}]}) == [0, 1, 2]
    assert passing({}) == [0, 1, 2, 3]
    assert passing({"missing": {"$in": []}}) == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"year": {"$regex": "2.*"}}, r"'\$regex' is not an operator"),
        ({"year": {"$gt": 1, "lt": 5}}, "'lt' is not an operator"),
        ({"year": {"$gt": [2020]}}, r"'\$gt' takes a number or a string"),
        ({"year": {"$gt": True}}, r"'\$gt' takes a number or a string"),
        ({"lang": {"$in": "en"}}, r"'\$in' takes a list"),
        ({"lang": {"$exists": 1}}, r"'\$exists' takes true or false"),
        ({"lang": {"$eq": math.nan}}, "without NaN"),
        ({"$and": []}, r"'\$and' takes a non-empty list"),
        ({"$nor": [{"a": 1}]}, r"unknown filter operator '\$nor'"),
        ({"$not": ["a"]}, "a filter must be an object"),
        ({1: "x"}, "field names must be strings"),
    ],
)
def test_bad_filters_name_the_operator(spec: dict[Any, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(spec)


@pytest.mark.parametrize("kind", ["exact", "plaid"])
def test_selective_filters_still_return_k_hits(tmp_path: Path, kind: str) -> None:
    index = Index.create(tmp_path / kind, model=MODEL, dim=DIM, index_type=kind, plaid=PlaidConfig(n_centroids=16))
    ids = [f"d{i}" for i in range(300)]
    metas = [{"year": 1990 + i % 30, "tags": ["even" if i % 2 == 0 else "odd"]} for i in range(300)]
    index.write([DocumentBatch(ids=ids, texts=ids, metadata=metas, vectors=[vectors_for(i, 6) for i in ids])])
    index.delete(["d29"])  # a tombstoned row must never come back, filter or not
    spec = {"year": {"$gte": 2015}, "tags": {"$contains": "odd"}}  # 29 of 300 pass
    hits = index.search([vectors_for("query", 5)], k=25, filters=spec)[0]
    assert len(hits) == 25
    assert all(h.metadata["year"] >= 2015 and "odd" in h.metadata["tags"] for h in hits)
    everything = index.search([vectors_for("query", 5)], k=300, filters=spec)[0]
    assert sorted(h.doc_id for h in everything) == sorted(
        d for d, m in zip(ids, metas, strict=True) if m["year"] >= 2015 and "odd" in m["tags"] and d != "d29"
    )
    with pytest.raises(ConfigError, match=r"'\$around' is not an operator"):
        index.search([vectors_for("query", 5)], k=5, filters={"year": {"$around": 2000}})
