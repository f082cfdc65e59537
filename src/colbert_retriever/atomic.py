"""The only place that opens index files for writing.

Every file is written to a temporary name in its own folder, flushed and fsynced, then
renamed over its final name with `os.replace`, and the folder is fsynced: a crash at any
point leaves either the old file or the new one, never a torn mix.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import filelock
import numpy as np

from colbert_retriever.errors import IndexLockedError

_CHUNK = 1 << 22
WRITER_PID = "writer.pid"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileInfo:
    """Size and sha256 of a file, recorded in the manifest when it was written."""

    bytes: int
    sha256: str


def fsync_dir(path: Path) -> None:
    """Make a rename or new entry in `path` durable (POSIX; Windows cannot open a folder to
    sync it, and its renames are durable once `os.replace` returns)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: Path, data: bytes) -> FileInfo:
    """Atomically replace `path` with `data`; return its size and sha256 for the manifest."""
    _replace(path, lambda tmp: tmp.write_bytes(data))
    return FileInfo(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())


def write_with(path: Path, fill: Callable[[Path], object]) -> FileInfo:
    """Atomically replace `path` with the file `fill(temporary path)` writes (for files a
    library writes itself, such as a SQLite database); return its size and sha256."""
    _replace(path, fill)
    return FileInfo(bytes=path.stat().st_size, sha256=sha256_file(path))


def _replace(path: Path, fill: Callable[[Path], object]) -> None:
    """Have `fill` write a temporary file beside `path`, fsync it, rename it over `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fill(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def write_npy(path: Path, array: np.ndarray) -> FileInfo:
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
    """Hold the index's inter-process write lock (`folder/write.lock`).

    The lock is the `filelock` library's: `flock` on POSIX, `msvcrt.locking` on Windows.
    It dies with its process, so a killed writer never leaves the index locked. The holder
    writes its process id to `folder/writer.pid`, for the one warning a waiting writer
    logs. Waits up to `timeout` seconds for another writer, then raises `IndexLockedError`.
    """
    lock = filelock.FileLock(folder / "write.lock")
    try:
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            holder = _read_pid(folder / WRITER_PID)
            logger.warning("waiting for the writer lock of %s (held by pid %s)...", folder, holder or "unknown")
            lock.acquire(timeout=timeout)
    except filelock.Timeout as exc:
        msg = f"another process is writing to the index at {folder} (waited {timeout:g} s)"
        raise IndexLockedError(msg) from exc
    try:
        with contextlib.suppress(OSError):  # only for that message
            (folder / WRITER_PID).write_text(str(os.getpid()), encoding="ascii")
        yield
    finally:
        lock.release()


def _read_pid(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if text.isdigit() else None


def try_lock(path: Path) -> filelock.BaseFileLock | None:
    """The lock at `path` if no one holds it (the caller releases it), else None."""
    lock = filelock.FileLock(path)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return None
    return lock


def read_error(exc: OSError, what: str) -> OSError:
    """The `OSError` to raise when reading `what` failed with `exc`: the same error, saying
    what was read and, when the process ran out of file descriptors, which limit to raise.
    (Never an `IndexCorruptError`: nothing is wrong with the index.)"""
    limit = " (the open-files limit: raise `ulimit -n`)" if exc.errno in (errno.EMFILE, errno.ENFILE) else ""
    return OSError(exc.errno, f"cannot read {what}: {exc.strerror or exc}{limit}")
