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


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(value: Any) -> str:
    """The one JSON spelling of a list or object, for equality on compound values."""
    return _CANONICAL.encode(value)


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
    values, items = _Entries(), _Entries()
    for row, meta in enumerate(metadata):
        for key, value in meta.items():
            values.add(key, row, value)
            if isinstance(value, list):
                for element in value:
                    items.add(key, row, element)
    strings = sorted({*values.keys, *(s for s in (*values.strings, *items.strings) if s is not None)})
    code = {s: i for i, s in enumerate(strings)}
    value_array, value_keys = values.to_array(code)
    item_array, item_keys = items.to_array(code)
    key_codes = np.unique(value_keys)  # every key with a list value also has a value entry
    keys = np.stack(  # (n_keys, 5) int64: key code, values start and stop, items start and stop
        [
            key_codes,
            np.searchsorted(value_keys, key_codes, side="left"),
            np.searchsorted(value_keys, key_codes, side="right"),
            np.searchsorted(item_keys, key_codes, side="left"),
            np.searchsorted(item_keys, key_codes, side="right"),
        ],
        axis=1,
    ).astype(np.int64)
    encoded = [s.encode("utf-8") for s in strings]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    arrays: dict[str, np.ndarray] = {
        "meta_strings.npy": np.frombuffer(b"".join(encoded), dtype=np.uint8),
        "meta_string_offsets.npy": offsets,
        "meta_values.npy": value_array,
        "meta_items.npy": item_array,
        "meta_keys.npy": keys.reshape(-1, 5),
    }
    return {name: write_npy(folder / name, array) for name, array in arrays.items()}


class _Entries:
    """(key, row, value) entries as flat lists, turned into one sorted array."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.rows: list[int] = []
        self.kinds: list[int] = []
        self.numbers: list[float] = []
        self.strings: list[str | None] = []

    def add(self, key: str, row: int, value: Any) -> None:
        kind, number, string = classify(value)
        self.keys.append(key)
        self.rows.append(row)
        self.kinds.append(kind)
        self.numbers.append(number)
        self.strings.append(string)

    def to_array(self, code: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
        """The entries sorted by key, then row, and the code of each one's key."""
        key_codes = np.array([code[k] for k in self.keys], dtype=np.int64)
        out = np.zeros(len(self.rows), dtype=ENTRY)
        out["row"] = self.rows
        out["kind"] = self.kinds
        out["number"] = self.numbers
        out["code"] = [-1 if s is None else code[s] for s in self.strings]
        order = np.lexsort((out["row"], key_codes))
        return out[order], key_codes[order]


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
