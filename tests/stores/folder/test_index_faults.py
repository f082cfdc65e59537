"""Writes that fail half-way (disk full, read-only folder) raise a clear error and leave the
previous state intact, on a real small tmpfs where this machine allows mounting one, and
with a patched writer everywhere."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_index import DIM, MODEL, batch

from colbert_retriever import Index, IndexWriteError, atomic
from colbert_retriever.cli import main


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs, or a skip where mounting is not allowed."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_on_a_real_tmpfs(tiny_disk: Path) -> None:
    index = Index.create(tiny_disk / "idx", model=MODEL, dim=DIM)
    index.write([batch(["a", "b"])])
    big = [f"doc{i}" for i in range(20_000)]  # far more than 512 KiB of vectors and text
    with pytest.raises(IndexWriteError, match="No space left") as caught:
        index.write([batch(big[:10_000]), batch(big[10_000:])])
    assert caught.value.__cause__.errno == errno.ENOSPC
    reopened = Index.open(tiny_disk / "idx")
    assert sorted(reopened.doc_ids()) == ["a", "b"]
    assert sorted(index.doc_ids()) == ["a", "b"]
    index.write([batch(["c"])])  # the partial segments were removed: room again
    assert sorted(Index.open(tiny_disk / "idx").doc_ids()) == ["a", "b", "c"]


def test_read_only_filesystem(tiny_disk: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index = Index.create(tiny_disk / "idx", model=MODEL, dim=DIM)
    index.write([batch(["a"])])
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    with pytest.raises(IndexWriteError, match="Read-only"):
        index.write([batch(["b"])])
    with pytest.raises(IndexWriteError):
        index.delete(["a"])
    assert Index.open(tiny_disk / "idx").doc_ids() == ["a"]  # reading still works
    assert main(["delete", "--index", str(tiny_disk / "idx"), "a", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write to the index")
    assert "Traceback" not in err


@pytest.mark.parametrize("failing_call", [1, 3, 4])  # first segment file, last one, the manifest
def test_patched_disk_full_at_each_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_call: int) -> None:
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM)
    index.write([batch(["a", "b"])])
    manifest = (tmp_path / "idx" / "manifest.json").read_bytes()
    calls = {"n": 0}
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if not os.path.isdir(f"/proc/self/fd/{fd}"):  # count file flushes, not folder syncs
            calls["n"] += 1
            if calls["n"] == failing_call:
                raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    with pytest.raises(IndexWriteError, match="No space left"):
        index.write([batch(["c", "d"])], delete=["a"])
    monkeypatch.undo()
    assert (tmp_path / "idx" / "manifest.json").read_bytes() == manifest
    assert sorted(Index.open(tmp_path / "idx").doc_ids()) == ["a", "b"]
    assert len(list((tmp_path / "idx" / "segments").iterdir())) == 1  # nothing half-written left
