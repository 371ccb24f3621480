"""--ymir-platform=all: one image judged against every release family, as a compatibility table."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


def run_all(pytester: pytest.Pytester, image: str, reports: Path) -> pytest.RunResult:
    return pytester.runpytest_subprocess(f"--image={image}", "--ymir-platform=all", "-p", "no:cacheprovider",
                                         f"--ymir-workdir={pytester.path / 'work'}", f"--ymir-report-dir={reports}",
                                         timeout=900)


def test_segmentation_without_object_type_is_compatible_with_2_4_and_2_5_only(
        pytester: pytest.Pytester, fixture_image: Any) -> None:
    reports = pytester.path / "reports"
    result = run_all(pytester, fixture_image("broken-no-object-type"), reports)
    assert result.ret == 1  # not conformant on 2.1-2.3
    result.stdout.fnmatch_lines([
        "*platform 1.1  -          untested*",
        "*platform 2.0  -          untested*",
        # the downstream infer runs fail there too, naming TR-12: the model is registered as detection
        "*platform 2.1  FAIL       rejected by the platform: TR-12 (*), INF-10 (*); not conformant",
        "*MUST: INF-10 (infer-seg-coco@2.3), INF-10 (mining+infer-seg-coco@2.3), TR-12 (seg-coco@2.3)*",
        "*platform 2.3  FAIL       rejected by the platform: TR-12 (*), INF-10 (*); not conformant",
        "*MUST: INF-10 (infer-seg-coco@2.3), INF-10 (mining+infer-seg-coco@2.3), TR-12 (seg-coco@2.3)*",
        "*platform 2.4  PASS       accepted by the platform; conformant*",
        "*platform 2.5  PASS       accepted by the platform; conformant*",
        "*=> conformant on 2.4-2.5; rejected by the platform on 2.1-2.3 (TR-12, INF-10); untested or incomplete on "
        "1.1-2.0",
    ])
    data = json.loads((reports / "report.json").read_text())
    verdicts = {row["release"]: row["verdict"] for row in data["images"][0]["compatibility"]}
    assert verdicts == {"1.1": "untested", "2.0": "untested", "2.1": "not conformant", "2.2": "not conformant",
                        "2.3": "not conformant", "2.4": "conformant", "2.5": "conformant"}
    assert ("Conformant on 2.4-2.5; rejected by the platform on 2.1-2.3 (TR-12, INF-10); untested or incomplete on "
            "1.1-2.0.") in (reports / "certificate.html").read_text()
    accepts = {v["release"]: v["platform_accepts"] for v in data["verdicts"]}
    assert accepts == {"1.1": None, "2.0": None, "2.1": False, "2.2": False, "2.3": False, "2.4": True, "2.5": True}


def test_default_run_of_the_same_image_is_unchanged(pytester: pytest.Pytester, fixture_image: Any) -> None:
    result = pytester.runpytest_subprocess(f"--image={fixture_image('broken-no-object-type')}", "-p",
                                           "no:cacheprovider", "--ymir-tasks=training", timeout=600)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*platform 2.5  PASS       accepted by the platform; conformant*"])


def test_reference_det_is_compatible_with_every_release(pytester: pytest.Pytester, fixture_image: Any) -> None:
    reports = pytester.path / "reports"
    result = run_all(pytester, fixture_image("reference-det"), reports)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*=> conformant on 1.1-2.5"])


def test_gate_fails_only_on_the_releases_a_job_deploys(pytester: pytest.Pytester, fixture_image: Any) -> None:
    """--ymir-platform=all --ymir-gate=2.4-2.5: the 2.1-2.3 MUST finding is reported but does not fail."""
    reports = pytester.path / "reports"
    result = pytester.runpytest_subprocess(f"--image={fixture_image('broken-no-object-type')}", "--ymir-platform=all",
                                           "--ymir-gate=2.4-2.5", "-p", "no:cacheprovider",
                                           f"--ymir-workdir={pytester.path / 'work'}", f"--ymir-report-dir={reports}",
                                           timeout=900)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([
        "*platform 2.1  FAIL       rejected by the platform: TR-12 (*); not conformant  (not gating)",
        "*MUST: *TR-12 (seg-coco@2.3)*",
        "*=> conformant on 2.4-2.5; rejected by the platform on 2.1-2.3 (TR-12*); untested or incomplete on 1.1-2.0",
        "findings:",
        "  [[]*MUST[]] *@2.3: * [[]platform 2.1, 2.2, 2.3[]] (not gating)",
    ])
    data = json.loads((reports / "report.json").read_text())
    assert data["exit_status"] == 0 and data["settings"]["gate"] == ["2.4", "2.5"]
    assert {v["release"]: (v["verdict"], v["gated"]) for v in data["verdicts"]}["2.3"] == ("not conformant", False)
    assert ("TR-12", "MUST", "seg-coco@2.3") in {(f["rule"], f["level"], f["run"]) for f in data["findings"]}
    assert {tuple(f["releases"]) for f in data["findings"]} == {("2.1", "2.2", "2.3")}  # none on a gated release
