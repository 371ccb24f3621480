"""report.json as a contract: the shipped JSON Schema, derived fields, thinned progress, the terminal lines."""
from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

from ymir_conformance.options import Settings
from ymir_conformance.report import (PROGRESS_CAP, SCHEMA_VERSION, finish, load_schema, log_name, report_data,
                                    thin_progress)
from ymir_conformance.report.terminal import finding_lines, render_summary
from ymir_conformance.verdict import Ledger


# JSON Schema counts 1.0 as an integer; report.json must not write a count as 1.0, so the tests check strictly
STRICT = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=jsonschema.Draft202012Validator
                                      .TYPE_CHECKER.redefine("integer", lambda _, x: type(x) is int))


def validate(data: dict[str, Any]) -> None:
    STRICT(load_schema()).validate(data)


def violation(message: str, where: str, level: str = "MUST") -> dict[str, Any]:
    return {"rule": "TR-02", "message": message, "file": "/out/models/result.yaml", "where": where,
            "found": "a float 41.41", "level": level}


def sample() -> dict[str, Any]:
    """Report data shaped like a real session's (one image, one run, TR-02 broken on 2.4 and 2.5)."""
    judgement = {"image": "ns/img:1", "subject": "det-voc", "area": "training", "findings": [
        {"rule": "TR-02", "title": "t", "area": "training", "status": "failed", "level": "MUST", "reason": "",
         "violations": [violation("mAP = 41.41 is outside [0, 1]", "model_stages.epoch_1.mAP"),
                        violation("mAP = 53.18 is outside [0, 1]", "model_stages.epoch_2.mAP")]},
        {"rule": "TR-01", "title": "t", "area": "training", "status": "passed", "level": "MUST", "reason": "",
         "violations": []}]}
    run = {"image": "ns/img:1", "id": "det-voc", "kind": "training", "exit_code": 0, "timed_out": False,
           "duration_s": 2.1, "argv": ["docker", "run"], "diagnosis": [], "attempts": [], "log_tail": ["done"],
           "progress": [{"seen_s": 0.3, "line": "t\t1\t0.5\t2"}], "progress_points": 1,
           "progress_timing": {"first_update_s": 0.3, "longest_gap_s": 1.8, "updates": 1},
           "log_file": log_name("ns/img:1", "det-voc")}
    rows = [{"release": r, "verdict": "not conformant", "must": ["TR-02 (det-voc)"], "should": []}
            for r in ("2.4", "2.5")]
    return {"schema_version": SCHEMA_VERSION, "tool": {"name": "ymir-conformance", "version": "0.1.0"},
            "generated_at": "2026-01-01T00:00:00Z",
            "settings": {"profile": "quick", "seed": 0, "user": "12345:12345", "gpu_ids": [], "allow_network": False,
                         "releases": ["2.4", "2.5"], "strict": False, "gate": ["2.5"],
                         "budget": {"total_s": 300, "first_progress_s": 60, "heartbeat_s": 120}},
            "releases": ["2.4", "2.5"], "container_runs": 1,
            "images": [{"image": "ns/img:1", "image_id": "sha256:ab", "object_types": [2],
                        "declared_tasks": {"detection": ["training"]}, "compatibility": rows, "summary": "s"}],
            "runs": [run, {"image": "ns/img:1", "id": "infer-det-voc", "kind": "infer", "skipped": "not asked"}],
            "judgements": [{**judgement, "release": "2.4"}, {**judgement, "release": "2.5"}]}


def test_the_shipped_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(load_schema())


def test_finished_report_data_validates_and_derives_findings_verdicts_and_exit_status() -> None:
    data = finish(sample(), exit_status=1)
    validate(data)
    assert data["exit_status"] == 1
    words = "rejected by the platform: TR-02 (a stage the platform refuses); not conformant"
    assert data["verdicts"] == [
        {"release": r, "verdict": "not conformant", "gated": r == "2.5", "conformant": False,
         "platform_accepts": False, "platform_must": ["TR-02"], "words": words} for r in ("2.4", "2.5")]
    assert [(f["rule"], f["level"], f["basis"], f["run"], f["where"], f["releases"]) for f in data["findings"]] == [
        ("TR-02", "MUST", "platform", "det-voc", "model_stages.epoch_1.mAP", ["2.4", "2.5"]),
        ("TR-02", "MUST", "platform", "det-voc", "model_stages.epoch_2.mAP", ["2.4", "2.5"])]
    assert finish(data, exit_status=1) == data  # idempotent (xdist: finished twice)
    first = data["findings"][0]
    assert first["found"] == "a float 41.41" and first["expected"] is None and first["lost"] is None


@pytest.mark.parametrize(("path", "value"), [
    (("runs", 0, "progress_timing", "updates"), 1.0),  # counts are integers
    (("container_runs",), 4.0),
    (("schema_version",), 1),
    (("runs", 0, "progress"), [{"seen_s": i, "line": "x"} for i in range(PROGRESS_CAP + 1)]),
    (("runs", 0, "log_file"), "/etc/passwd"),
])
def test_the_schema_refuses_what_the_contract_excludes(path: tuple[Any, ...], value: Any) -> None:
    data = finish(sample(), exit_status=0)
    bad = copy.deepcopy(data)
    target: Any = bad
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
    validate(data)


def test_report_data_of_an_empty_ledger_validates_with_integer_counts() -> None:
    data = report_data(Ledger(releases=Settings().releases), Settings())
    data["exit_status"] = 5
    validate(data)
    assert data["schema_version"] == SCHEMA_VERSION and data["findings"] == [] and data["container_runs"] == 0


