"""Reading corpora and test collections from disk: BEIR jsonl, folders of text, qrels."""

from __future__ import annotations

import codecs
import importlib.util
import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

from colbert_retriever.errors import ConfigError, MissingDependencyError
from colbert_retriever.results import Document
from colbert_retriever.validation import is_blank

logger = logging.getLogger(__name__)
TEXT_SUFFIXES = (".txt", ".md", ".pdf")  # .pdf: text extracted with pypdf (the `pdf` extra)


def read_corpus(path: str | Path, *, strict: bool = False) -> Iterator[Document]:
    """Documents from a BEIR-style jsonl (`_id`, `title`, `text`) or a folder of .txt/.md/.pdf.

    jsonl: the text is the title and the text joined by a space (as BEIR does); every
    other field, the title included, becomes metadata. `title` and `text` must be strings
    (or absent or null); a numeric `_id` becomes its JSON text (`7` is "7", `1.5` is "1.5").

    Folder: the id is the file's path relative to the folder; hidden files and folders (a
    name starting with ".") are skipped, and so are links that lead outside the folder
    (with a warning). Text files are decoded as UTF-8, or UTF-16/UTF-32 when they start
    with that encoding's byte-order mark; the text is kept as stored, line ends included
    (CRLF stays CRLF), so a hit's `start`/`end` index the file's decoded text. A file in
    another encoding is skipped with a warning naming it (`strict`: a `ConfigError`). A
    PDF's text is extracted with pypdf (install the `pdf` extra), its pages separated by a
    blank line; a PDF without a text layer (a scan) comes out blank and is skipped like any
    blank document.
    """
    path = Path(path)
    if path.is_dir():
        for file in text_files(path):
            rel = file.relative_to(path).as_posix()
            if file.suffix.lower() == ".pdf":
                text, pages = _pdf_text(file)
                yield Document(doc_id=rel, text=text, metadata={"path": rel, "pages": pages})
                continue
            decoded = decode_text(file, strict=strict)
            if decoded is not None:
                yield Document(doc_id=rel, text=decoded, metadata={"path": rel})
        return
    for number, row in _numbered_jsonl(path):
        fields = {}
        for name in ("title", "text"):
            value = row.get(name)
            if value is not None and not isinstance(value, str):
                msg = f"{path}:{number}: {name!r} must be a string, got {type(value).__name__} {json.dumps(value)[:40]}"
                raise ConfigError(msg)
            fields[name] = value or ""
        metadata = {k: v for k, v in row.items() if k not in ("_id", "text")}
        yield Document(
            doc_id=_doc_id(row["_id"], path, number),
            text=f"{fields['title']} {fields['text']}".strip(),
            metadata=metadata,
        )


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16's: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_text(file: Path, *, strict: bool = False) -> str | None:
    """The text of `file`, decoded by its byte-order mark (UTF-8 without one), line ends
    as stored; None (with a warning) for a file in another encoding, or with `strict` a
    `ConfigError`."""
    data = file.read_bytes()
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        msg = f"{file} is not {encoding.upper().removesuffix('-SIG')} text (byte {exc.start}); convert it to UTF-8"
        if strict:
            raise ConfigError(msg) from exc
        logger.warning("skipped: %s", msg)
        return None


