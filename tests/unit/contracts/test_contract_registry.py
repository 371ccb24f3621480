"""The catalogue itself: every check is well-formed, and the catalogue covers the contract's rules."""
from __future__ import annotations

import re

import pytest

from ymir_conformance.contracts import REGISTRY, Level, load_all
from ymir_conformance.contracts.base import Area, Check
from ymir_conformance.model import ObjectType, Task
from ymir_conformance.platform import RELEASES, Release

load_all()
RULE_RE = re.compile(r"^(V1|LC|MON|TR|IN|INF|MIN|BUD)-?\d*$")
EXPECTED = {
    "V1", "LC-03", "LC-07", "LC-09", "LC-10", "BUD-01", "BUD-02", "BUD-03", "BUD-04",
    *(f"MON-0{i}" for i in range(1, 9)),
    *(f"TR-{i:02d}" for i in range(1, 15) if i != 13),
    *(f"INF-0{i}" for i in range(1, 9)), *(f"INF-1{i}" for i in range(0, 5)),
    *(f"MIN-0{i}" for i in range(1, 6)),
}


def checks() -> list[Check]:
    return [c for c in REGISTRY.values() if c.area != Area.IMAGE]


def test_catalogue_is_complete() -> None:
    assert EXPECTED <= set(REGISTRY)


@pytest.mark.parametrize("chk", checks(), ids=lambda c: c.rule)
def test_every_check_is_well_formed(chk: Check) -> None:
    assert RULE_RE.match(chk.rule), chk.rule
    assert chk.title.strip() and len(chk.title) < 120
    assert chk.levels and all(isinstance(lv, Level) for _, lv in chk.levels)
    assert any(chk.level_on(r) is not None for r in RELEASES)
    assert chk.tasks and chk.object_types


def test_levels_follow_section_10() -> None:
    latest = Release(2, 5)
    should = {"INF-02", "INF-05", "INF-06", "INF-08", "MON-03", "MON-04", "MON-05", "MON-06", "MON-08", "MIN-04",
              "MIN-05", "TR-08", "TR-09", "TR-10", "TR-11", "TR-14", "LC-07", "LC-09", "LC-10"}
    must = {"V1", "MON-01", "MON-02", "MON-07", "TR-01", "TR-02", "TR-03", "TR-04", "INF-01", "INF-03", "INF-04",
            "INF-10", "INF-11", "INF-12", "MIN-01", "MIN-02", "MIN-03", "LC-03", "TR-15"}
    for rule in should:
        assert REGISTRY[rule].level_on(latest) == Level.SHOULD, rule
    for rule in must:
        assert REGISTRY[rule].level_on(latest) == Level.MUST, rule
    assert REGISTRY["TR-12"].level_on(Release(2, 3)) == Level.MUST
    assert REGISTRY["TR-12"].level_on(Release(2, 4)) is None
    assert REGISTRY["INF-07"].level_on(Release(2, 0)) == Level.SHOULD
    assert REGISTRY["INF-07"].level_on(Release(2, 1)) is None


def test_scopes() -> None:
    assert REGISTRY["INF-01"].object_types == {ObjectType.DETECTION}
    assert ObjectType.DETECTION not in REGISTRY["INF-10"].object_types
    assert REGISTRY["MIN-01"].tasks == {Task.MINING}
    assert REGISTRY["TR-01"].tasks == {Task.TRAINING}
    assert REGISTRY["INF-04"].tasks == {Task.INFER}
    for rule in ("V1", "MON-01", "MON-07", "MON-08", "LC-07"):
        assert not REGISTRY[rule].needs_success, rule


def test_every_expected_states_an_expectation() -> None:
    """A finding's "expected" column says what is expected, never "see ... in the fix": every literal expected=
    text in the checks is an expectation, and every Violation the checks make names one."""
    import ast
    from pathlib import Path

    import ymir_conformance.contracts as contracts_pkg

    pointers, missing = [], []
    for path in sorted(Path(contracts_pkg.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Violation"):
                continue
            kws = {k.arg: k.value for k in node.keywords}
            if None in kws:  # Violation(**...): copies another one's
                continue
            internal = any(isinstance(sub, ast.Constant) and "internal error" in str(sub.value)
                           for sub in ast.walk(node))  # a bug of the suite has no expectation
            if "expected" not in kws and not internal:
                missing.append(f"{path.name}:{node.lineno}")
            for sub in ast.walk(kws.get("expected", ast.Constant(""))):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and (
                        "in the fix" in sub.value or sub.value.lower().startswith("see ")):
                    pointers.append(f"{path.name}:{node.lineno}: {sub.value!r}")
    assert not pointers, pointers
    assert not missing, missing
