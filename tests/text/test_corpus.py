"""Reading corpora: jsonl fields and ids, folder input (encodings, links, line ends), PDF
files in a folder input (the `pdf` extra)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from colbert_retriever import ConfigError, MissingDependencyError
from colbert_retriever.text.corpus import count_documents, read_corpus


def pdf_bytes(pages: list[str]) -> bytes:
    """A minimal PDF with one line of Helvetica text per page (written by hand: no PDF writer
    is a dependency)."""
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    bodies = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        resources = "/Resources << /Font << /F1 3 0 R >> >>"
        bodies.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] {resources} /Contents {5 + 2 * i} 0 R >>".encode()
        )
        bodies.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(bodies, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(bodies) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(bodies) + 1, xref)
    return bytes(out)


def test_a_folder_with_pdfs_reads_their_text(tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    (tmp_path / "report.pdf").write_bytes(pdf_bytes(["The tower is in Paris.", "It was finished in 1889."]))
    (tmp_path / "notes.md").write_text("some notes")
    assert count_documents(tmp_path) == 2
    notes, report = list(read_corpus(tmp_path))
    assert (notes.doc_id, report.doc_id) == ("notes.md", "report.pdf")
    assert report.text == "The tower is in Paris.\n\nIt was finished in 1889."
    assert report.metadata == {"path": "report.pdf", "pages": 2}
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(ConfigError, match=r"cannot read the PDF .*broken\.pdf"):
        list(read_corpus(tmp_path))


def test_a_pdf_without_pypdf_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "report.pdf").write_bytes(pdf_bytes(["text"]))
    monkeypatch.setitem(sys.modules, "pypdf", None)  # as if not installed
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match=r"colbert-retriever\[pdf\]"):
        count_documents(tmp_path)


def test_jsonl_text_must_be_a_string_and_numeric_ids_are_their_json_text(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    rows = [
        {"_id": 7, "text": "seven"},
        {"_id": 1.5, "title": None, "text": "one and a half"},
        {"_id": "s", "text": "s"},
    ]
    corpus.write_text("\n".join(json.dumps(r) for r in rows))
    assert [d.doc_id for d in read_corpus(corpus)] == ["7", "1.5", "s"]
    for bad, says in (
        ({"_id": "x", "text": ["a", "b"]}, "2: 'text' must be a string, got list"),
        ({"_id": "x", "text": "t", "title": 3}, "2: 'title' must be a string, got int"),
        ({"_id": True, "text": "t"}, "2: '_id' must be a string or a number"),
    ):
        corpus.write_text(json.dumps(rows[0]) + "\n" + json.dumps(bad))
        with pytest.raises(ConfigError, match=says):
            list(read_corpus(corpus))


def test_a_folder_decodes_by_byte_order_mark_and_skips_what_it_cannot_read(tmp_path: Path, caplog) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("plain utf-8 \u00e9")
    (folder / "b.txt").write_bytes("utf-16 \u00e9".encode("utf-16"))
    (folder / "c.txt").write_bytes("utf-32 \u00e9".encode("utf-32"))
    (folder / "d.txt").write_bytes("utf-16-be \u00e9".encode("utf-16-be").join([b"\xfe\xff", b""]))
    (folder / "e.txt").write_bytes("latin-1 \xe9".encode("latin-1"))
    with caplog.at_level(logging.WARNING):
        texts = {d.doc_id: d.text for d in read_corpus(folder)}
    assert texts == {
        "a.txt": "plain utf-8 \u00e9",
        "b.txt": "utf-16 \u00e9",
        "c.txt": "utf-32 \u00e9",
        "d.txt": "utf-16-be \u00e9",
    }
    assert "e.txt is not UTF-8" in caplog.text
    with pytest.raises(ConfigError, match=r"e\.txt is not UTF-8"):
        list(read_corpus(folder, strict=True))


def test_line_ends_are_kept_so_offsets_index_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "dos.txt").write_bytes(b"first line\r\nsecond line\r\n")
    (document,) = read_corpus(folder)
    assert document.text == "first line\r\nsecond line\r\n"
    assert document.text.index("second") == (folder / "dos.txt").read_bytes().index(b"second")


def test_links_leading_outside_the_folder_are_skipped(tmp_path: Path, caplog) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("a secret")
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "inside.txt").write_text("inside")
    (folder / "leak.txt").symlink_to(outside)
    (folder / "alias.txt").symlink_to(folder / "sub" / "inside.txt")  # stays inside: kept
    (folder / "out").symlink_to(tmp_path, target_is_directory=True)
    with caplog.at_level(logging.WARNING):
        ids = sorted(d.doc_id for d in read_corpus(folder))
    assert ids == ["alias.txt", "sub/inside.txt"]
    assert "leak.txt links outside" in caplog.text
    assert count_documents(folder) == 2
