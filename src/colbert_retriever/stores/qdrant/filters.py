"""The filter language (colbert_retriever/filters.py) as Qdrant payload filters.

A document's metadata is stored under the payload key `metadata`, so field `year` is the
payload path `metadata.year`. Every operator maps:

    $eq / $ne         a string or bool: match; a number: the range [v, v] (so 1 equals 1.0);
                      null: is_null. $ne is must_not of $eq (it also passes documents
                      without the field, as in an index folder).
    $in / $nin        should of $eq (match_any for strings); $nin is must_not of $in
    $gt $gte $lt $lte a number: range; a string: a datetime range (ISO dates and times
                      compare as in an index folder; other strings cannot be ranged in Qdrant)
    $exists           true: must_not is_empty; false: is_empty
    $contains         match of the element (Qdrant matches an array by any element)
    $and $or $not     must, should, must_not

Where Qdrant's meaning differs, it is Qdrant's: a condition on a list field holds when any
element satisfies it (`{"tags": "ml"}` also matches `["ml", "nlp"]`), and `$exists`
treats null and [] as absent; `$eq` [] (an empty list, as LlamaIndex's IS_EMPTY asks) also
passes documents without the field. Any other list or object as an `$eq` value and a
callable filter are `ConfigError`s: Qdrant cannot evaluate them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from qdrant_client import models

from colbert_retriever.errors import ConfigError
from colbert_retriever.filters import Condition, Filter, Logical, Node, parse

METADATA = "metadata"
_RANGE_NAMES = {"$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}


def to_qdrant(filters: Filter | None) -> models.Filter | None:
    """`filters` as a Qdrant filter over the `metadata` payload (None: no filter)."""
    if filters is None:
        return None
    if not isinstance(filters, Mapping):
        msg = "a callable filter cannot run inside Qdrant; write it in the filter language (colbert_retriever.filters)"
        raise ConfigError(msg)
    return _node(parse(filters))


def _node(node: Node) -> models.Filter:
    if isinstance(node, Logical):
        parts: list[Any] = [_node(part) for part in node.parts]
        if node.op == "$and":
            return models.Filter(must=parts)
        if node.op == "$or":
            return models.Filter(should=parts)
        return models.Filter(must_not=parts)
    return _condition(node)


def _condition(node: Condition) -> models.Filter:
    key = _key(node.field)
    if node.op in ("$ne", "$nin"):
        positive = Condition(node.field, "$eq" if node.op == "$ne" else "$in", node.value)
        return models.Filter(must_not=[_condition(positive)])
    if node.op == "$eq":
        return models.Filter(must=[_equals(key, node.value)])
    if node.op == "$in":
        strings = [v for v in node.value if isinstance(v, str)]
        others: list[Any] = [_equals(key, v) for v in node.value if not isinstance(v, str)]
        if strings:
            others.append(models.FieldCondition(key=key, match=models.MatchAny(any=strings)))
        return models.Filter(should=others) if others else models.Filter(must=[_nothing()])
    if node.op == "$contains":
        return models.Filter(must=[_equals(key, node.value)])
    if node.op == "$exists":
        empty = models.IsEmptyCondition(is_empty=models.PayloadField(key=key))
        return models.Filter(must_not=[empty]) if node.value else models.Filter(must=[empty])
    return models.Filter(must=[_range(key, node.op, node.value)])


def _equals(key: str, value: Any) -> Any:
    if value is None:
        return models.IsNullCondition(is_null=models.PayloadField(key=key))
    if isinstance(value, list) and not value:  # Qdrant tells [] from null, not from a missing field
        field = models.PayloadField(key=key)
        return models.Filter(
            must=[models.IsEmptyCondition(is_empty=field)], must_not=[models.IsNullCondition(is_null=field)]
        )
    if isinstance(value, (bool, str)):
        return models.FieldCondition(key=key, match=models.MatchValue(value=value))
    if isinstance(value, (int, float)):
        return models.FieldCondition(key=key, range=models.Range(gte=value, lte=value))
    msg = f"filter on {key[len(METADATA) + 1 :]!r}: Qdrant cannot compare a whole {type(value).__name__} value"
    raise ConfigError(msg)


def _range(key: str, op: str, value: float | str) -> models.FieldCondition:
    bound = _RANGE_NAMES[op]
    if not isinstance(value, str):
        return models.FieldCondition(key=key, range=models.Range(**{bound: value}))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        msg = f"filter on {key[len(METADATA) + 1 :]!r}: Qdrant ranges strings only as ISO dates, got {value!r:.40}"
        raise ConfigError(msg) from exc
    return models.FieldCondition(key=key, range=models.DatetimeRange(**{bound: moment}))


def _key(field: str) -> str:
    if any(c in field for c in ".[]") or not field:
        msg = f"filter field {field!r}: Qdrant reads '.', '[' and ']' in a key as a path; rename the metadata field"
        raise ConfigError(msg)
    return f"{METADATA}.{field}"


def _nothing() -> models.HasIdCondition:
    """A condition no point passes (an empty $in)."""
    return models.HasIdCondition(has_id=[])
