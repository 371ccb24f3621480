"""--ymir-fuzz against real containers: the fuzz gallery (fixtures/executors/broken/gallery.yaml, entries with a
``fuzz:`` key) passes the quick profile, and the search finds each defect and shrinks it to a reproducer of at most
two images whose /in the workspace command rebuilds byte for byte; the reference image passes the same search.

The sessions run at once (one pytest process each, started by a module fixture), as a release pipeline would run
them side by side; each asserts on its own report.json and JUnit XML.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from ymir_conformance.fixture_images import load_gallery
from ymir_conformance.fuzz.case import FuzzCase
from ymir_conformance.fuzz.render import in_digest

ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "executors"
FUZZ_GALLERY = {f"broken-{e['name']}": e for e in load_gallery(ROOT, "broken/gallery.yaml") if e.get("fuzz")}
CANDIDATES_N, TRAINING_N, BUDGET_S = 40, 20, 600
REFERENCE = "reference-det"


def _argv(tag: str, search: str | None) -> list[str]:
    extra = ([f"--ymir-fuzz={CANDIDATES_N}"] if search in ("candidates", None) else []) + \
        ([f"--ymir-fuzz-training={TRAINING_N}"] if search in ("training", None) else [])
    return [sys.executable, "-m", "pytest", f"--image={tag}", *extra, f"--ymir-fuzz-budget={BUDGET_S}",
            "--ymir-report-dir=rep", "--ymir-workdir=work", "--ymir-jobs=1", "--junitxml=junit.xml",
            "-p", "no:cacheprovider", "-q"]


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory, fixture_image: Any) -> dict[str, tuple[Path, str]]:
    """Every fuzz gallery image and the reference, each a pytest session in its own empty directory, at once."""
    procs: dict[str, tuple[Path, subprocess.Popen[str]]] = {}
    todo = {name: e["fuzz"]["search"] for name, e in FUZZ_GALLERY.items()} | {REFERENCE: None}
    for name, search in todo.items():
        cwd = tmp_path_factory.mktemp(name)
        procs[name] = (cwd, subprocess.Popen(_argv(fixture_image(name), search), cwd=cwd, text=True,
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ)))
    out: dict[str, tuple[Path, str]] = {}
    for name, (cwd, proc) in procs.items():
        text, _ = proc.communicate(timeout=BUDGET_S + 900)
        out[name] = (cwd, text + f"\n[exit status {proc.returncode}]")
    return out


def _outcomes(cwd: Path) -> dict[str, str]:
    """test name -> passed | failed | skipped, from the session's JUnit XML."""
    result = {}
    for case in ET.parse(cwd / "junit.xml").getroot().iter("testcase"):
        status = "failed" if case.find("failure") is not None or case.find("error") is not None else \
            "skipped" if case.find("skipped") is not None else "passed"
        result[str(case.get("name"))] = status
    return result


@pytest.mark.parametrize("name", sorted(FUZZ_GALLERY))
def test_the_fuzz_gallery_passes_quick_and_fails_the_search_with_a_minimal_reproducer(
        sessions: dict[str, tuple[Path, str]], name: str) -> None:
    cwd, text = sessions[name]
    want = FUZZ_GALLERY[name]["fuzz"]
    test = f"test_fuzz_{want['search']}[image]"
    outcomes = _outcomes(cwd)
    assert outcomes.pop(test) == "failed", text
    assert "failed" not in outcomes.values(), f"the quick profile must pass: {outcomes}\n{text}"
    data = json.loads((cwd / "rep" / "report.json").read_text())
    assert data["exit_status"] == 1
    assert {f["run"] for f in data["findings"] if f["level"] == "MUST"} == {f"fuzz-{want['search']}"}
    [result] = [r for r in data["fuzz"] if r["search"] == want["search"]]
    failure = result["failure"]
    assert failure is not None and failure["rules"] == want["rules"], result
    assert failure["found_at"] <= result["examples"], result  # found within N (shrinking may take more runs)
    assert failure["images"] <= 2, failure["input"]
    assert want["crash"] in failure["headline"], failure["headline"]
    case = FuzzCase.from_json(failure["case"])
    if "modes" in want:
        assert any(i.mode in want["modes"] for i in case.all_images), failure["input"]
    if "sizes" in want:
        assert any([i.width, i.height] in want["sizes"] for i in case.all_images), failure["input"]
    if "boxes" in want:
        assert any(b.kind in want["boxes"] for i in case.all_images for b in i.boxes), failure["input"]
    # the message names the input in words, the kept /in and the commands
    assert failure["input"] in text and failure["rebuild"] in text and failure["docker"] in text
    # the kept /in and the rebuilt one are byte for byte the /in of the failing run
    kept = Path(failure["in_dir"])
    assert in_digest(kept) == failure["in_digest"]
    rebuilt = cwd / "rebuilt"
    proc = subprocess.run([sys.executable, "-m", "ymir_conformance", "workspace", str(rebuilt), "--fuzz-case",
                           failure["case_file"]], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert in_digest(rebuilt / "in") == failure["in_digest"]
    assert f"/in digest {failure['in_digest']}" in proc.stdout


def test_the_reference_passes_the_search(sessions: dict[str, tuple[Path, str]]) -> None:
    cwd, text = sessions[REFERENCE]
    outcomes = _outcomes(cwd)
    assert "failed" not in outcomes.values(), text
    assert {"test_fuzz_candidates[image]", "test_fuzz_training[image]"} <= set(outcomes)
    data = json.loads((cwd / "rep" / "report.json").read_text())
    assert data["exit_status"] == 0
    for result in data["fuzz"]:
        assert result["failure"] is None and not result["error"] and not result["skipped"], result
        # every input asked for ran (the budget is far away), and the coverage says what they were
        assert result["tried"] >= result["examples"] - 2, result  # a repeated input runs once
        assert result["coverage"]["images"] >= result["tried"]
        assert len(result["coverage"]["modes"]) >= 4, result["coverage"]


def test_the_next_session_retries_the_failure_first(sessions: dict[str, tuple[Path, str]], fixture_image: Any) -> None:
    """Hypothesis's database under the workdir: the same command again replays the minimal failing input first."""
    name = "broken-fuzz-gray-candidates"
    cwd, _ = sessions[name]
    argv = [a.replace("--ymir-report-dir=rep", "--ymir-report-dir=rep-again").replace(
        "--junitxml=junit.xml", "--junitxml=junit-again.xml") for a in _argv(fixture_image(name), "candidates")]
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=BUDGET_S + 600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    first = json.loads((cwd / "rep" / "report.json").read_text())["fuzz"][0]["failure"]
    [again] = json.loads((cwd / "rep-again" / "report.json").read_text())["fuzz"]
    assert again["tried"] == 1 and again["failure"]["found_at"] == 1, again
    assert again["failure"]["case"] == first["case"]
