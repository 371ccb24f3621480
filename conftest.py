"""Top-level conftest for ymir-conformance's own tests.

Kept free of ``pytest_plugins`` and fixtures on purpose: with an editable install, ``pytest --image=...`` collects
the shipped suite from this checkout, and pytest then loads this file too. Shared fixtures live in
``tests/conftest.py``; pytester is enabled with ``-p pytester`` in pyproject.toml.
"""
from __future__ import annotations
