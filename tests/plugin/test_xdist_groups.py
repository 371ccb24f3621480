"""xdist's loadgroup grouping holds under the pytest and pytest-xdist installed: run by `.ci/run` in the newest
(fresh) and the lowest (floor) dependency venvs. pytest 9.2 stopped reading the ``item._nodeid`` that
pytest-xdist 3.8 sets, which ran every training once per worker; ymir_conformance.xdist_groups repairs that.
The container-level proof (the engine counts 8 runs for two images) is tests/integration/test_xdist.py."""
from __future__ import annotations

import re

import pytest

from ymir_conformance.xdist_groups import ensure_group_suffixes, group_suffix, set_nodeid

pytest.importorskip("xdist")

CONFTEST = '''
import pytest
from ymir_conformance import xdist_groups

@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
    for item in items:  # as the plugin does: one group per "training"
        item.add_marker(pytest.mark.xdist_group(f"ymir:img:{item.callspec.params['n'] % 4}"))
    result = yield
    if hasattr(config, "workerinput") and config.getvalue("loadgroup") and FIX:
        assert not xdist_groups.ensure_group_suffixes(items)
    return result
'''

TESTS = '''
import os
import pytest

@pytest.mark.parametrize("n", range(16))
def test_run(n):
    group = n % 4
    with open(PLACED, "a") as f:
        f.write(f"{group} {os.environ['PYTEST_XDIST_WORKER']}\\n")
'''


def _run(pytester: pytest.Pytester, fix: bool) -> tuple[pytest.RunResult, dict[str, set[str]]]:
    pytester.makeconftest(f"FIX = {fix}\n" + CONFTEST)
    placed_txt = pytester.path / "placed.txt"
    pytester.makepyfile(test_groups=f"PLACED = {str(placed_txt)!r}\n" + TESTS)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup", "-v", "-p", "no:cacheprovider",
                                           "-p", "no:randomly")
    placed: dict[str, set[str]] = {}
    for line in placed_txt.read_text().splitlines():
        group, worker = line.split()
        placed.setdefault(group, set()).add(worker)
    return result, placed


def test_each_group_runs_on_one_worker(pytester: pytest.Pytester) -> None:
    result, placed = _run(pytester, fix=True)
    result.assert_outcomes(passed=16)
    assert set(placed) == {"0", "1", "2", "3"}
    assert all(len(workers) == 1 for workers in placed.values()), placed
    # the controller saw the groups: every node id it reports carries its '@group' suffix
    ids = re.findall(r"PASSED (test_groups\.py::test_run\[\d+\]\S*)", result.stdout.str())
    assert len(ids) == 16 and all(re.search(r"\]@ymir:img:[0-3]$", i) for i in ids), ids


def test_set_nodeid_changes_what_pytest_reads(pytester: pytest.Pytester) -> None:
    item = pytester.getitem("def test_func(): pass")
    item.add_marker(pytest.mark.xdist_group("b"))
    item.add_marker(pytest.mark.xdist_group(name="a"))
    assert group_suffix(item) == "@a_b"  # xdist's rule: sorted names joined by '_'
    before = item.nodeid
    assert ensure_group_suffixes([item]) == []
    assert item.nodeid == before + "@a_b"
    assert ensure_group_suffixes([item]) == [] and item.nodeid == before + "@a_b"  # never twice
    assert set_nodeid(item, "x.py::test_y[1]@g") and item.nodeid == "x.py::test_y[1]@g"
