"""JUnit XML (xunit2, valid against the Jenkins/xunit2 schema): the suite properties of a session, from the
finished report data (the same answers and words as the terminal, report.json, the certificate and the badge),
and the report hooks that put each test's findings where xunit2 allows them (<system-out>, its classname, the
failure message). Registered beside the session plugin (plugin.py).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ..judging import HEADLINE_KEY, SYSTEM_OUT_KEY
from ..options import Settings
from ..printable import printable, printable_lines

if TYPE_CHECKING:
    from ..plugin import YmirSession


def _flag(value: bool | None) -> str:
    return "untested" if value is None else str(bool(value)).lower()


def junit_properties(data: dict[str, Any], exit_status: int) -> list[tuple[str, str]]:
    """(name, value) pairs: settings, then per release ``ymir.verdict.<r>`` (the conformance verdict),
    ``ymir.platform_accepts.<r>`` (true / false / untested), ``ymir.gated.<r>`` and ``ymir.answer.<r>`` (both
    answers in words), then the same per image (``ymir.image.<image>.*``)."""
    s = data.get("settings", {})
    props: list[tuple[str, object]] = [
        ("ymir.tool", f"ymir-conformance {data.get('tool', {}).get('version', '')}"),
        ("ymir.profile", s.get("profile")), ("ymir.seed", s.get("seed")),
        ("ymir.platform", ",".join(data.get("releases", []))), ("ymir.gate", ",".join(s.get("gate", []))),
        ("ymir.strict", s.get("strict")), ("ymir.exit_status", exit_status),
    ]
    for v in data.get("verdicts", []):
        r = v["release"]
        props += [(f"ymir.verdict.{r}", v["verdict"]), (f"ymir.platform_accepts.{r}", _flag(v.get("platform_accepts"))),
                  (f"ymir.gated.{r}", _flag(v.get("gated"))), (f"ymir.answer.{r}", v.get("words", v["verdict"]))]
    for img in data.get("images", []):
        name = img["image"]
        props += [("ymir.image", name), (f"ymir.image.{name}.id", img["image_id"])]
        for row in img["compatibility"]:
            detail = "; ".join(x for x in (("MUST: " + ", ".join(row["must"])) if row["must"] else "",
                                           ("SHOULD: " + ", ".join(row["should"])) if row["should"] else "") if x)
            props += [(f"ymir.image.{name}.verdict.{row['release']}", row["verdict"] + (f" ({detail})" if detail else "")),
                      (f"ymir.image.{name}.platform_accepts.{row['release']}", _flag(row.get("platform_accepts")))]
    props.append(("ymir.container_runs", data.get("container_runs", 0)))
    return [(name, "" if value is None else str(value)) for name, value in props]


class JUnitHooks:
    """The session's JUnit XML hooks (only where --junitxml is given)."""

    def __init__(self, session: YmirSession) -> None:
        self.session = session
        self.config = session.config
        self.settings = session.settings

    def _junit(self) -> Any:
        from _pytest.junitxml import xml_key

        return self.config.stash.get(xml_key, None)

    def force_xunit2(self) -> None:
        """Rule results go where xunit2 allows them (suite properties, <system-out>): the plugin writes xunit2
        whatever junit_family says, since xunit1 adds attributes the Jenkins/xunit2 schema refuses."""
        xml = self._junit()
        if xml is not None and xml.family != "xunit2":
            self.session.notes.append(f"ymir-conformance: --junitxml written as junit_family=xunit2 (not {xml.family}): CI "
                              "systems validate against the xunit2 schema")
            xml.family = "xunit2"

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        lines = item.stash.get(SYSTEM_OUT_KEY, None)
        if lines and report.when == "call":
            report.ymir_system_out = printable_lines("\n".join(lines))  # type: ignore[attr-defined]  # xdist carries it
        report.ymir_image = item_image(item, self.settings)  # type: ignore[attr-defined]
        headline = item.stash.get(HEADLINE_KEY, None)
        crash = getattr(report.longrepr, "reprcrash", None)
        if headline and report.failed and report.when == "call" and crash is not None:
            crash.message = headline  # JUnit's failure message and the short summary line: '[TR-02 MUST] ...'

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        xml = self._junit()
        if xml is None:
            return
        import xml.etree.ElementTree as ET

        from _pytest.junitxml import bin_xml_escape

        reporter = xml.node_reporter(report)
        image = getattr(report, "ymir_image", "")
        if image and "classname" not in reporter.attrs:
            reporter.add_attribute("classname", image)  # the CI UI groups the tests by image
        text = getattr(report, "ymir_system_out", "")
        if text:
            node = ET.Element("system-out")
            node.text = bin_xml_escape(text)
            reporter.nodes.append(node)

    def junit_properties(self, data: dict[str, Any], exit_status: int) -> None:
        xml = self._junit()
        if xml is None:
            return
        for name, value in junit_properties(data, exit_status):
            xml.add_global_property(printable(name, limit=0), printable(value, limit=0))


def item_image(item: pytest.Item, settings: Settings) -> str:
    """The image a suite test judges (for its JUnit classname)."""
    from ..session import RunSpec

    params = getattr(getattr(item, "callspec", None), "params", {})
    spec = params.get("ymir_spec")
    if isinstance(spec, RunSpec):
        return spec.image
    image = params.get("ymir_image")
    if isinstance(image, str):
        return image
    return settings.images[0] if len(settings.images) == 1 else ""


__all__ = ["JUnitHooks", "item_image", "junit_properties"]
