"""Reading corpora: PDF files in a folder input (the `pdf` extra)."""

from __future__ import annotations

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