def integrity_sample(strict: bool) -> dict[str, Any]:
    """The demo case of issue 18: the platform accepts every run, the training never opened its annotations."""
    data = sample()
    data["settings"]["strict"] = strict
    for j in data["judgements"]:
        j["findings"] = [{"rule": "IN-11", "title": "t", "area": "lifecycle", "status": "failed", "level": "MUST",
                          "reason": "", "violations": [{"rule": "IN-11", "message": "never opened", "level": "MUST"}]},
                         {"rule": "MON-04", "title": "t", "area": "monitor", "status": "failed", "level": "SHOULD",
                          "reason": "", "violations": [{"rule": "MON-04", "message": "back", "level": "SHOULD"}]}]
    data["images"][0]["compatibility"] = [
        {"release": "2.4", "verdict": "conformant with warnings", "must": [], "should": ["MON-04"]},
        {"release": "2.5", "verdict": "not conformant", "must": ["IN-11 (det-voc)"], "should": ["MON-04"]}]
    return data


@pytest.mark.parametrize("strict", [False, True])
def test_two_answers_per_release(strict: bool) -> None:
    data = finish(integrity_sample(strict), exit_status=1)
    validate(data)
    v24, v25 = data["verdicts"]
    assert v25["platform_accepts"] is True and v25["conformant"] is False and v25["verdict"] == "not conformant"
    assert v25["words"] == ("accepted by the platform; not conformant: IN-11 (never opened its annotations: a "
                            "model trained on nothing)")
    assert {f["rule"]: f["basis"] for f in data["findings"]} == {"IN-11": "integrity", "MON-04": "platform"}
    assert v24["platform_accepts"] is True
    if strict:
        assert v24["verdict"] == "not conformant (strict)" and v24["conformant"] is False
        assert v24["words"].startswith("accepted by the platform; not conformant (strict): MON-04")
    else:
        assert v24["verdict"] == "conformant with warnings" and v24["conformant"] is True
        assert v24["words"] == "accepted by the platform; conformant with warnings: SHOULD MON-04"
    row24 = data["images"][0]["compatibility"][0]
    assert (row24["verdict"], row24["words"]) == (v24["verdict"], v24["words"])  # one image: the same words
    lines = render_summary(data, quiet=True)
    assert any(v25["words"] in line for line in lines), lines
    assert any(v24["words"] in line for line in lines), lines


def test_progress_is_thinned_keeping_ends_state_changes_and_the_longest_gap() -> None:
    points = [{"seen_s": i * 0.5, "line": f"t\t{i}\t{i / 2000:.4f}\t2"} for i in range(2000)]
    points[1200:] = [{**p, "seen_s": p["seen_s"] + 90} for p in points[1200:]]  # one long silence
    points[-1] = {**points[-1], "line": "t\t1\t1.0\t3"}  # the final state
    thin = thin_progress(points)
    assert len(thin) == PROGRESS_CAP
    assert thin[0] is points[0] and thin[-1] is points[-1]
    assert points[1199] in thin and points[1200] in thin  # both ends of the gap the heartbeat budget judges
    assert points[-2] in thin  # the last sample before the state change
    assert [p["seen_s"] for p in thin] == sorted(p["seen_s"] for p in thin)
    assert thin_progress(points[:10]) == points[:10]


def test_terminal_lines_one_per_finding_and_quiet_drops_the_task_runs() -> None:
    data = finish(sample(), exit_status=1)
    assert finding_lines(data) == [
        "findings:", "  [TR-02 MUST] det-voc: mAP = 41.41 is outside [0, 1] (+1 more) [platform]"]
    quiet = render_summary(data, quiet=True)
    assert not any("task runs" in line for line in quiet)
    assert any("task runs" in line for line in render_summary(data))
    assert quiet[-2:] == finding_lines(data)


def test_log_names_keep_image_namespaces_apart() -> None:
    assert log_name("a/det:1", "det-voc") != log_name("b/det:1", "det-voc")
    assert log_name("a/det:1", "mining+infer-det-voc@2.3") == "logs/a_det_1/mining+infer-det-voc@2.3.log"


HOSTILE = "esc\x1b]0;PWNED\x07 osc52 \x1b]52;c;UFdORUQ=\x07 c1 \x9b2J bidi \u202e lone \ud800"
CONTROLS = ("\x1b", "\x07", "\x9b", "\u202e", "\ud800")


def test_renderers_show_what_the_image_chose_escaped() -> None:
    """The terminal and the certificate render report data (which may come from an xdist worker or an older
    report) as printable text, whatever its strings hold."""
    from ymir_conformance.report.html import render_certificate

    data = sample()
    run = data["runs"][0]
    run["diagnosis"] = [HOSTILE]
    run["log_tail"] = [HOSTILE, "second line"]
    run["progress"] = [{"seen_s": 0.3, "line": f"t\t1\t1.0\t3{HOSTILE}"}]
    data["judgements"][0]["findings"][0]["violations"][0].update(message=HOSTILE, where=HOSTILE, found=HOSTILE)
    data["judgements"][1]["findings"][0]["violations"][0].update(message=HOSTILE, where=HOSTILE, found=HOSTILE)
    data = finish(data, exit_status=1)
    lines = render_summary(data)
    assert any("\\x1b]0;PWNED\\x07" in line and "\\u202e" in line and "\\ud800" in line for line in lines)
    assert all(line.isprintable() for line in lines)
    page = render_certificate(data)
    assert not any(c in page for c in CONTROLS)
    assert "\\x1b]52;c;UFdORUQ=\\x07" in page and "second line" in page
    page.encode("utf-8")
