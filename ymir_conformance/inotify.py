"""A tiny ctypes binding of Linux inotify, shared by the input audit (``audit.py``) and the monitor sampler
(``progress.py``).

Two libc calls (``inotify_init1``, ``inotify_add_watch``) and a parser of the 16-byte
``struct inotify_event`` header; reading is a plain ``os.read`` on the non-blocking fd. Why not
``inotify_simple``: it is itself a thin ctypes wrapper of the same calls, and the suite installs no extra package
for this. Watches on a bind-mounted host directory report what containers do there (the kernel's VFS is shared).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
from collections.abc import Iterator

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_OPEN = 0x00000020
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
READ_SIZE = 64 * 1024
HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then len bytes of name)


class Libc:
    """The inotify calls of libc, bound once (AttributeError when this libc has none: not Linux)."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("c")
        lib = ctypes.CDLL(name, use_errno=True) if name else ctypes.CDLL(None, use_errno=True)
        self.init1 = lib.inotify_init1
        self.init1.argtypes = [ctypes.c_int]
        self.init1.restype = ctypes.c_int
        self.add_watch = lib.inotify_add_watch
        self.add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.add_watch.restype = ctypes.c_int


_LIBC: Libc | None = None


def libc() -> Libc:
    global _LIBC
    if _LIBC is None:
        _LIBC = Libc()
    return _LIBC


def split_events(data: bytes) -> tuple[list[tuple[int, int, bytes]], bytes]:
    """The complete events in ``data`` as (wd, mask, name), and the bytes of a last, partial one."""
    events: list[tuple[int, int, bytes]] = []
    pos, n = 0, len(data)
    while pos + HEADER.size <= n:
        wd, mask, _cookie, length = HEADER.unpack_from(data, pos)
        end = pos + HEADER.size + length
        if end > n:
            break
        events.append((wd, mask, data[pos + HEADER.size:end].split(b"\0", 1)[0]))
        pos = end
    return events, data[pos:]


class Inotify:
    """One non-blocking inotify instance (``fileno`` for ``select``); raises OSError when it cannot be set up."""

    def __init__(self) -> None:
        lib = libc()
        fd = int(lib.init1(IN_NONBLOCK | IN_CLOEXEC))
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.fd = fd
        self._buf = b""

    def fileno(self) -> int:
        return self.fd

    def add_watch(self, path: str | os.PathLike[str], mask: int) -> int:
        wd = int(libc().add_watch(self.fd, os.fsencode(path), mask))
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {os.fspath(path)}")
        return wd

    def read(self) -> list[tuple[int, int, bytes]]:
        """Every queued event as (wd, mask, name); [] when the queue is empty."""
        events: list[tuple[int, int, bytes]] = []
        while True:
            try:
                chunk = os.read(self.fd, READ_SIZE)
            except OSError:  # BlockingIOError: empty; anything else: closed
                return events
            if not chunk:
                return events
            events.extend(self.parse(chunk))
            if len(chunk) < READ_SIZE - 4096:  # the queue fitted: no second read (and its exception) needed
                return events

    def parse(self, chunk: bytes) -> Iterator[tuple[int, int, bytes]]:
        events, self._buf = split_events(self._buf + chunk)
        yield from events

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1
