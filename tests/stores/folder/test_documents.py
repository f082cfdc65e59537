"""Segment documents: compressed JSON lines, each readable alone, and damage named."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from colbert_retriever import IndexCorruptError
from colbert_retriever.stores.folder.documents import DICTIONARY, LINES, DocumentTable, hash_ids, write_documents
from colbert_retriever.stores.protocol import Row

WORDS = ["late", "interaction", "scores", "every", "query", "token", "against", "document", "tokens", "passage"]


def rows(n: int) -> list[Row]:
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, 60)) + f" naïve café №{i}" for i in range(n)]
    return [Row(f"doc-{i}", text, {"year": 2000 + i % 20}, i % 2, 7 * (i % 2)) for i, text in enumerate(texts)]


def test_rows_read_back_alone_from_lines_compressed_with_a_shared_dictionary(tmp_path: Path) -> None:
    written = rows(300)
    files = write_documents(tmp_path, written)
    table = DocumentTable(tmp_path, len(written)).map()
    assert table.read([299, 0, 150]) == [written[299], written[0], written[150]]
    assert table.read_ids([5, 6]) == ["doc-5", "doc-6"]
    assert table.structure_problem() is None
    plain = [json.dumps(r.__dict__, ensure_ascii=False).encode() + b"\n" for r in written]
    without_dictionary = sum(len(zlib.compress(line, 9)) for line in plain)
    assert files[LINES].bytes < without_dictionary / 2  # each line copies its words from the dictionary
    assert files[LINES].bytes + files[DICTIONARY].bytes < sum(map(len, plain)) / 2.5
    which, found = table.candidates(hash_ids(["doc-42"]))
    assert (which.tolist(), found.tolist()) == ([0], [42])


def test_one_row_segment(tmp_path: Path) -> None:
    (row,) = rows(1)
    write_documents(tmp_path, [row])
    assert DocumentTable(tmp_path, 1).map().read([0]) == [row]


@pytest.mark.parametrize("damage", ["flip", "flip-body", "flip-checksum", "cut"])
def test_a_damaged_line_is_named(tmp_path: Path, damage: str) -> None:
    write_documents(tmp_path, rows(10))
    offsets = np.load(tmp_path / "document_offsets.npy")
    data = bytearray((tmp_path / LINES).read_bytes())
    if damage == "flip":  # the size is unchanged: only a checksum or reading the row tells
        data[int(offsets[3]) + 5] ^= 0xFF
    elif damage == "flip-body":
        data[(int(offsets[3]) + int(offsets[4])) // 2] ^= 0x01
    elif damage == "flip-checksum":
        data[int(offsets[4]) - 1] ^= 0x01
    else:  # row 3 loses its last bytes to row 4, whose offsets stay
        data[int(offsets[4]) - 4 : int(offsets[4])] = bytes(4)
    (tmp_path / LINES).write_bytes(bytes(data))
    table = DocumentTable(tmp_path, 10).map()
    assert table.read([2]) == rows(10)[2:3]
    with pytest.raises(IndexCorruptError, match=rf"row 3 of .*{LINES}"):
        table.read([3])
