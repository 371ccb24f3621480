"""The certificate as a person sees it: real sessions rendered by headless Chromium (scripts/ensure-chromium) at
1400 px and as a 390 px phone (browser.py), the screenshots not blank, the verdict words visible and nothing wider
than the page at either width, the verdict and the rule ids in the rendered DOM, nothing external, and the badges."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.integration.browser import Look, look

REQUIRE = os.environ.get("YMIR_REQUIRE_DOCKER") == "1"  # scripts/test: the browser is installed, never skipped


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        msg = "no chromium on PATH: run scripts/ensure-chromium"
        if REQUIRE:
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return exe


def certify(tmp_path: Path, image: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "pytest", f"--image={image}", f"--ymir-report-dir={reports}",
                           "-p", "no:cacheprovider", "-q", *extra], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900)
    assert (reports / "certificate.html").is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, reports


WIDTHS = (1400, 390)  # a desktop window, a phone
PROBE = """(() => {
  const w = window.innerWidth;
  const seen = (el) => {
    const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
    return {text: el.innerText.replace(/\\s+/g, " ").trim(),
            visible: r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= w + 0.5 && r.top >= 0
                     && cs.visibility === "visible" && Number(cs.opacity) > 0};
  };
  const wide = [];
  for (const el of document.querySelectorAll("body *")) {
    if (wide.length < 5 && el.getBoundingClientRect().right > w + 0.5 && !el.closest(".scroll"))
      wide.push(el.tagName.toLowerCase() + (el.className && el.className.baseVal === undefined ? "." + el.className : ""));
  }
  return {innerWidth: w, scrollWidth: document.documentElement.scrollWidth, wide: wide,
          verdicts: [...document.querySelectorAll(".rel .v")].map(seen),
          accepts: [...document.querySelectorAll(".rel .a")].map(seen),
          summaries: [...document.querySelectorAll(".summary")].map(seen)};
})()"""


def render(exe: str, page: Path, shot_dir: Path, name: str) -> dict[int, Look]:
    """The page at every width of WIDTHS: its DOM, the probe and a whole-page screenshot ``<name>-<width>.png``;
    at each width nothing is wider than the page and the verdict words are on screen."""
    looks = {}
    for width in WIDTHS:
        seen = look(exe, page, width, shot_dir / f"{name}-{width}.png", PROBE)
        p = seen.probe
        assert p["innerWidth"] == width, f"laid out {p['innerWidth']} px wide on a {width} px screen (viewport meta?)"
        assert p["scrollWidth"] <= p["innerWidth"], (
            f"at {width} px the page is {p['scrollWidth']} px wide; too wide: {p['wide']} (screenshot {seen.shot})")
        words = p["verdicts"] + p["accepts"] + p["summaries"]
        assert p["verdicts"] and p["summaries"] and all(w["text"] and w["visible"] for w in words), (width, words)
        looks[width] = seen
    return looks


def assert_not_blank(shot: Path, width: int = 1400) -> None:
    img = Image.open(shot).convert("RGB")
    assert img.size[0] == width and img.size[1] >= 1000, img.size
    small = img.crop((0, 0, width, 3000 if width >= 1000 else 1800)).resize((350, 750))
    colours = small.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, f"{len(colours)} distinct colours: the page looks blank"
    non_white = sum(n for n, c in colours if min(c) < 235)
    assert non_white > 0.05 * 350 * 750, f"only {non_white} non-white pixels"
    # the banner's colour at the top: red for a failure, green for a pass (checked by the callers' expectations)


def assert_self_contained(page: str) -> None:
    assert "<script" not in page.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page, re.I), "an external resource"
    assert not re.search(r"url\((?!#)", page), "a CSS url() other than an in-document reference"


def assert_verdict_words(looks: dict[int, Look], data: dict[str, Any]) -> None:
    """At every width the banner shows report.json's verdict for each release and the platform's answer, on
    screen, and each screenshot is a page, not a blank."""
    want = [v["verdict"] for v in data["verdicts"]]
    for width, seen in looks.items():
        assert [v["text"] for v in seen.probe["verdicts"]] == want, width
        assert len(seen.probe["accepts"]) == len(want)
        assert_not_blank(seen.shot, width)


def banner_colour(shot: Path) -> tuple[int, int, int]:
    img = Image.open(shot).convert("RGB").crop((150, 100, 1250, 260))
    counts = sorted(img.getcolors(maxcolors=1 << 20) or [], reverse=True)
    return next(c for n, c in counts if c != (255, 255, 255) and len(set(c)) > 1)


def test_the_certificate_of_a_broken_image(tmp_path: Path, fixture_image: Any) -> None:
    exe = chromium()
    proc, reports = certify(tmp_path, fixture_image("broken-metric-percent"), "--ymir-tasks=training")
    assert proc.returncode == 1, proc.stdout[-3000:]
    page = reports / "certificate.html"
    assert_self_contained(page.read_text())
    looks = render(exe, page, tmp_path, "broken")
    data = json.loads((reports / "report.json").read_text())
    assert_verdict_words(looks, data)
    assert [v["text"] for v in looks[390].probe["accepts"]] == ["rejected by the platform"]
    dom = looks[1400].dom
    r, g, _ = banner_colour(looks[1400].shot)
    assert r > g, "the banner of a failing image is not red"
    text = re.sub(r"<[^>]+>", " ", dom)
    text = re.sub(r"\s+", " ", text)
    assert "Rejected by the platform on 2.5 (TR-02)." in text
    assert "compatible with none" not in text
    assert 'id="rule-TR-02"' in dom and "TR-02 MUST" in text
    assert text.count("Fix:") == 1  # the fix once, for three locations
    for stage in ("epoch_1", "epoch_2", "epoch_3"):
        assert f"/out/models/result.yaml:model_stages.{stage}.mAP" in text
    assert "looks like a percentage" in text and "training done" in text  # found/expected and the log tail
    assert "exit 0" in text and "train annotations 24/24, val annotations 8/8" in text  # the input audit
    assert re.search(r"\d+ passed ?, 1 failed", text)
    assert data["command"][0] == "pytest" and "--ymir-tasks=training" in data["command"]
    assert "--ymir-tasks=training" in text and "seed 0" in text
    badge = (reports / "badge.svg").read_text()
    assert "YMIR 2.5" in badge and "not conformant" in badge and "#e05d44" in badge
    assert "<svg" in dom and "progress of run det-voc" in dom


def test_the_certificate_of_the_reference_image(tmp_path: Path, fixture_image: Any) -> None:
    exe = chromium()
    proc, reports = certify(tmp_path, fixture_image("reference-det"), "--ymir-platform=all")
    assert proc.returncode == 0, proc.stdout[-3000:]
    page = reports / "certificate.html"
    assert_self_contained(page.read_text())
    looks = render(exe, page, tmp_path, "reference")  # seven releases: seven banner boxes, seven columns
    assert_verdict_words(looks, json.loads((reports / "report.json").read_text()))
    assert len(looks[390].probe["verdicts"]) == 7
    dom = looks[1400].dom
    r, g, _ = banner_colour(looks[1400].shot)
    assert g > r, "the banner of a conformant image is not green"
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))
    assert "Conformant on 1.1-2.5." in text and "No rule was broken." in text
    assert "declared tasks detection: training, mining and infer" in text
    assert "exit 0" in text and "✗" not in text
    assert (reports / "badge.svg").read_text().count("conformant") >= 2
