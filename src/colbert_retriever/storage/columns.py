"""Metadata as columns: what filters are evaluated on, without parsing a single document.

Metadata is schemaless JSON, so a column is not one typed array per key but a list of
entries, one per (key, document) pair present, each with the value's kind and the value
itself (a number, or the code of a string). Files of a segment, all memory-mapped:

* ``meta_strings.npy`` (uint8) and ``meta_string_offsets.npy`` ((n_strings + 1,) int64):
  every distinct string (keys, string values, and lists or objects as canonical JSON),
  UTF-8, sorted, back to back. A string's code is its position, so codes sort as the strings
  do: a range filter on ISO dates is a range of codes.
* ``meta_values.npy``: structured (row int32, kind uint8, code int32, number float64), one
  entry per (key, document), sorted by key, then row;
* ``meta_items.npy``: the same for the elements of list values (row: the document's);
* ``meta_keys.npy``: (n_keys, 5) int64: key code, then the key's range of values and of
  items.

Kinds: null, bool (number 0 or 1), number (float64: integers past 2**53 lose precision),
string, list and object (both by their canonical JSON's code).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colbert_retriever.storage.atomic import FileInfo, write_npy

NULL, BOOL, NUMBER, STRING, LIST, OBJECT = range(1, 7)
ENTRY = np.dtype([("row", "<i4"), ("kind", "u1"), ("code", "<i4"), ("number", "<f8")])
FILES = ("meta_strings.npy", "meta_string_offsets.npy", "meta_values.npy", "meta_items.npy", "meta_keys.npy")


def canonical(value: Any) -> str:
    """The one JSON spelling of a list or object, for equality on compound values."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def classify(value: Any) -> tuple[int, float, str | None]:
    """(kind, number, string) of a JSON value: the string is None for null, bools and numbers."""
    if value is None:
        return NULL, 0.0, None
    if isinstance(value, bool):
        return BOOL, float(value), None
    if isinstance(value, (int, float)):
        return NUMBER, float(value), None
    if isinstance(value, str):
        return STRING, 0.0, value
    return (LIST if isinstance(value, list) else OBJECT), 0.0, canonical(value)


def write_columns(folder: Path, metadata: Sequence[dict[str, Any]]) -> dict[str, FileInfo]:
    """Write the metadata columns of one segment's documents; return the files' entries."""
    values: dict[str, list[tuple[int, int, float, str | None]]] = {}
    items: dict[str, list[tuple[int, int, float, str | None]]] = {}
    for row, meta in enumerate(metadata):
        for key, value in meta.items():
            values.setdefault(key, []).append((row, *classify(value)))
            if isinstance(value, list):
                items.setdefault(key, []).extend((row, *classify(element)) for element in value)
    strings = sorted(
        {*values, *(s for entries in (*values.values(), *items.values()) for *_, s in entries if s is not None)}
    )
    code = {s: i for i, s in enumerate(strings)}
    keys = np.zeros((len(values), 5), dtype=np.int64)
    value_arrays, item_arrays = [], []
    done_values = done_items = 0
    for i, key in enumerate(sorted(values)):
        value_arrays.append(_entries(values[key], code))
        item_arrays.append(_entries(items.get(key, []), code))
        keys[i] = (
            code[key],
            done_values,
            done_values + len(value_arrays[-1]),
            done_items,
            done_items + len(item_arrays[-1]),
        )
        done_values, done_items = int(keys[i, 2]), int(keys[i, 4])
    encoded = [s.encode("utf-8") for s in strings]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    arrays: dict[str, np.ndarray] = {
        "meta_strings.npy": np.frombuffer(b"".join(encoded), dtype=np.uint8),
        "meta_string_offsets.npy": offsets,
        "meta_values.npy": np.concatenate(value_arrays) if value_arrays else np.zeros(0, ENTRY),
        "meta_items.npy": np.concatenate(item_arrays) if item_arrays else np.zeros(0, ENTRY),
        "meta_keys.npy": keys,
    }
    return {name: write_npy(folder / name, array) for name, array in arrays.items()}


def _entries(rows: list[tuple[int, int, float, str | None]], code: dict[str, int]) -> np.ndarray:
    out = np.zeros(len(rows), dtype=ENTRY)
    if rows:
        row, kind, number, string = zip(*rows, strict=True)
        out["row"], out["kind"], out["number"] = row, kind, number
        out["code"] = [-1 if s is None else code[s] for s in string]
    return out


@dataclass(frozen=True)
class KeyColumn:
    """One key's entries in a segment: `values` per document that has the key, `items` per
    element of its list values."""

    values: np.ndarray
    items: np.ndarray


class Columns:
    """A segment's metadata columns, memory-mapped, with string lookups by binary search."""

    def __init__(self, arrays: dict[str, np.ndarray], n_documents: int) -> None:
        self.n_documents = n_documents
        self._strings = arrays["meta_strings"]
        self._offsets = arrays["meta_string_offsets"]
        self._values = arrays["meta_values"]
        self._items = arrays["meta_items"]
        self._keys = arrays["meta_keys"]

    def __len__(self) -> int:
        """Number of distinct strings."""
        return len(self._offsets) - 1

    def string(self, code: int) -> str:
        return bytes(self._strings[self._offsets[code] : self._offsets[code + 1]]).decode("utf-8")

    def bisect(self, value: str) -> tuple[int, int]:
        """(codes of strings < value, codes of strings <= value): the value's code is the
        first if present (then the two differ by one)."""
        target = value.encode("utf-8")
        lo, hi = 0, len(self)
        while lo < hi:  # first string >= target
            mid = (lo + hi) // 2
            if bytes(self._strings[self._offsets[mid] : self._offsets[mid + 1]]) < target:
                lo = mid + 1
            else:
                hi = mid
        found = lo < len(self) and self.string(lo) == value
        return lo, lo + found

    def code(self, value: str) -> int:
        """The code of `value`, or -1 if no document of the segment uses it."""
        lo, hi = self.bisect(value)
        return lo if hi > lo else -1

    def key(self, name: str) -> KeyColumn | None:
        """The entries of key `name`, or None if no document has it."""
        code = self.code(name)
        where = int(np.searchsorted(self._keys[:, 0], code)) if code >= 0 else len(self._keys)
        if where == len(self._keys) or self._keys[where, 0] != code:
            return None
        _, start, stop, item_start, item_stop = self._keys[where].tolist()
        return KeyColumn(values=self._values[start:stop], items=self._items[item_start:item_stop])
