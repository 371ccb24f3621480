"""Project-level pytest configuration for ymir-conformance's own tests (not used by `pytest --image=...`)."""
from __future__ import annotations

pytest_plugins = ["pytester"]
