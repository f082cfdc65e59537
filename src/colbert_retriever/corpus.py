"""Reading corpora and test collections from disk: BEIR jsonl, folders of text, qrels."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from colbert_retriever.errors import ConfigError
from colbert_retriever.results import Document

TEXT_SUFFIXES = (".txt", ".md")


def read_corpus(path: str | Path) -> Iterator[Document]:
    """Documents from a BEIR-style jsonl (`_id`, `title`, `text`) or a folder of .txt/.md.

    jsonl: the text is the title and the text joined by a space (as BEIR does); every
    other field, the title included, becomes metadata. Folder: the id is the file's
    path relative to the folder, read as UTF-8.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            msg = f"folder {path} has no {'/'.join(TEXT_SUFFIXES)} files"
            raise ConfigError(msg)
        for file in files:
            rel = file.relative_to(path).as_posix()
            yield Document(doc_id=rel, text=file.read_text(encoding="utf-8"), metadata={"path": rel})
        return
    for row in read_jsonl(path):
        title, text = str(row.get("title") or ""), str(row.get("text") or "")
        metadata = {k: v for k, v in row.items() if k not in ("_id", "text")}
        yield Document(doc_id=str(row["_id"]), text=f"{title} {text}".strip(), metadata=metadata)


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Objects of a JSON Lines file; each needs an `_id`. Blank lines are skipped."""
    path = Path(path)
    if not path.is_file():
        msg = f"input file {path} does not exist"
        raise ConfigError(msg)
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                msg = f"{path}:{number}: not valid JSON ({exc})"
                raise ConfigError(msg) from exc
            if not isinstance(row, dict) or "_id" not in row:
                msg = f"{path}:{number}: each line must be a JSON object with an '_id'"
                raise ConfigError(msg)
            yield row


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """BEIR qrels (`query-id<TAB>corpus-id<TAB>score`, header optional) as {qid: {doc_id: grade}}."""
    path = Path(path)
    if not path.is_file():
        msg = f"qrels file {path} does not exist"
        raise ConfigError(msg)
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.strip().split("\t")
        if not line.strip() or parts[0] == "query-id":
            continue
        try:
            qid, doc_id, grade = parts[0], parts[1], int(parts[2])
        except (IndexError, ValueError) as exc:
            msg = f"{path}:{number}: expected 'query-id<TAB>corpus-id<TAB>score', got {line!r:.80}"
            raise ConfigError(msg) from exc
        qrels.setdefault(qid, {})[doc_id] = grade
    return qrels
