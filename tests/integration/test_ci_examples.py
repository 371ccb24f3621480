"""The CI gating kit (examples/): the certify command the workflows run works as documented, end to end."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MARK = "ymir-conformance certify command"


def certify_command(name: str) -> str:
    """The pytest command line of an example (the line after the marker comment), checked to be valid YAML."""
    text = (EXAMPLES / name).read_text()
    yaml.safe_load(text)
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if MARK in line)
    line = lines[at + 1].strip().removeprefix("- ").removeprefix("run: ")
    assert line.startswith("pytest --image="), line
    return line


def test_the_examples_run_the_same_command() -> None:
    assert certify_command("github-actions.yml") == certify_command("gitlab-ci.yml")


def run_example(tmp_path: Path, image: str) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(certify_command("github-actions.yml").replace('"$IMAGE"', image))
    assert argv[0] == "pytest"
    env = {**os.environ, "IMAGE": image}
    return subprocess.run([sys.executable, "-m", *argv], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)


def test_the_example_certifies_the_reference_image(tmp_path: Path, fixture_image: Any) -> None:
    proc = run_example(tmp_path, fixture_image("reference-det"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reports = tmp_path / "ymir-reports"
    assert {p.name for p in reports.iterdir()} >= {"junit.xml", "report.json", "certificate.html", "logs"}
    data = json.loads((reports / "report.json").read_text())
    assert data["exit_status"] == 0
    assert data["settings"]["gate"] == ["2.5"]
    assert [(v["release"], v["verdict"], v["gated"]) for v in data["verdicts"]] == [
        ("2.4", "conformant", False), ("2.5", "conformant", True)]
    assert all((reports / r["log_file"]).is_file() for r in data["runs"] if "log_file" in r)
    suite = ET.parse(reports / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and suite.get("errors") == "0"


def test_the_example_fails_the_job_on_a_must_violation(tmp_path: Path, fixture_image: Any) -> None:
    proc = run_example(tmp_path, fixture_image("broken-metric-percent"))
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "ymir-reports" / "report.json").read_text())
    assert data["exit_status"] == 1
    assert {(f["rule"], f["level"], f["run"]) for f in data["findings"]} == {("TR-02", "MUST", "det-voc")}
    failure = next(ET.parse(tmp_path / "ymir-reports" / "junit.xml").getroot().iter("failure"))
    assert (failure.get("message") or "").startswith("[TR-02 MUST] mAP = ")
