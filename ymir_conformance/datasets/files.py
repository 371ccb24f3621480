"""Small file-writing helpers shared by the exporters: create parent folders once, count what was written."""
from __future__ import annotations

from pathlib import Path


class FileSink:
    """Writes files under one root, creating each parent folder once; counts files written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files_written = 0
        self._dirs: set[Path] = set()

    def mkdir(self, relpath: str) -> Path:
        path = self.root / relpath
        if path not in self._dirs:
            path.mkdir(parents=True, exist_ok=True)
            self._dirs.add(path)
        return path

    def write(self, relpath: str, data: bytes | str) -> Path:
        path = self.root / relpath
        parent = path.parent
        if parent not in self._dirs:
            parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(parent)
        if isinstance(data, str):
            data = data.encode("utf-8")
        path.write_bytes(data)
        self.files_written += 1
        return path
