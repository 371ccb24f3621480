"""One verdict, the same words everywhere (issue 18): per mode (default, strict, gated subset, all), a real
`pytest --image=...` session whose exit status, JUnit suite properties, report.json, terminal verdict block,
certificate (banner and verdict table) and badge are checked against each other and against what the image
does: the platform's answer (platform_accepts) beside the conformance verdict."""
from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from test_plugin_e2e import assert_valid_junit, assert_valid_report, run_suite  # same directory

FAILED = ("not conformant", "not conformant (strict)")


def flag(value: bool | None) -> str:
    return "untested" if value is None else str(value).lower()


def surfaces(result: pytest.RunResult, reports: Path) -> dict[str, Any]:
    """Check every surface against report.json; return report.json."""
    data = assert_valid_report(reports / "report.json")
    assert data["exit_status"] == result.ret
    gated_fail = [v["release"] for v in data["verdicts"] if v["gated"] and v["verdict"] in FAILED]
    assert (result.ret == pytest.ExitCode.TESTS_FAILED) == bool(gated_fail), (result.ret, data["verdicts"])
    if not gated_fail:
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    # JUnit suite properties
    assert_valid_junit(reports / "junit.xml")
    props = {p.get("name"): p.get("value") for p in ET.parse(reports / "junit.xml").getroot().iter("property")}
    assert props["ymir.exit_status"] == str(result.ret)
    (img,) = data["images"]
    rows = {row["release"]: row for row in img["compatibility"]}
    page = (reports / "certificate.html").read_text()
    terminal = result.stdout.str()
    for v in data["verdicts"]:
        r = v["release"]
        row = rows[r]
        assert (row["verdict"], row["platform_accepts"], row["words"]) == (v["verdict"], v["platform_accepts"],
                                                                          v["words"])  # one image: the same
        assert v["conformant"] is (True if v["verdict"].startswith("conformant") else
                                   False if v["verdict"] in FAILED else None)
        assert props[f"ymir.verdict.{r}"] == v["verdict"]
        assert props[f"ymir.platform_accepts.{r}"] == flag(v["platform_accepts"])
        assert props[f"ymir.gated.{r}"] == flag(v["gated"])
        assert props[f"ymir.answer.{r}"] == v["words"]
        assert props[f"ymir.image.{img['image']}.verdict.{r}"].startswith(v["verdict"])
        # the terminal verdict block: one line per release with the same words, marked when it does not gate
        line = next(ln for ln in terminal.splitlines() if ln.startswith(f"  platform {r} "))
        assert v["words"] in line and (("(not gating)" in line) is not v["gated"]), line
        assert line.split()[2] == ("FAIL" if v["verdict"] in FAILED else "PASS" if v["conformant"] else
                                   "INCOMPLETE" if v["verdict"] == "incomplete" else "-")
        # the certificate: the banner box and the verdict table row of the release
        box = re.search(rf'<div class="rel [^"]*" data-release="{re.escape(r)}" title="([^"]*)">'
                        r'<div class="r">([^<]*)</div><div class="v">([^<]*)</div><div class="a">([^<]*)</div>', page)
        assert box is not None, f"no banner box for {r}"
        title, head, verdict, accepts = (html.unescape(g) for g in box.groups())
        assert (title, verdict) == (v["words"], v["verdict"])
        assert head.endswith("gated" if v["gated"] else "not gating"), head
        assert accepts == {True: "accepted by the platform", False: "rejected by the platform",
                           None: "platform: not known"}[v["platform_accepts"]]
        table = re.search(rf"<tr><td>{re.escape(r)}</td><td>(yes|no)</td><td>([^<]*)</td><td><span class=\"pill "
                          r"[^\"]*\">([^<]*)</span><br><small>([^<]*)</small>", page)
        assert table is not None, f"no verdict table row for {r}"
        gated, accepted, pill, words = (html.unescape(g) for g in table.groups())
        assert (gated == "yes") is v["gated"] and (pill, words) == (v["verdict"], v["words"])
        assert accepted.split(" ")[0] == {True: "yes", False: "no", None: "\u2013"}[v["platform_accepts"]]
    return data


