"""Checks of what callers pass in, at the public edge: texts, ids, metadata.

Everything past these checks is trusted: a `ConfigError` here names the first bad entry, so
nothing invalid ever reaches the encoder or the disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Sized
from typing import Any

from colbert_retriever.config import Mode, Unit
from colbert_retriever.errors import ConfigError, DimensionMismatchError, DuplicateIdError

# Characters with no width that str.strip() keeps: zero-width space/joiners, word joiner, BOM.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"


def is_blank(text: str) -> bool:
    """True for a string of only whitespace or invisible characters (nothing to encode)."""
    return not text.strip().strip(_INVISIBLE).strip()


def check_texts(texts: Sequence[str], what: str) -> list[str]:
    """A list of non-blank, valid Unicode strings, or a `ConfigError` naming the first bad one."""
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        msg = f"{what} must be a list of strings, got {type(texts).__name__}"
        raise ConfigError(msg)
    for i, text in enumerate(texts):
        check_string(text, f"{what}[{i}]", allow_blank=False)
    return list(texts)


def check_ids(doc_ids: Sequence[str], what: str = "ids") -> list[str]:
    """A list of string ids (not a bare string), or a `ConfigError`."""
    if isinstance(doc_ids, str) or not isinstance(doc_ids, Sequence) or not all(isinstance(d, str) for d in doc_ids):
        msg = f"{what} must be a list of strings, got {doc_ids!r:.80}"
        raise ConfigError(msg)
    return list(doc_ids)


def check_string(value: object, what: str, *, allow_blank: bool) -> None:
    """A string that encodes to UTF-8 (no unpaired surrogates), non-blank unless allowed."""
    if not isinstance(value, str):
        msg = f"{what} must be a string, got {type(value).__name__}"
        raise ConfigError(msg)
    if not value or (not allow_blank and is_blank(value)):
        msg = f"{what} is empty or whitespace only"
        raise ConfigError(msg)
    _check_unicode(value, what)


def _check_unicode(value: str, what: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        msg = f"{what} is not valid Unicode (an unpaired surrogate at position {exc.start})"
        raise ConfigError(msg) from exc


def check_documents(
    ids: Sequence[object], texts: Sequence[object], metadata: Sequence[object], *, upsert: bool = False
) -> None:
    """Validate one batch: string ids, non-blank texts, JSON metadata without NaN or infinity.

    Raises `ConfigError` naming the first bad entry; `DuplicateIdError` for an id repeated
    inside the batch.
    """
    if not (len(ids) == len(texts) == len(metadata)):
        msg = f"got {len(texts)} texts, {len(ids)} ids and {len(metadata)} metadata entries; they must match"
        raise ConfigError(msg)
    seen: set[object] = set()
    for i, (doc_id, text, meta) in enumerate(zip(ids, texts, metadata, strict=True)):
        check_string(doc_id, f"document id #{i}", allow_blank=False)
        if doc_id in seen:
            msg = f"document id {doc_id!r} appears twice in one {'upsert' if upsert else 'add'}"
            raise DuplicateIdError(msg)
        seen.add(doc_id)
        check_string(text, f"document {doc_id!r}: text", allow_blank=False)
        if not isinstance(meta, dict):
            msg = f"document {doc_id!r}: metadata must be a dict, got {type(meta).__name__}"
            raise ConfigError(msg)
        check_metadata(meta, f"document {doc_id!r}: metadata")


_INT64 = 2**63


def check_metadata(value: object, what: str) -> None:
    """JSON a store keeps exactly: dicts with string keys, lists (tuples become lists), strings (valid Unicode),
    integers within int64, finite floats, booleans and null; a `ConfigError` naming the key.

    >>> check_metadata({"year": 2024, "tags": ["a"], "n": {"deep": 1.5}}, "metadata")
    >>> check_metadata({"n": 10**400}, "metadata")
    Traceback (most recent call last):
    colbert_retriever.errors.ConfigError: metadata['n']: integer 1000000000000... does not fit in 64 bits
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                msg = f"{what}: key {key!r} is a {type(key).__name__}; metadata keys must be strings"
                raise ConfigError(msg)
            _check_unicode(key, f"{what}: key {key!r}")
            check_metadata(item, f"{what}[{key!r}]")
    elif isinstance(value, (list, tuple)):  # a tuple is stored as a list, as JSON does
        for i, item in enumerate(value):
            check_metadata(item, f"{what}[{i}]")
    elif isinstance(value, str):
        _check_unicode(value, what)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            msg = f"{what}: integer {str(value)[:13]}... does not fit in 64 bits"
            raise ConfigError(msg)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            msg = f"{what}: {value} is not a JSON number (NaN and infinity are not)"
            raise ConfigError(msg)
    else:
        msg = f"{what}: a {type(value).__name__} is not JSON (use strings, numbers, booleans, null, lists, dicts)"
        raise ConfigError(msg)


def check_columns(texts: object, ids: object, metadata: object) -> int | None:
    """Check that `texts` (and `ids`, `metadata` if not None) are iterables of one entry per
    text, of one length where it is known; return the number of texts, if known."""
    if isinstance(texts, str) or not isinstance(texts, Iterable):
        msg = f"texts must be an iterable of strings, not {type(texts).__name__}"
        raise ConfigError(msg)
    for name, value in (("ids", ids), ("metadata", metadata)):
        if value is not None and (isinstance(value, (str, dict)) or not isinstance(value, Iterable)):
            msg = f"{name} must be an iterable with one entry per text, got {type(value).__name__}"
            raise ConfigError(msg)
    columns = (("texts", texts), ("ids", ids), ("metadata", metadata))
    sizes = {name: len(v) for name, v in columns if isinstance(v, Sized)}
    if len(set(sizes.values())) > 1:
        msg = f"got {', '.join(f'{n} {name}' for name, n in sizes.items())}; they must match"
        raise ConfigError(msg)
    return sizes.get("texts")


def check_queries(queries: Sequence[Any], k: object, dim: int) -> None:
    """A `ConfigError` unless `k` is a positive integer, a `DimensionMismatchError` unless
    every query is an (n_tokens, `dim`) array."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        msg = f"k must be a positive integer, got {k!r}"
        raise ConfigError(msg)
    for q in queries:
        if q.ndim != 2 or q.shape[1] != dim:
            msg = f"query vectors have shape {q.shape}; the index stores dim={dim}"
            raise DimensionMismatchError(msg)


def resolve_mode(
    mode: Mode | None, unit: Unit, *, lexical: bool, n_queries: int, n_texts: int, add_lexical: str
) -> Mode:
    """The mode a search runs in: `mode`, or (None) hybrid where the store has a full-text
    side and the queries' texts are given, else late; a `ConfigError` for a bad unit or mode,
    a lexical mode without the side (`add_lexical` says how to get one) or without texts."""
    if unit not in ("document", "passage"):
        msg = f"unit must be 'document' or 'passage', got {unit!r}"
        raise ConfigError(msg)
    mode = mode or ("hybrid" if lexical and n_texts else "late")
    if mode not in ("hybrid", "late", "lexical"):
        msg = f"mode must be 'hybrid', 'late' or 'lexical', got {mode!r}"
        raise ConfigError(msg)
    if mode != "late" and not lexical:
        msg = f"no full-text index for {mode} search: {add_lexical}"
        raise ConfigError(msg)
    if mode != "late" and n_texts != n_queries:
        msg = f"{mode} search needs each query's text: got {n_texts} texts for {n_queries} queries"
        raise ConfigError(msg)
    return mode
