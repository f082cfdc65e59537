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
A filter is evaluated over the segments' metadata columns (storage/columns.py) with numpy,
never one Python call per document. A callable `metadata -> bool` stays for what the
language cannot say; it reads every live document's metadata on every search (slow on
large indexes).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np

from colbert_retriever.errors import ConfigError
from colbert_retriever.storage.columns import Columns, Entries
from colbert_retriever.storage.segment import Segment

Filter: TypeAlias = Mapping[str, Any] | Callable[[dict[str, Any]], bool]
"""A filter-language object, or a callable taking a document's metadata and returning a bool."""

_FIELD_OPERATORS = ("$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists", "$contains")
_LOGICAL_OPERATORS = ("$and", "$or", "$not")
_RANGES = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}


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


def compile_filter(filters: Filter | None) -> Callable[[Segment], np.ndarray] | None:
    """Check `filters` and return what computes a segment's (n_rows,) bool mask of the
    documents that pass (None: no filter). Raises `ConfigError` naming a bad operator."""
    if filters is None:
        return None
    if isinstance(filters, Mapping):
        node = parse(filters)
        return lambda segment: evaluate(node, segment.documents.columns)
    if callable(filters):
        accept = filters

        def call(segment: Segment) -> np.ndarray:
            rows = segment.live_rows
            mask = np.zeros(segment.n_rows, dtype=bool)
            mask[rows] = [bool(accept(doc.metadata)) for doc in segment.documents.read(rows.tolist())]
            return mask

        return call
    msg = f"filters must be a filter object (dict) or a callable(metadata) -> bool, got {type(filters).__name__}"
    raise ConfigError(msg)


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
    if op in _RANGES and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
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


def evaluate(node: Node, columns: Columns) -> np.ndarray:
    """(n_rows,) bool: the documents of one segment that pass `node`."""
    if isinstance(node, Logical):
        masks = [evaluate(part, columns) for part in node.parts] or [np.ones(columns.n_rows, dtype=bool)]
        if node.op == "$not":
            return ~masks[0]
        return np.logical_and.reduce(masks) if node.op == "$and" else np.logical_or.reduce(masks)
    if node.op in ("$ne", "$nin"):
        return ~evaluate(Condition(node.field, "$eq" if node.op == "$ne" else "$in", node.value), columns)
    mask = np.zeros(columns.n_rows, dtype=bool)
    key = columns.key(node.field)
    if node.op == "$exists":
        if key is not None:
            mask[key.values.rows] = True
        return mask if node.value else ~mask
    if key is None:
        return mask
    entries = key.items if node.op == "$contains" else key.values
    if node.op in _RANGES:
        match = _compare(entries, node.op, node.value, columns)
    else:
        match = _equals_any(entries, node.value if node.op == "$in" else [node.value], columns)
    if len(entries.rows) == columns.n_rows and node.op != "$contains":
        return match  # every document has the field: entry i is row i
    mask[entries.rows[match]] = True
    return mask


def _equals_any(entries: Entries, values: list[Any], columns: Columns) -> np.ndarray:
    """(len(entries),) bool: entries equal to any of `values`, compared as JSON values."""
    codes, numbers = [], []
    for value in values:
        code = columns.code(value)
        if code is None:
            numbers.append(float(value))
        else:
            codes.append(code)
    match = np.zeros(len(entries.rows), dtype=bool)
    for column, wanted in ((entries.codes, codes), (entries.numbers, numbers)):
        if wanted:  # one pass per value beats np.isin's sort until there are several
            match |= np.logical_or.reduce([column == w for w in wanted]) if len(wanted) < 8 else np.isin(column, wanted)
    return match


def _compare(entries: Entries, op: str, value: float | str, columns: Columns) -> np.ndarray:
    """(len(entries),) bool: entries `op` value, numbers with a number, strings with a string.

    Strings compare through their codes, which sort as the strings do: with `below` codes
    of strings < value and `upto` codes of strings <= value, x > value is code >= upto (and
    below the lists and objects, coded from `len(columns)` on). A number's NaN in the other
    entries compares false with every number.
    """
    if isinstance(value, str):
        below, upto = columns.bisect(value)
        codes = entries.codes
        if op.startswith("$gt"):
            return (codes >= (upto if op == "$gt" else below)) & (codes < len(columns))
        return (codes >= 0) & (codes < (below if op == "$lt" else upto))
    return _RANGES[op](entries.numbers, value)
