"""The project's own test tree: pytest imports test modules by basename (rootdir-relative, no packages below
tests/), so two modules with one basename make collection fail in a fresh clone."""
from __future__ import annotations

import collections
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_module_basenames_are_unique() -> None:
    names = collections.Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert not [n for n, c in names.items() if c > 1]
