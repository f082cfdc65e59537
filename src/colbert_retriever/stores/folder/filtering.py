"""The filter language (colbert_retriever/filters.py) evaluated over an index folder's
segments: each segment's metadata columns (columns.py) give a row mask with numpy, never one
Python call per document; a callable filter reads each live row's metadata."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from colbert_retriever.errors import ConfigError
from colbert_retriever.filters import RANGES, Condition, Filter, Logical, Node, parse
from colbert_retriever.stores.folder.columns import Columns, Entries
from colbert_retriever.stores.folder.segment import Segment


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
    if node.op in RANGES:
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
    return RANGES[op](entries.numbers, value)
