"""The xdist_group names the plugin gives tests survive xdist's loadgroup scheduler intact."""
from __future__ import annotations

import pytest

from ymir_conformance.model import ObjectType
from ymir_conformance.platform import Release
from ymir_conformance.distributed import xdist_group_name
from ymir_conformance.session import RunSpec

loadgroup = pytest.importorskip("xdist.scheduler.loadgroup")


@pytest.mark.parametrize("image, multi_family", [
    ("ymir-conformance/reference-det:latest", False),
    ("ymir-conformance/reference-det:latest", True),  # run ids like det-voc@2.4
    ("repo/det@sha256:" + "a" * 64, True),  # an image given by digest
])
def test_the_scheduler_sees_the_whole_group(image: str, multi_family: bool) -> None:
    spec = RunSpec(image, ObjectType.DETECTION, "infer", "det-voc", Release(2, 4), (Release(2, 4),),
                   multi_family=multi_family)
    group = xdist_group_name(spec)
    nodeid = f"suite/test_conformance.py::test_infer_result[{spec.id}]@{group}"  # as xdist's worker writes it
    sched = loadgroup.LoadGroupScheduling.__new__(loadgroup.LoadGroupScheduling)
    assert sched._split_scope(nodeid) == group
    assert xdist_group_name(spec.training_spec()) == group  # training and downstream runs: one group


def test_repeated_runs_advice_fits_the_dist_mode() -> None:
    from ymir_conformance.distributed import repeated_runs_lines

    data = {"repeated_runs": {"det-voc": 2}}
    assert repeated_runs_lines({}) == []
    assert repeated_runs_lines(data)[0].endswith("det-voc x2; use --dist loadgroup to run each once")
    given = repeated_runs_lines(data, loadgroup=True)[0]
    assert "although --dist loadgroup was given" in given and "use --dist loadgroup" not in given