def _doc_id(value: object, path: Path, number: int) -> str:
    """A jsonl `_id` as a string: a string as is, a number as its JSON text."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return json.dumps(value)
    msg = f"{path}:{number}: '_id' must be a string or a number, got {json.dumps(value)[:40]}"
    raise ConfigError(msg)


def count_documents(path: str | Path) -> int:
    """How many documents `read_corpus(path)` will yield (one cheap pass, no JSON parsing);
    a `ConfigError` when `path` is neither a jsonl file nor a folder with text files."""
    path = Path(path)
    if path.is_dir():
        return len(text_files(path))
    _check_file(path, "input file")
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def text_files(folder: Path) -> list[Path]:
    """The .txt/.md/.pdf files under `folder`, sorted, without hidden files and folders;
    links that lead outside `folder` are left out with a warning."""
    root = folder.resolve()
    files = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() not in TEXT_SUFFIXES or any(part.startswith(".") for part in p.relative_to(folder).parts):
            continue
        if not p.resolve().is_relative_to(root):
            logger.warning("skipped: %s links outside %s", p, folder)
            continue
        if p.is_file():
            files.append(p)
    if not files:
        msg = f"folder {folder} has no {'/'.join(TEXT_SUFFIXES)} files"
        raise ConfigError(msg)
    pdf = next((p for p in files if p.suffix.lower() == ".pdf"), None)
    if pdf is not None and importlib.util.find_spec("pypdf") is None:  # said before any model loads
        msg = f"{pdf} is a PDF: reading PDFs needs pypdf, pip install 'colbert-retriever[pdf]'"
        raise MissingDependencyError(msg)
    return files


def _pdf_text(file: Path) -> tuple[str, int]:
    """The text of a PDF's pages, a blank line between pages, and the number of pages."""
    import pypdf  # present: text_files checked

    try:
        reader = pypdf.PdfReader(file)
        pages = [page.extract_text() or "" for page in reader.pages]
    except (pypdf.errors.PyPdfError, OSError, ValueError) as exc:
        msg = f"cannot read the PDF {file}: {exc}"
        raise ConfigError(msg) from exc
    return "\n\n".join(page.strip() for page in pages), len(pages)


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Objects of a JSON Lines file (UTF-8, an optional byte-order mark); each needs an `_id`.
    Blank lines are skipped; errors name the file and line."""
    for _, row in _numbered_jsonl(path):
        yield row


def read_queries(path: str | Path) -> tuple[list[str], list[str]]:
    """(ids, texts) of a BEIR queries.jsonl; a blank or missing text is a `ConfigError`
    naming the query's id and line."""
    qids, texts = [], []
    for number, row in _numbered_jsonl(path):
        text = row.get("text")
        if not isinstance(text, str) or is_blank(text):
            msg = f"{path}:{number}: query {row['_id']!r} has {'a blank' if isinstance(text, str) else 'no'} text"
            raise ConfigError(msg)
        qids.append(str(row["_id"]))
        texts.append(text)
    return qids, texts


def _numbered_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON Lines file; see `read_jsonl`."""
    path = Path(path)
    _check_file(path, "input file")
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                msg = f"{path}:{number}: not UTF-8 text (byte {exc.start} of the line); convert the file to UTF-8"
                raise ConfigError(msg) from exc
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
            yield number, row


def _check_file(path: Path, what: str) -> None:
    if not path.is_file():
        msg = f"{what} {path} {'is a folder' if path.is_dir() else 'does not exist'}"
        raise ConfigError(msg)


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """BEIR qrels (`query-id<TAB>corpus-id<TAB>score`, header optional) as {qid: {doc_id: grade}}."""
    path = Path(path)
    _check_file(path, "qrels file")
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


def zip_documents(texts: Iterable[str], ids: Iterable[str] | None, metadata: Any) -> Iterator[Document]:
    """`Document`s from parallel iterables (random ids when `ids` is None; {} for a None
    metadata entry); a `ConfigError` counting the whole input when their lengths differ."""
    id_iter = iter(ids) if ids is not None else None
    meta_iter = iter(metadata) if metadata is not None else None
    end = object()  # a metadata entry may itself be None
    text_iter, count = iter(texts), 0
    for text in text_iter:
        doc_id = next(id_iter, end) if id_iter else uuid4().hex
        meta = next(meta_iter, end) if meta_iter else None
        if doc_id is end or meta is end:
            n_texts = count + 1 + sum(1 for _ in text_iter)
            msg = f"got {n_texts} texts but {count} {'ids' if doc_id is end else 'metadata entries'}; they must match"
            raise ConfigError(msg)
        count += 1
        # checked by the writer (check_documents), which names what is wrong
        yield Document(doc_id=cast(str, doc_id), text=text, metadata={} if meta is None else cast(dict, meta))
    for name, rest in (("ids", id_iter), ("metadata entries", meta_iter)):
        extra = sum(1 for _ in rest) if rest is not None else 0
        if extra:
            msg = f"got {count} texts but {count + extra} {name}; they must match"
            raise ConfigError(msg)
