"""`pytest --image=...` run as a user runs it (pytester, in a directory of its own), on real containers."""
from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from lxml import etree

from ymir_conformance.report import load_schema

XSD = Path(__file__).resolve().parents[1] / "plugin" / "data" / "junit-10.xsd"  # pytest's own: testing/example_scripts
# JSON Schema counts 1.0 as an integer; report.json must never write a count as 1.0
STRICT = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=jsonschema.Draft202012Validator
                                      .TYPE_CHECKER.redefine("integer", lambda _, x: type(x) is int))


def assert_valid_junit(path: Path) -> None:
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    ok = schema.validate(etree.parse(str(path)))
    assert ok, "\n".join(str(e) for e in schema.error_log)


def assert_valid_report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    STRICT(load_schema()).validate(data)
    return data


def run_suite(pytester: pytest.Pytester, image: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(f"--image={image}", "-p", "no:cacheprovider",
                                         f"--ymir-workdir={pytester.path / 'work'}", *args, timeout=900)


def test_reference_det_is_certified_with_reports(pytester: pytest.Pytester, fixture_image: Any) -> None:
    image = fixture_image("reference-det")
    reports = pytester.path / "reports"
    result = run_suite(pytester, image, "-v", f"--ymir-report-dir={reports}", f"--junitxml={reports / 'junit.xml'}")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([
        "ymir-conformance: profile quick, seed 0, platform 2.5, user 12345:12345, CPU mode, network none, diagnose auto",
        "image ymir-conformance/reference-det:latest id *: detection (2): training/mining/infer",
        "*test_image_inspection[[]image[]] PASSED*",
        "*test_training_result[[]det-voc[]] PASSED*",
        "*test_infer_result[[]infer-det-voc[]] PASSED*",
        "*test_mining_result[[]mining+infer-det-voc[]] PASSED*",
        "*ymir-conformance verdict*",
        "*platform 2.5  PASS       accepted by the platform; conformant",
        "*det-voc * exit 0 *progress updates*",
        "container runs: 4",
    ])
    data = assert_valid_report(reports / "report.json")
    answers = {"conformant": True, "platform_accepts": True, "platform_must": [],
               "words": "accepted by the platform; conformant"}
    assert data["exit_status"] == 0
    assert data["verdicts"] == [{"release": "2.5", "verdict": "conformant", "gated": True, **answers}]
    assert data["findings"] == []
    assert data["images"][0]["compatibility"] == [
        {"release": "2.5", "verdict": "conformant", "must": [], "should": [], **answers}]
    assert {r["id"] for r in data["runs"]} == {"det-voc", "infer-det-voc", "mining-det-voc", "mining+infer-det-voc"}
    training = next(r for r in data["runs"] if r["id"] == "det-voc")
    assert training["exit_code"] == 0 and training["progress"], "the live sampler saw no progress"
    assert "--network" in training["argv"] and "--user" in training["argv"]
    assert training["progress_points"] >= len(training["progress"]) and type(training["progress_timing"]["updates"]) is int
    log = (reports / training["log_file"]).read_text()
    assert training["log_file"] == "logs/ymir-conformance_reference-det_latest/det-voc.log"
    assert log.endswith("\n") and training["log_tail"][-1] in log
    html = (reports / "certificate.html").read_text()
    assert "<script" not in html and "http" not in html.split("</head>")[0]  # self-contained
    assert "conformant" in html
    assert_valid_junit(reports / "junit.xml")
    root = ET.parse(reports / "junit.xml").getroot()
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["ymir.image"] == image and props[f"ymir.image.{image}.id"] == data["images"][0]["image_id"]
    assert {k: props[k] for k in ("ymir.profile", "ymir.seed", "ymir.platform", "ymir.gate", "ymir.exit_status",
                                  "ymir.verdict.2.5", f"ymir.image.{image}.verdict.2.5")} == {
        "ymir.profile": "quick", "ymir.seed": "0", "ymir.platform": "2.5", "ymir.gate": "2.5",
        "ymir.exit_status": "0", "ymir.verdict.2.5": "conformant", f"ymir.image.{image}.verdict.2.5": "conformant"}
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert {c.get("classname") for c in cases.values()} == {image}
    judged = "".join(c.findtext("system-out") or "" for c in cases.values())
    for rule in ("TR-01", "TR-03", "MON-01", "INF-01", "MIN-02", "IM-01", "V1"):
        assert f"  {rule} " in judged and f"{rule:<8} passed (MUST, platform)" in judged, rule
    assert "test_negative_input[none]" in cases
    skipped = cases["test_negative_input[none]"].find("skipped")
    assert skipped is not None and skipped.get("message") == (
        "the quick profile plans no negative-input runs (the certify profile runs them, or add negative to "
        "--ymir-tasks)")


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
        "training run det-voc, platform 2.5: exit 0 after * s; no error in its log *",
        "  docker run -v …:/in:ro -v …:/out (+2 mounts) --user * ymir-conformance/broken-no-result:latest",
        "*platform 2.5  FAIL       rejected by the platform: TR-01 (no readable result.yaml); not conformant",
        "*MUST: TR-01 (det-voc)",
        "findings:",
        "  [[]TR-01 MUST[]] det-voc: /out/models/result.yaml does not exist after training*",
        "FAILED *test_training_result[[]det-voc[]] - [[]TR-01 MUST[]]*",
    ])


