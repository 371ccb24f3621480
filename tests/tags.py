"""Container tags (``YMIR_CONFORMANCE_TAG``, the label ``org.ymir-conformance.tag``) for the project's own tests.

``scripts/test`` exports one tag per test run; every tag a test makes for its containers starts with it
(:func:`new_tag`), so the run's final "containers left behind" check counts this run's containers only, never
those of other sessions sharing the engine.
"""
from __future__ import annotations

import os
import uuid

RUN_TAG = os.environ.get("YMIR_CONFORMANCE_TAG", "")  # read at import, before tests/conftest.py sets its own


def new_tag(kind: str = "") -> str:
    """A fresh tag, ``<run tag>-<kind><12 hex>`` (no run tag: ``<kind><12 hex>``)."""
    fresh = f"{kind}{uuid.uuid4().hex[:12]}"
    return f"{RUN_TAG}-{fresh}" if RUN_TAG else fresh
