"""Small file-writing helpers shared by the exporters: create parent folders once, count what was written.

Paths are plain strings here on purpose: ``pathlib`` interns every path component, which would grow
memory with every distinct sha1 file name in a 10,000-image export.
"""
from __future__ import annotations

import os
from pathlib import Path


class FileSink:
    """Writes files under one root, creating each parent folder once; counts files written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = os.fspath(root)
        self.files_written = 0
        self._dirs: set[str] = set()

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
        with open(self.path(relpath), "wb") as f:
            f.write(data)
        self.files_written += 1
