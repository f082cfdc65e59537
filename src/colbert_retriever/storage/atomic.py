"""The only place that opens index files for writing.

Every file is written to a temporary name in its own folder, flushed and fsynced, then
renamed over its final name with `os.replace`, and the folder is fsynced: a crash at any
point leaves either the old file or the new one, never a torn mix.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from colbert_retriever.errors import IndexLockedError

_CHUNK = 1 << 22


def fsync_dir(path: Path) -> None:
    """Make a rename or new entry in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: Path, data: bytes) -> dict[str, object]:
    """Atomically replace `path` with `data`; return its size and sha256 for the manifest."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def write_npy(path: Path, array: np.ndarray) -> dict[str, object]:
    """Atomically write `array` as a standard .npy file (no pickle)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return write_bytes(path, buffer.getvalue())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def writer_lock(folder: Path, timeout: float) -> Iterator[None]:
    """Hold the index's inter-process write lock (`flock` on `folder/write.lock`).

    Waits up to `timeout` seconds for another writer, then raises `IndexLockedError`.
    The lock dies with its process, so a killed writer never leaves the index locked.
    """
    fd = os.open(folder / "write.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    msg = f"another process is writing to the index at {folder} (waited {timeout:g} s)"
                    raise IndexLockedError(msg) from exc
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
