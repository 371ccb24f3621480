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
        "*platform 2.1  FAIL       not conformant  MUST: TR-12 (seg-coco@2.3)*",
        "*platform 2.3  FAIL       not conformant  MUST: TR-12 (seg-coco@2.3)*",
        "*platform 2.4  PASS       conformant*",
        "*platform 2.5  PASS       conformant*",
        "*=> compatible with 2.4-2.5, not 2.1-2.3 (TR-12); untested or incomplete on 1.1-2.0",
    ])
    data = json.loads((reports / "report.json").read_text())
    verdicts = {row["release"]: row["verdict"] for row in data["images"][0]["compatibility"]}
    assert verdicts == {"1.1": "untested", "2.0": "untested", "2.1": "not conformant", "2.2": "not conformant",
                        "2.3": "not conformant", "2.4": "conformant", "2.5": "conformant"}
    assert "compatible with 2.4-2.5, not 2.1-2.3 (TR-12)" in (reports / "certificate.html").read_text()


def test_default_run_of_the_same_image_is_unchanged(pytester: pytest.Pytester, fixture_image: Any) -> None:
    result = pytester.runpytest_subprocess(f"--image={fixture_image('broken-no-object-type')}", "-p",
                                           "no:cacheprovider", "--ymir-tasks=training", timeout=600)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*platform 2.5  PASS       conformant*"])


def test_reference_det_is_compatible_with_every_release(pytester: pytest.Pytester, fixture_image: Any) -> None:
    reports = pytester.path / "reports"
    result = run_all(pytester, fixture_image("reference-det"), reports)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*=> compatible with 1.1-2.5"])