def badge(reports: Path) -> str:
    """The session badge as 'label: message' (its aria-label)."""
    text = (reports / "badge.svg").read_text()
    found = re.search(r'aria-label="([^"]*)"', text)
    assert found is not None
    return html.unescape(found.group(1))


def session(pytester: pytest.Pytester, image: str, *args: str) -> tuple[pytest.RunResult, Path]:
    reports = pytester.path / "reports"
    result = run_suite(pytester, image, "--ymir-tasks=training", f"--ymir-report-dir={reports}",
                       f"--junitxml={reports / 'junit.xml'}", *args)
    return result, reports


def test_default_an_image_the_platform_accepts_but_that_trains_on_nothing(pytester: pytest.Pytester,
                                                                          fixture_image: Any) -> None:
    result, reports = session(pytester, fixture_image("broken-trains-on-predictions"))
    data = surfaces(result, reports)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    (v,) = data["verdicts"]
    assert (v["verdict"], v["platform_accepts"], v["gated"]) == ("not conformant", True, True)
    assert v["words"] == ("accepted by the platform; not conformant: IN-11 (never opened its annotations: a model "
                          "trained on nothing)")
    assert {(f["rule"], f["basis"]) for f in data["findings"]} == {("IN-11", "integrity")}
    assert "train annotations 0/24, val annotations 8/8" in result.stdout.str()
    assert badge(reports) == "YMIR 2.5: accepted by the platform, not conformant"


def test_strict_a_should_finding_is_not_conformant_strict(pytester: pytest.Pytester, fixture_image: Any) -> None:
    result, reports = session(pytester, fixture_image("broken-state-done"), "--ymir-strict")
    data = surfaces(result, reports)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    (v,) = data["verdicts"]
    assert (v["verdict"], v["platform_accepts"], v["conformant"]) == ("not conformant (strict)", True, False)
    assert v["words"].startswith("accepted by the platform; not conformant (strict): MON-06")
    assert badge(reports) == "YMIR 2.5: not conformant (strict)"
    assert "Compatible" not in (reports / "certificate.html").read_text()


def test_gated_subset_reports_the_other_releases_without_failing(pytester: pytest.Pytester,
                                                                 fixture_image: Any) -> None:
    """1.1 has no predictions to train on (the image reads its labels there); 2.5 has: not conformant, not gated."""
    result, reports = session(pytester, fixture_image("broken-trains-on-predictions"), "--ymir-platform=1.1,2.5",
                              "--ymir-gate=1.1")
    data = surfaces(result, reports)
    assert result.ret == pytest.ExitCode.OK
    verdicts = {v["release"]: (v["verdict"], v["gated"], v["platform_accepts"]) for v in data["verdicts"]}
    assert verdicts == {"1.1": ("conformant", True, True), "2.5": ("not conformant", False, True)}
    assert badge(reports) == "YMIR 1.1, 2.5: 1.1 conformant"


def test_all_releases_badge_names_the_judged_range(pytester: pytest.Pytester, fixture_image: Any) -> None:
    result, reports = session(pytester, fixture_image("broken-trains-on-predictions"), "--ymir-platform=all")
    data = surfaces(result, reports)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    verdicts = {v["release"]: v["verdict"] for v in data["verdicts"]}
    assert verdicts["1.1"] == "conformant" and {verdicts[r] for r in verdicts if r != "1.1"} == {"not conformant"}
    assert all(v["platform_accepts"] is True and v["gated"] for v in data["verdicts"])
    assert badge(reports) == "YMIR 1.1\u20132.5: 1.1 conformant"
    assert (reports / "badge-2.5.svg").exists() and "accepted by the platform, not conformant" in html.unescape(
        (reports / "badge-2.5.svg").read_text())
    result.stdout.fnmatch_lines(["*=> conformant on 1.1; accepted by the platform, not conformant on 2.0-2.5 (IN-11)"])
