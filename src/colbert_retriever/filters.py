"""The filter language: which documents a search may return, decided before ranking.

One spelling for the API, the CLI (`--filter JSON`) and the adapters, after MongoDB's (as
Chroma and LangChain's vector stores spell it)::

    {"lang": "en"}                                  equality (several fields: all must hold)
    {"year": {"$gte": 2020, "$lt": 2024}}           operators on one field: all must hold
    {"date": {"$gt": "2024-03-01"}}                 strings compare by code point: ISO dates work
    {"tags": {"$contains": "ml"}}                   a list value holds this element
    {"lang": {"$in": ["en", "fr"]}, "draft": {"$exists": False}}
    {"$or": [{"lang": "en"}, {"$not": {"year": {"$lt": 2000}}}]}

Operators: `$eq`, `$ne`, `$in`, `$nin`, `$gt`, `$gte`, `$lt`, `$lte`, `$exists`, `$contains`;
`$and`, `$or` (lists of filters) and `$not` (a filter) combine filters. Values compare as
JSON: `true` is not `1`, `1` equals `1.0`; `$ne` and `$nin` also match documents without
the field; a range operator matches numbers against a number, strings against a string.
Each store evaluates a parsed filter its own way: an index folder over its segments' metadata
columns with numpy (stores/folder/filtering.py), never one Python call per document; Qdrant
as a filter of its own (stores/qdrant/filters.py). A callable `metadata -> bool` stays for what the
language cannot say; it reads every live document's metadata on every search (slow on
large indexes).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from colbert_retriever.errors import ConfigError

Filter: TypeAlias = Mapping[str, Any] | Callable[[dict[str, Any]], bool]
"""A filter-language object, or a callable taking a document's metadata and returning a bool."""

_FIELD_OPERATORS = ("$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists", "$contains")
_LOGICAL_OPERATORS = ("$and", "$or", "$not")
RANGES = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}


@dataclass(frozen=True)
class Condition:
    """`field` `op` `value`, e.g. year $gte 2020."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class Logical:
    """`$and` / `$or` of its parts, or `$not` of its one part."""

    op: str
    parts: tuple[Condition | Logical, ...]


Node: TypeAlias = Condition | Logical


def parse(spec: Mapping[str, Any]) -> Node:
    """A filter object as a tree of conditions (fields of one object are ANDed)."""
    if not isinstance(spec, Mapping):
        msg = f"a filter must be an object (dict), got {type(spec).__name__}: {spec!r:.60}"
        raise ConfigError(msg)
    parts: list[Node] = []
    for key, value in spec.items():
        if not isinstance(key, str):
            msg = f"filter field names must be strings, got {key!r}"
            raise ConfigError(msg)
        if key in ("$and", "$or"):
            if not isinstance(value, (list, tuple)) or not value:
                msg = f"'{key}' takes a non-empty list of filters, got {value!r:.60}"
                raise ConfigError(msg)
            parts.append(Logical(key, tuple(parse(part) for part in value)))
        elif key == "$not":
            parts.append(Logical(key, (parse(value),)))
        elif key.startswith("$"):
            msg = f"unknown filter operator {key!r}; a filter's keys are field names or {', '.join(_LOGICAL_OPERATORS)}"
            raise ConfigError(msg)
        elif isinstance(value, Mapping) and any(str(op).startswith("$") for op in value):
            parts.extend(_condition(key, op, operand) for op, operand in value.items())
        else:
            parts.append(_condition(key, "$eq", value))
    return parts[0] if len(parts) == 1 else Logical("$and", tuple(parts))  # {}: an empty $and, all pass


def _condition(field: str, op: object, value: Any) -> Condition:
    where = f"filter on {field!r}: {op!r}"
    if op not in _FIELD_OPERATORS:
        msg = f"{where} is not an operator (valid: {', '.join(_FIELD_OPERATORS)})"
        raise ConfigError(msg)
    if op in ("$in", "$nin") and not isinstance(value, (list, tuple)):
        msg = f"{where} takes a list of values, got {value!r:.60}"
        raise ConfigError(msg)
    if op in RANGES and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
        msg = f"{where} takes a number or a string, got {value!r:.60}"
        raise ConfigError(msg)
    if op == "$exists" and not isinstance(value, bool):
        msg = f"{where} takes true or false, got {value!r:.60}"
        raise ConfigError(msg)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        msg = f"{where} takes JSON values without NaN or infinity, got {value!r:.60}"
        raise ConfigError(msg) from exc
    return Condition(field, str(op), list(value) if op in ("$in", "$nin") else value)
