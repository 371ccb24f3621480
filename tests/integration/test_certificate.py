"""The certificate as a person sees it: real sessions rendered by headless Chromium (scripts/ensure-chromium),
the screenshot not blank, the verdict and the rule ids in the rendered DOM, nothing external, and the badges."""
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


def render(exe: str, page: Path, shot: Path) -> str:
    """Screenshot ``page`` to ``shot`` and return the rendered DOM."""
    base = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
            f"--user-data-dir={shot.parent / 'chromium-profile'}"]
    subprocess.run([*base, f"--screenshot={shot}", "--window-size=1400,3000", page.as_uri()], capture_output=True,
                   timeout=120, check=True)
    dom = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True)
    return dom.stdout


def assert_not_blank(shot: Path) -> None:
    img = Image.open(shot).convert("RGB")
    assert img.size == (1400, 3000)
    small = img.resize((350, 750))
    colours = small.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, f"{len(colours)} distinct colours: the page looks blank"
    non_white = sum(n for n, c in colours if min(c) < 235)
    assert non_white > 0.05 * 350 * 750, f"only {non_white} non-white pixels"
    # the banner's colour at the top: red for a failure, green for a pass (checked by the callers' expectations)


def assert_self_contained(page: str) -> None:
    assert "<script" not in page.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page, re.I), "an external resource"
    assert not re.search(r"url\((?!#)", page), "a CSS url() other than an in-document reference"


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
    dom = render(exe, page, tmp_path / "broken.png")
    assert_not_blank(tmp_path / "broken.png")
    r, g, _ = banner_colour(tmp_path / "broken.png")
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
    data = json.loads((reports / "report.json").read_text())
    assert data["command"][0] == "pytest" and "--ymir-tasks=training" in data["command"]
    assert "--ymir-tasks=training" in text and "seed 0" in text
    badge = (reports / "badge.svg").read_text()
    assert "YMIR 2.5" in badge and "not conformant" in badge and "#e05d44" in badge
    assert "<svg" in dom and "progress of run det-voc" in dom


def test_the_certificate_of_the_reference_image(tmp_path: Path, fixture_image: Any) -> None:
    exe = chromium()
    proc, reports = certify(tmp_path, fixture_image("reference-det"))
    assert proc.returncode == 0, proc.stdout[-3000:]
    page = reports / "certificate.html"
    assert_self_contained(page.read_text())
    dom = render(exe, page, tmp_path / "reference.png")
    assert_not_blank(tmp_path / "reference.png")
    r, g, _ = banner_colour(tmp_path / "reference.png")
    assert g > r, "the banner of a conformant image is not green"
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))
    assert "Conformant on 2.5." in text and "No rule was broken." in text
    assert "declared tasks detection: training, mining and infer" in text
    assert "exit 0" in text and "✗" not in text
    assert (reports / "badge.svg").read_text().count("conformant") >= 2
