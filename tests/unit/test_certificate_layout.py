"""The certificate's layout without a browser: the progress plot keeps every label out of the plot area and inside
the picture, and the page declares a viewport and wraps its tables (tests/integration/test_certificate.py renders it
in Chromium at 1400 and 390 px)."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from typing import Any

import pytest

from ymir_conformance.report.html import ASCENT, DESCENT, progress_svg, render_certificate, seconds, text_width

SVG = "{http://www.w3.org/2000/svg}"


def _run(duration: float, points: list[tuple[float, float]], state: str = "2") -> dict[str, Any]:
    return {"id": "det-voc", "duration_s": duration,
            "progress": [{"seen_s": t, "line": f"t\t1\t{v}\t{state}"} for t, v in points]}


CASES = {
    "both budgets inside": (_run(100, [(1, 0), (20, 0.3), (60, 0.8), (99, 1.0)], "3"),
                            {"first_progress_s": 10, "total_s": 90}),
    "budgets side by side": (_run(100, [(1, 0), (50, 0.95), (99, 1.0)]), {"first_progress_s": 50, "total_s": 55}),
    "equal budgets": (_run(100, [(1, 0.2), (99, 1.0)]), {"first_progress_s": 60, "total_s": 60}),
    "a budget at the end": (_run(100, [(1, 1.0)]), {"first_progress_s": 0, "total_s": 104}),
    "budgets beyond the run": (_run(6.3, [(0.8, 0.0), (6.1, 1.0)]), {"first_progress_s": 60, "total_s": 300}),
    "one update": (_run(2, [(1, 0.5)]), {}),
    "long run, error": (_run(1234.5, [(0.5, 0.01), (1200, 0.4)], "4"), {"first_progress_s": 1000, "total_s": 1200}),
    "heartbeat only": (_run(30, [(0, 0), (29.9, 1)]), {"heartbeat_s": 5}),
}


def _boxes(svg: str) -> tuple[ElementTree.Element, list[tuple[str, float, float, float, float]]]:
    """The SVG root and each text's box (text, x0, y0, x1, y1), its width estimated as the renderer does."""
    root = ElementTree.fromstring(svg)
    boxes = []
    for t in root.iter(f"{SVG}text"):
        text = "".join(t.itertext())
        x, y, w = float(t.get("x", 0)), float(t.get("y", 0)), text_width(text)
        x0 = {"start": x, "middle": x - w / 2, "end": x - w}[t.get("text-anchor", "start")]
        boxes.append((text, x0, y - ASCENT, x0 + w, y + DESCENT))
    return root, boxes


@pytest.mark.parametrize("case", list(CASES))
def test_no_label_inside_the_plot_area_nor_outside_the_picture(case: str) -> None:
    run, budget = CASES[case]
    root, boxes = _boxes(progress_svg(run, budget))
    width, height = float(root.get("width", 0)), float(root.get("height", 0))
    plot = root.find(f"{SVG}rect")
    assert plot is not None
    px0, py0 = float(plot.get("x", 0)), float(plot.get("y", 0))
    px1, py1 = px0 + float(plot.get("width", 0)), py0 + float(plot.get("height", 0))
    for text, x0, y0, x1, y1 in boxes:
        assert 0 <= x0 and x1 <= width and 0 <= y0 and y1 <= height, f"{text!r} is cut: {x0, y0, x1, y1}"
        inside = x0 < px1 and x1 > px0 and y0 < py1 and y1 > py0
        assert not inside, f"{text!r} lies in the plot area, where the line runs"
    for i, a in enumerate(boxes):  # no two labels on top of each other
        for b in boxes[i + 1:]:
            assert a[3] <= b[1] or b[3] <= a[1] or a[4] <= b[2] or b[4] <= a[2], f"{a[0]!r} overlaps {b[0]!r}"
    line = root.find(f"{SVG}polyline")
    assert line is not None
    for pair in line.get("points", "").split():
        lx, ly = (float(v) for v in pair.split(","))
        assert px0 <= lx <= px1 and py0 <= ly <= py1
    axis = [t for t in root.iter(f"{SVG}text") if "".join(t.itertext()).endswith(" s") and t.get("text-anchor")]
    assert axis[-1].get("text-anchor") == "end"  # the last seconds label ends at its tick: never clipped


def test_budgets_are_named_above_their_line_or_listed_under_the_axis() -> None:
    svg = progress_svg(*CASES["both budgets inside"])
    assert ">first progress 10 s</text>" in svg and ">total 90 s</text>" in svg
    svg = progress_svg(*CASES["budgets beyond the run"])
    assert "budgets beyond the run: first progress 60 s, total 300 s" in re.sub(r"</text><text[^>]*>", " ", svg)
    assert "last 100% running at 6.1 s" in svg
    side = _boxes(progress_svg(*CASES["budgets side by side"]))[1]
    rows = {round(y0) for text, _, y0, _, _ in side if text.startswith(("first progress", "total"))}
    assert len(rows) == 2  # two names that would overlap go on two rows


def test_seconds_never_use_an_exponent() -> None:
    assert [seconds(t) for t in (0, 3.28, 208, 999.5, 1283.4)] == ["0 s", "3.28 s", "208 s", "1000 s", "1283 s"]


def test_the_page_declares_a_viewport_and_every_table_may_scroll() -> None:
    data = {"settings": {}, "images": [{"image": "x:1", "image_id": "sha256:0", "summary": "conformant on 2.5",
                                        "compatibility": [{"release": "2.5", "verdict": "conformant", "must": [],
                                                           "should": [], "platform_accepts": True}],
                                        "object_types": [], "declared_tasks": {}}],
            "runs": [_run(6.3, [(0.8, 0.0), (6.1, 1.0)]) | {"image": "x:1", "exit_code": 0}],
            "verdicts": [{"release": "2.5", "verdict": "conformant", "platform_accepts": True}], "releases": ["2.5"],
            "fuzz": [{"image": "x:1", "search": "candidates", "run_kind": "infer", "tried": 3, "examples": 20,
                      "coverage": {}, "failure": {"rules": ["INF-06"], "input": "a 1x1 PNG", "headline": "h",
                                                  "found_at": 2, "shrink_runs": 1, "rebuild": "python -m x " * 20,
                                                  "docker": "docker run " * 20}}]}
    page = render_certificate(data)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    tables = re.findall(r"(.{0,40})<table", page)
    assert tables and all(t.endswith('<div class="scroll">') for t in tables), tables
    assert "@media (max-width:640px)" in page and 'class="runs stack"' in page and 'class="fuzz stack"' in page
