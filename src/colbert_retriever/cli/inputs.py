"""What the command line reads before it calls the library: filter options, the documents of
an input file or folder (blank ones set aside), and where a new index may go."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from colbert_retriever.errors import ConfigError
from colbert_retriever.results import Document
from colbert_retriever.validation import is_blank


def parse_filters(fields: list[str], objects: list[str]) -> dict[str, Any] | None:
    """One filter object from `--filter FIELD=VALUE` (string equality; a repeated field
    matches any of its values) and `--filter-json OBJECT` options, all ANDed."""
    values: dict[str, list[str]] = defaultdict(list)
    for spec in fields:
        name, sep, value = spec.partition("=")
        if not sep or not name or value.startswith("="):
            msg = f"--filter expects FIELD=VALUE, got {spec!r} (use --filter-json for operators)"
            raise ConfigError(msg)
        if not value:
            msg = (
                f'--filter {spec!r} has no value; for an empty string use --filter-json \'{{"{name}": ""}}\', '
                f'for documents without the field \'{{"{name}": {{"$exists": false}}}}\''
            )
            raise ConfigError(msg)
        values[name].append(value)
    parts: list[Any] = [{name: vs[0] if len(vs) == 1 else {"$in": vs}} for name, vs in values.items()]
    for spec in objects:
        try:
            parsed = json.loads(spec)
        except ValueError as exc:
            msg = f"--filter-json {spec!r:.60} is not valid JSON ({exc})"
            raise ConfigError(msg) from exc
        if not isinstance(parsed, dict):
            msg = f"--filter-json expects a JSON object, got {spec!r:.60}"
            raise ConfigError(msg)
        parts.append(parsed)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


@dataclass
class Corpus:
    """The documents of an input, with their count for the progress bar; blank ones are
    skipped and their ids kept in `blank` (or, `strict`, refused)."""

    documents: Iterator[Document]
    total: int
    strict: bool = False
    blank: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[Document]:
        for doc in self.documents:
            if is_blank(doc.text):
                if self.strict:
                    msg = f"document {doc.doc_id!r} is blank (--strict refuses blank documents)"
                    raise ConfigError(msg)
                self.blank.append(doc.doc_id)
                continue
            yield doc

    def blank_report(self) -> str | None:
        """A line counting the skipped blank documents and naming the first few."""
        if not self.blank:
            return None
        shown = ", ".join(repr(d) for d in self.blank[:5]) + (", ..." if len(self.blank) > 5 else "")
        return f"skipped {len(self.blank)} blank document(s): {shown} (--strict to refuse them)"


def check_new_index_path(path: Path) -> None:
    """A `ConfigError` when a new index cannot be created at `path`: a file or other content
    is in the way, or the nearest existing folder may not be written to."""
    if path.exists() and not path.is_dir():
        msg = f"--index {path} is a file; give a folder for the index"
        raise ConfigError(msg)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        msg = f"--index {path}: {existing} is a file, not a folder"
        raise ConfigError(msg)
    if not os.access(existing, os.W_OK | os.X_OK):
        msg = f"--index {path}: no permission to write in {existing}"
        raise ConfigError(msg)
    if existing == path and any(path.iterdir()):
        msg = f"--index {path} is a folder with other content; choose a new or empty folder for the index"
        raise ConfigError(msg)
