"""`pytest --image=...` run as a user runs it (pytester, in a directory of its own), on real containers."""
from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest


def run_suite(pytester: pytest.Pytester, image: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(f"--image={image}", "-p", "no:cacheprovider",
                                         f"--ymir-workdir={pytester.path / 'work'}", *args, timeout=900)


def test_reference_det_is_certified_with_reports(pytester: pytest.Pytester, fixture_image: Any) -> None:
    image = fixture_image("reference-det")
    reports = pytester.path / "reports"
    result = run_suite(pytester, image, "-v", f"--ymir-report-dir={reports}", f"--junitxml={reports / 'junit.xml'}")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([
        "ymir-conformance: profile quick, seed 0, platform 2.5, user 12345:12345, CPU mode, network none",
        "image ymir-conformance/reference-det:latest id *: detection (2): training/mining/infer",
        "*test_image_inspection[[]image[]] PASSED*",
        "*test_training_result[[]det-voc[]] PASSED*",
        "*test_infer_result[[]infer-det-voc[]] PASSED*",
        "*test_mining_result[[]mining+infer-det-voc[]] PASSED*",
        "*ymir-conformance verdict*",
        "*platform 2.5  PASS       conformant*",
        "*det-voc * exit 0 *progress updates*",
        "container runs: 4",
    ])
    data = json.loads((reports / "report.json").read_text())
    assert data["images"][0]["compatibility"] == [{"release": "2.5", "verdict": "conformant", "must": [], "should": []}]
    assert {r["id"] for r in data["runs"]} == {"det-voc", "infer-det-voc", "mining-det-voc", "mining+infer-det-voc"}
    training = next(r for r in data["runs"] if r["id"] == "det-voc")
    assert training["exit_code"] == 0 and training["progress"], "the live sampler saw no progress"
    assert "--network" in training["argv"] and "--user" in training["argv"]
    html = (reports / "certificate.html").read_text()
    assert "<script" not in html and "http" not in html.split("</head>")[0]  # self-contained
    assert "conformant" in html
    props = {p.get("name") for p in ET.parse(reports / "junit.xml").iter("property")}
    assert {"TR-01", "TR-03", "MON-01", "INF-01", "MIN-02", "IM-01", "V1"} <= props


def test_certificate_and_workspaces_are_removed_unless_kept(pytester: pytest.Pytester, fixture_image: Any) -> None:
    image = fixture_image("reference-det")
    result = run_suite(pytester, image, "--ymir-tasks=training", "--ymir-keep")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["ymir-conformance: workspaces kept under *"])
    kept = list((pytester.path / "work").rglob("monitor.txt"))
    assert kept, "--ymir-keep kept no workspace"
    import docker

    cl = docker.from_env()
    tag = os.environ["YMIR_CONFORMANCE_TAG"]
    stale = cl.containers.list(all=True, filters={"label": f"org.ymir-conformance.tag={tag}"})
    for c in stale:
        c.remove(force=True)
    assert stale, "--ymir-keep kept no container"


def test_a_later_session_reuses_the_cached_model_for_downstream_tasks(pytester: pytest.Pytester,
                                                                      fixture_image: Any) -> None:
    image = fixture_image("reference-det")
    first = run_suite(pytester, image, "--ymir-tasks=training")
    assert first.ret == 0, first.stdout.str()
    second = run_suite(pytester, image, "--ymir-tasks=infer", "-rs")
    assert second.ret == 0, second.stdout.str()
    second.stdout.fnmatch_lines(["*det-voc * not run: training was not requested; reused the model cached at *",
                                 "*infer-det-voc * exit 0*", "container runs: 1"])


def test_exit_zero_without_result_fails_training_with_tr_01(pytester: pytest.Pytester, fixture_image: Any) -> None:
    result = run_suite(pytester, fixture_image("broken-no-result"), "--ymir-tasks=training")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=3, failed=1, skipped=3)
    result.stdout.fnmatch_lines([
        "[[]TR-01 MUST[]] /out/models/result.yaml does not exist after training*",
        "*platform 2.5  FAIL       not conformant  MUST: TR-01 (det-voc)*",
        "FAILED *test_training_result[[]det-voc[]]*",
    ])


def test_banner_on_stdout_fails_image_inspection_with_im_01(pytester: pytest.Pytester, fixture_image: Any) -> None:
    result = run_suite(pytester, fixture_image("broken-banner"), "--ymir-tasks=training")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=3, failed=1, skipped=3)  # the tasks still run, from the files' true content
    result.stdout.fnmatch_lines([
        "[[]IM-01 MUST[]] `docker run --rm ymir-conformance/broken-banner:latest cat /img-man/*` does not print the file",
        "    found: stdout differs from the file; stdout starts with '=====*FooNet executor*",
        "*platform 2.5  FAIL       not conformant  MUST: IM-01 (image)*",
        "FAILED *test_image_inspection[[]image[]]*",
    ])


def test_xdist_workers_share_the_work_and_the_controller_reports_it_all(pytester: pytest.Pytester,
                                                                       fixture_image: Any) -> None:
    reports = pytester.path / "reports"
    result = run_suite(pytester, fixture_image("reference-det"), f"--image={fixture_image('reference-semseg')}",
                       "-n", "2", "--dist", "loadgroup", f"--ymir-report-dir={reports}")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([
        "*ymir-conformance verdict*",
        "ymir-conformance/reference-det:latest (*), profile quick, seed 0",
        "  platform 2.5  PASS       conformant",
        "ymir-conformance/reference-semseg:latest (*), profile quick, seed 0",
        "  platform 2.5  PASS       conformant",
        "container runs: 8",  # each run exactly once across the workers (grouped by the training they need)
    ])
    data = json.loads((reports / "report.json").read_text())
    assert len(data["runs"]) == 8 and {i["summary"] for i in data["images"]} == {"compatible with 2.5"}
