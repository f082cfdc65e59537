from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from colbert_retriever.atomic import FileInfo, sha256_file, write_bytes, write_npy


def test_write_bytes_replaces_and_reports_checksum(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    write_bytes(path, b"old")
    info = write_bytes(path, b"new data")
    assert path.read_bytes() == b"new data"
    assert info == FileInfo(bytes=8, sha256=sha256_file(path))
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temp file left


def test_failed_replace_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.bin"
    write_bytes(path, b"old")

    def broken(*args: object) -> None:
        msg = "disk full"
        raise OSError(msg)

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_npy_is_plain_numpy_without_pickle(tmp_path: Path) -> None:
    write_npy(tmp_path / "a.npy", np.arange(6, dtype=np.float16).reshape(2, 3))
    loaded = np.load(tmp_path / "a.npy", allow_pickle=False)
    assert loaded.dtype == np.float16
    assert loaded.tolist() == [[0, 1, 2], [3, 4, 5]]
