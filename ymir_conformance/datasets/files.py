"""Small file-writing helpers shared by the exporters: write files off the main thread, count what was written.

Creating a file is the dominant cost of an export (a kernel ``open(O_CREAT)`` per asset, annotation and
prediction, and a ``mkdir`` per ``<xx>`` folder); the kernel work releases the GIL, so a few writer threads run it
on another core while the main thread renders the next scene. The bytes written are the same and each file is
written whole by one thread; only the order in which files appear differs. Parent folders are created when an
``open`` finds them missing (once per folder, in the writer threads), not checked before every file.

Paths are plain strings here on purpose: ``pathlib`` interns every path component, which would grow
memory with every distinct sha1 file name in a 10,000-image export.
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

WRITER_THREADS = 3
MAX_PENDING = 256  # writes queued at most: memory stays bounded (a few MiB of image bytes)
BATCH = 16  # files per writer task
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


def write_file(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` (created 0666 & ~umask, like ``open(path, 'wb')``), creating missing parents."""
    try:
        fd = os.open(path, _FLAGS, 0o666)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, _FLAGS, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _write_all(batch: list[tuple[str, bytes]]) -> None:
    for path, data in batch:
        write_file(path, data)


class FileSink:
    """Writes files under one root through a few writer threads; counts files written.

    ``close`` (or leaving the ``with`` block) waits for every write and raises the first error. ``threads=0``
    writes synchronously in the calling thread.
    """

    def __init__(self, root: Path, threads: int | None = None) -> None:
        threads = WRITER_THREADS if threads is None else threads
        self.root = root
        self._root = os.fspath(root)
        self.files_written = 0
        self._dirs: set[str] = set()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="ymir-sink") if threads > 0 else None
        self._pending: deque[Future[None]] = deque()
        self._batch: list[tuple[str, bytes]] = []

    def _ensure_dir(self, path: str) -> None:
        if path not in self._dirs:
            os.makedirs(path, exist_ok=True)
            self._dirs.add(path)

    def mkdir(self, relpath: str) -> Path:
        path = os.path.join(self._root, relpath)
        self._ensure_dir(path)
        return Path(path)

    def path(self, relpath: str) -> str:
        """The host path of ``relpath``, its parent folder created."""
        path = os.path.join(self._root, relpath)
        self._ensure_dir(os.path.dirname(path))
        return path

    def write(self, relpath: str, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        path = f"{self._root}/{relpath}"
        self.files_written += 1
        if self._pool is None:
            write_file(path, data)
            return
        batch = self._batch
        batch.append((path, data))
        if len(batch) >= BATCH:
            self._submit()

    def _submit(self) -> None:
        """Hand the current batch to a writer thread (one task per BATCH files: little hand-off overhead)."""
        assert self._pool is not None
        pending = self._pending
        while len(pending) >= MAX_PENDING // BATCH or (pending and pending[0].done()):
            pending.popleft().result()  # raises the writer's error here, in the caller
        pending.append(self._pool.submit(_write_all, self._batch))
        self._batch = []

    def flush(self) -> None:
        """Wait for every queued write; raise the first error."""
        if self._batch:
            self._submit()
        pending = self._pending
        try:
            while pending:
                pending.popleft().result()
        finally:
            for fut in pending:  # after an error: still wait for the rest, never leave writes running
                fut.exception()
            pending.clear()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def abandon(self) -> None:
        """``close`` while another error propagates: wait for the writers, keep their errors quiet."""
        try:
            self.close()
        except Exception:  # noqa: BLE001 - the caller's error is the one that propagates
            pass

    def __enter__(self) -> FileSink:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            self.close()
        else:
            self.abandon()
