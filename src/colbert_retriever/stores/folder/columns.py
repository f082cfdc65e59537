"""Metadata as columns: what filters are evaluated on, without parsing a single document.

Metadata is schemaless JSON, so a column is not one typed array per key but a list of
entries, one per (key, document) pair present. Each entry is a row, a code and a number,
one comparison telling any two JSON values apart:

* a string's code is its position in the segment's sorted strings (so codes sort as the
  strings do: a range filter on ISO dates is a range of codes); a list or an object is the
  code of its canonical JSON plus the number of strings, so it never equals a string;
* a number has code `NUMBER` and its value in `number` (float64: integers past 2**53 lose
  precision); every other entry's number is NaN, which equals and orders with nothing;
* false, true and null have codes `FALSE`, `TRUE` and `NULL` (true is not 1).

Files of a segment, all memory-mapped:

* ``meta_strings.npy`` (uint8) and ``meta_string_offsets.npy`` ((n_strings + 1,) int64):
  every distinct string (keys, string values, canonical JSON of lists and objects), UTF-8,
  sorted, back to back;
* ``meta_values.npy``: (3, n_entries) int64, rows: document row, code, and the number's
  float64 bits; one entry per (key, document), sorted by key, then row;
* ``meta_items.npy``: the same for the elements of list values (row: the document's);
* ``meta_keys.npy``: (n_keys, 5) int64: key code, then the key's range of values and of items.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colbert_retriever.atomic import FileInfo, write_npy

NUMBER, FALSE, TRUE, NULL = -1, -2, -3, -4
FILES = ("meta_strings.npy", "meta_string_offsets.npy", "meta_values.npy", "meta_items.npy", "meta_keys.npy")
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(value: Any) -> str:
    """The one JSON spelling of a list or object, for equality on compound values."""
    return _CANONICAL.encode(value)


def classify(value: Any) -> tuple[int, float, str | None]:
    """(code, number, string) of a JSON value. A string, list or object has code 0 (string)
    or 1 (compound) until its string is coded; others have their final code."""
    if value is None:
        return NULL, np.nan, None
    if isinstance(value, bool):
        return (TRUE if value else FALSE), np.nan, None
    if isinstance(value, (int, float)):
        return NUMBER, float(value), None
    if isinstance(value, str):
        return 0, np.nan, value
    return 1, np.nan, canonical(value)


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
        self.codes: list[int] = []
        self.numbers: list[float] = []
        self.strings: list[str | None] = []

    def add(self, key: str, row: int, value: Any) -> None:
        code, number, string = classify(value)
        self.keys.append(key)
        self.rows.append(row)
        self.codes.append(code)
        self.numbers.append(number)
        self.strings.append(string)

    def to_array(self, code: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
        """(3, n) int64 entries (row, code, number bits) sorted by key, then row; and the
        code of each one's key."""
        compound = len(code)
        key_codes = np.array([code[k] for k in self.keys], dtype=np.int64)
        out = np.empty((3, len(self.rows)), dtype=np.int64)
        out[0] = self.rows
        out[1] = [c if s is None else code[s] + c * compound for c, s in zip(self.codes, self.strings, strict=True)]
        out[2] = np.array(self.numbers, dtype=np.float64).view(np.int64)
        order = np.lexsort((out[0], key_codes))
        return out[:, order], key_codes[order]


@dataclass(frozen=True)
class Entries:
    """One key's entries: (n,) int64 document rows and codes, (n,) float64 numbers."""

    rows: np.ndarray
    codes: np.ndarray
    numbers: np.ndarray

    @classmethod
    def of(cls, array: np.ndarray) -> Entries:
        return cls(rows=array[0], codes=array[1], numbers=array[2].view(np.float64))


@dataclass(frozen=True)
class KeyColumn:
    """One key in a segment: `values` per document that has the key, `items` per element
    of its list values."""

    values: Entries
    items: Entries


class Columns:
    """A segment's metadata columns, memory-mapped, with string lookups by binary search."""

    def __init__(self, arrays: dict[str, np.ndarray], n_rows: int) -> None:
        self.n_rows = n_rows
        self._strings = arrays["meta_strings"].data  # a memoryview: slicing it copies nothing
        self._offsets = arrays["meta_string_offsets"]
        self._values = arrays["meta_values"].reshape(3, -1)
        self._items = arrays["meta_items"].reshape(3, -1)
        self._keys = arrays["meta_keys"].reshape(-1, 5)
        self._found: dict[str, tuple[int, int]] = {}  # the same keys and values, search after search

    def __len__(self) -> int:
        """Number of distinct strings (codes at or above it are lists and objects)."""
        return len(self._offsets) - 1

    def _bytes(self, code: int) -> bytes:
        return bytes(self._strings[int(self._offsets[code]) : int(self._offsets[code + 1])])

    def bisect(self, value: str) -> tuple[int, int]:
        """(codes of strings < value, codes of strings <= value): the value's code is the
        first if present (then the two differ by one)."""
        found = self._found.get(value)
        if found is None:
            target = value.encode("utf-8")
            lo, hi = 0, len(self)
            while lo < hi:  # the first string >= target
                mid = (lo + hi) // 2
                lo, hi = (mid + 1, hi) if self._bytes(mid) < target else (lo, mid)
            found = (lo, lo + (lo < len(self) and self._bytes(lo) == target))
            if len(self._found) > 1 << 12:  # bounded: filters may carry many distinct values
                self._found.clear()
            self._found[value] = found
        return found

    def code(self, value: Any) -> int | None:
        """The code entries equal to `value` have (None for a number: compare `numbers`);
        one no entry has if the segment never uses `value`."""
        code, _, string = classify(value)
        if code == NUMBER:
            return None
        if string is None:
            return code
        lo, hi = self.bisect(string)
        return lo + code * len(self) if hi > lo else NULL - 1

    def key(self, name: str) -> KeyColumn | None:
        """The entries of key `name`, or None if no document has it."""
        lo, hi = self.bisect(name)
        where = int(np.searchsorted(self._keys[:, 0], lo))
        if hi == lo or where == len(self._keys) or self._keys[where, 0] != lo:
            return None
        _, start, stop, item_start, item_stop = self._keys[where].tolist()
        return KeyColumn(
            values=Entries.of(self._values[:, start:stop]), items=Entries.of(self._items[:, item_start:item_stop])
        )