def test_banner_on_stdout_fails_image_inspection_with_im_01(pytester: pytest.Pytester, fixture_image: Any) -> None:
    result = run_suite(pytester, fixture_image("broken-banner"), "--ymir-tasks=training")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=3, failed=1, skipped=3)  # the tasks still run, from the files' true content
    result.stdout.fnmatch_lines([
        "[[]IM-01 MUST[]] `docker run --rm ymir-conformance/broken-banner:latest cat /img-man/*` does not print the file",
        "    found: stdout differs from the file; stdout starts with '=====*FooNet executor*",
        "*platform 2.5  FAIL       rejected by the platform: IM-01 (*); not conformant",
        "*MUST: IM-01 (image)",
        "FAILED *test_image_inspection[[]image[]]*",
    ])


def test_xdist_workers_share_the_work_and_the_controller_reports_it_all(pytester: pytest.Pytester,
                                                                       docker_client: Any,
                                                                       fixture_image: Any) -> None:
    """The merged report, checked against the engine. This test once trusted the plugin's own
    'container runs: 8' alone: that number is the sum of the workers' counts and the run table was de-duplicated
    by run id, so the report could not show a run made twice. It passed because it gives --dist loadgroup,
    under which the plain command line groups too (pytester's subprocess is a plain `python -m pytest`, nothing
    in it changes the hook order); what did differ was a plain `-n 2`, xdist's --dist load: 15 container runs for
    8 runs, each training on both workers. Now the engine's own create events are the witness, and `-n 2`
    without --dist is what is run (the plugin schedules it by group). tests/integration/test_xdist.py does
    the same from a plain subprocess in an empty directory, and kills a worker."""
    from tests.engine_events import EngineCreates

    reports = pytester.path / "reports"
    creates = EngineCreates(docker_client, os.environ["YMIR_CONFORMANCE_TAG"])
    try:
        result = run_suite(pytester, fixture_image("reference-det"), f"--image={fixture_image('reference-semseg')}",
                           "-n", "2", f"--ymir-report-dir={reports}")
    finally:
        creates.stop()
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([
        "*ymir-conformance verdict*",
        "ymir-conformance/reference-det:latest (*), profile quick, seed 0",
        "  platform 2.5  PASS       accepted by the platform; conformant",
        "ymir-conformance/reference-semseg:latest (*), profile quick, seed 0",
        "  platform 2.5  PASS       accepted by the platform; conformant",
        "container runs: 8",  # each run exactly once across the workers (grouped by the training they need)
        "ymir-conformance: --dist load ran as --dist loadgroup*",
    ])
    engine = creates.tasks()
    assert sum(engine.values()) == 8 and set(engine.values()) == {1}, engine  # the engine agrees
    data = json.loads((reports / "report.json").read_text())
    assert len(data["runs"]) == 8 and {i["summary"] for i in data["images"]} == {"conformant on 2.5"}
    assert data["container_runs"] == 8 and not data.get("repeated_runs")


