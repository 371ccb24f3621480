"""pytest-xdist's loadgroup scheduling, under every pytest this package allows.

xdist's ``--dist loadgroup`` groups tests by the text after the last ``@`` of the node ids its workers send: a
worker's ``pytest_collection_modifyitems`` turns each test's ``xdist_group`` markers into that suffix by setting
``item._nodeid``. pytest 9.2 keeps a node's id as a structured ``NodeId`` in ``item._id`` and no longer reads
``_nodeid``, so under pytest-xdist 3.8 and pytest 9.2 the suffix is silently lost, the scheduler sees one group
per test, and every worker that receives a test of a training trains again ("container runs: 16" for 8).

:func:`ensure_group_suffixes` runs after xdist's hook (the plugin's hook wraps it) and gives every marked test
the suffix xdist meant it to have, on whichever attribute this pytest reads; where xdist's own assignment took
effect it changes nothing. When no known attribute works it says so, so the session can warn instead of
silently running each container once per worker.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest


def group_suffix(item: pytest.Item) -> str | None:
    """The '@group' suffix pytest-xdist's worker gives ``item`` under ``--dist loadgroup`` (its rule: the sorted
    names of every ``xdist_group`` marker, joined by '_'), or None when it has no such marker."""
    names = {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")}
    return "@" + "_".join(sorted(names)) if names else None


def set_nodeid(item: pytest.Item, nodeid: str) -> bool:
    """Give ``item`` the node id ``nodeid``; True when ``item.nodeid`` now reads it.

    pytest < 9.2 reads ``item._nodeid`` (a str); pytest >= 9.2 reads ``str(item._id)`` (a ``NodeId``, whose
    ``parse`` keeps the exact string it was given)."""
    current: Any = getattr(item, "_id", None)
    parse = getattr(type(current), "parse", None)
    if current is not None and not isinstance(current, str) and callable(parse):
        setattr(item, "_id", parse(nodeid))
    else:
        setattr(item, "_nodeid", nodeid)
    return item.nodeid == nodeid


def ensure_group_suffixes(items: Iterable[pytest.Item]) -> list[str]:
    """After xdist's worker hook: every test with an ``xdist_group`` marker ends in its group suffix. Returns
    the node ids whose suffix could not be set (empty when grouping holds)."""
    failed: list[str] = []
    for item in items:
        suffix = group_suffix(item)
        if suffix is None or item.nodeid.endswith(suffix):
            continue
        if not set_nodeid(item, item.nodeid + suffix):
            failed.append(item.nodeid)
    return failed