def test_quiet_output_of_a_failing_image_is_exact(pytester: pytest.Pytester, fixture_image: Any) -> None:
    """-q: the failure once with the run's line and its shortened docker command, the verdict block, one line per
    finding; no pytest warnings summary."""
    image = fixture_image("broken-metric-percent")
    reports = pytester.path / "reports"
    result = run_suite(pytester, image, "-q", f"--junitxml={reports / 'junit.xml'}", f"--ymir-report-dir={reports}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert out.count("  docker run -v …:/in:ro") == 1 and out.count("training run det-voc, platform 2.5: exit 0") == 1
    assert "warnings summary" not in out and "task runs:" not in out
    result.stdout.fnmatch_lines([
        "*ymir-conformance verdict*",
        f"{image} (*), profile quick, seed 0",
        "  platform 2.5  FAIL       rejected by the platform: TR-02 (a stage the platform refuses); not conformant",
        "                           MUST: TR-02 (det-voc)",
        "container runs: 4",
        "findings:",
        "  [[]TR-02 MUST[]] det-voc: mAP = 63.74 is outside [[]0, 1[]] (looks like a percentage: divide by 100)*(+2 more) [[]platform[]]",
        "*short test summary info*",
        "FAILED *test_training_result[[]det-voc[]] - [[]TR-02 MUST[]] mAP*",
        "1 failed, 13 passed, 1 skipped in *",
    ])
    assert_valid_junit(reports / "junit.xml")
    failure = next(ET.parse(reports / "junit.xml").getroot().iter("failure"))
    assert (failure.get("message") or "").startswith("[TR-02 MUST] mAP = 63.74 is outside [0, 1]")
    assert (failure.text or "").index("[TR-02 MUST]") < (failure.text or "").index("  docker run -v …:/in:ro")
    data = assert_valid_report(reports / "report.json")
    assert data["exit_status"] == 1
    assert [(f["rule"], f["level"], f["run"], f["where"]) for f in data["findings"]] == [
        ("TR-02", "MUST", "det-voc", f"model_stages.epoch_{i}.mAP") for i in (1, 2, 3)]


def test_should_violations_are_in_the_summary_and_junit_not_python_warnings(pytester: pytest.Pytester,
                                                                          fixture_image: Any) -> None:
    reports = pytester.path / "reports"
    result = run_suite(pytester, fixture_image("broken-state-done"), "--ymir-tasks=training",
                       f"--junitxml={reports / 'junit.xml'}")
    assert result.ret == 0, result.stdout.str()
    out = result.stdout.str()
    assert "warnings summary" not in out and "ShouldViolationWarning" not in out and "plugin.py" not in out
    result.stdout.fnmatch_lines(["*platform 2.5  PASS       accepted by the platform; conformant with warnings: SHOULD "
                                 "MON-06",
                                 "findings:", "  [[]MON-06 SHOULD[]] *"])
    assert_valid_junit(reports / "junit.xml")
    outs = [c.findtext("system-out") or "" for c in ET.parse(reports / "junit.xml").getroot().iter("testcase")]
    assert any("[MON-06 SHOULD]" in o for o in outs)


def test_strict_fails_should_violations(pytester: pytest.Pytester, fixture_image: Any) -> None:
    result = run_suite(pytester, fixture_image("broken-state-done"), "--ymir-tasks=training", "--ymir-strict")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*platform 2.5  FAIL       accepted by the platform; not conformant (strict): MON-06 *",
                                 "FAILED *[[]MON-06 SHOULD[]]*"])


def test_junit_is_xunit2_even_when_the_ini_asks_for_xunit1(pytester: pytest.Pytester, fixture_image: Any) -> None:
    junit = pytester.path / "junit.xml"
    result = run_suite(pytester, fixture_image("reference-det"), "--ymir-tasks=training", "-o", "junit_family=xunit1",
                       f"--junitxml={junit}")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["ymir-conformance: --junitxml written as junit_family=xunit2 (not xunit1)*"])
    assert_valid_junit(junit)
    assert all(c.get("file") is None for c in ET.parse(junit).getroot().iter("testcase"))  # xunit1's attributes
