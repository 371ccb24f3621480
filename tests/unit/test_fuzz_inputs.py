"""The fuzzer's inputs without Docker: strategies draw only what the platform can send, rendering is
deterministic, a recipe rebuilds /in byte for byte, and the failure's words."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from PIL import Image

from ymir_conformance.errors import SettingsError
from ymir_conformance.fuzz import render
from ymir_conformance.fuzz.case import CANDIDATES, TRAINING, FuzzBox, FuzzCase, FuzzImage, classify, coverage
from ymir_conformance.fuzz.search import crash_line
from ymir_conformance.fuzz.strategies import FORMATS, MAX_PIXELS, MAX_SIDE, candidate_cases, training_cases
from ymir_conformance.model import ObjectType
from ymir_conformance.onramp import stub_model
from ymir_conformance.options import parse_count

FAST = settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
PIL_FORMAT = {"jpg": "JPEG", "png": "PNG", "bmp": "BMP"}
TEMPLATES = {"training": {"epochs": 1}, "mining": {"topk": 2}, "infer": {"conf_threshold": 0.3}}


def _sendable(case: FuzzCase) -> None:
    """What docs/fuzz-inputs.md says the platform stores and exports."""
    for img in case.all_images:
        assert img.fmt in FORMATS[img.mode]
        assert 1 <= img.width <= MAX_SIDE and 1 <= img.height <= MAX_SIDE and img.width * img.height <= MAX_PIXELS
        assert img.orientation == 0 or (img.fmt == "jpg" and 1 <= img.orientation <= 8)
        for b in img.boxes:
            assert b.w >= 1 and b.h >= 1 and 0 <= b.x < img.width and 0 <= b.y < img.height  # the importer drops w<=0
            assert 0 <= b.cls < max(1, len(case.class_names))
    for name in case.class_names:
        assert name and name == name.strip().lower() and not set(name) & set(",\t\r\n")
    assert len(set(case.class_names)) == len(case.class_names)


@FAST
@given(candidate_cases(("person", "cat", "dog")))
def test_candidate_cases_are_sendable_and_round_trip(case: FuzzCase) -> None:
    _sendable(case)
    assert 1 <= len(case.images) and not case.val
    assert FuzzCase.from_json(json.loads(json.dumps(case.to_json()))) == case


@FAST
@given(training_cases())
def test_training_cases_are_sendable_and_hold_something_to_learn(case: FuzzCase) -> None:
    _sendable(case)
    assert case.images[0].boxes and 16 <= case.images[0].width <= 320
    assert FuzzCase.from_json(json.loads(json.dumps(case.to_json()))) == case


@pytest.mark.parametrize(("mode", "fmt"), [(m, f) for m, fs in FORMATS.items() for f in fs])
def test_each_mode_is_stored_as_drawn(mode: str, fmt: str) -> None:
    img = FuzzImage(mode, fmt, 7, 5, orientation=6 if fmt == "jpg" else 0, progressive=fmt == "jpg",
                    boxes=(FuzzBox(0, 1, 1, 3, 3),))
    data = render.encode(img, ("a",))
    assert data == render.encode(img, ("a",))  # deterministic
    with Image.open(io.BytesIO(data)) as opened:
        assert (opened.mode, opened.format, opened.size) == (mode, PIL_FORMAT[fmt], (7, 5))
        assert opened.getexif().get(render.EXIF_ORIENTATION) == (6 if fmt == "jpg" else None)
    sc = render.scene(img, ("a",), "x." + fmt, ObjectType.DETECTION)
    assert sc.channels == len(mode.replace(";16", "")) if mode != "P" else sc.channels == 1


def test_box_kinds_are_named_by_their_geometry() -> None:
    assert classify(0, 0, 10, 8, 10, 8) == "full"
    assert classify(5, 2, 6, 3, 10, 8) == "across"
    assert classify(4, 6, 2, 2, 10, 8) == "touching"
    assert classify(3, 3, 1, 1, 10, 8) == "tiny"
    assert classify(3, 3, 1, 4, 10, 8) == "degenerate"
    assert classify(3, 3, 2, 2, 10, 8, overlaps=True) == "overlapping"


def _recipe(case: FuzzCase, model: Path | None) -> dict[str, Any]:
    r: dict[str, Any] = {"version": render.RECIPE_VERSION, "image": "my/executor:1", "object_type": 2,
                         "release": "2.5", "export_format": "det-voc:raw", "templates": TEMPLATES, "gpu_ids": [],
                         "seed": 3, "case": case.to_json()}
    if case.search == CANDIDATES:
        r.update(kind="mining+infer", tasks=["infer", "mining"], label="fuzz-candidates", stage="stub",
                 model=str(model))
    else:
        r.update(kind="training", tasks=["training"], label="fuzz-training")
    return json.loads(json.dumps(r))


@pytest.mark.parametrize("search", [CANDIDATES, TRAINING])
def test_a_recipe_rebuilds_in_byte_for_byte_elsewhere(tmp_path: Path, search: str) -> None:
    stub_model(tmp_path / "model", ObjectType.DETECTION)
    imgs = (FuzzImage("L", "png", 16, 16, boxes=(FuzzBox(1, 0, 0, 16, 16, "full"),)),
            FuzzImage("CMYK", "jpg", 1, 1, orientation=8, progressive=True),
            FuzzImage("I;16", "png", 40, 3, boxes=(FuzzBox(2, 30, 1, 20, 9, "across"),)))
    case = FuzzCase(search, ("person", "cat", "dog") if search == CANDIDATES else ("行人", "x" * 64, "cat"),
                    imgs, imgs[:1] if search == TRAINING else ())
    a = render.build_workspace(tmp_path / "a", _recipe(case, tmp_path / "model"))
    b = render.build_workspace(tmp_path / "deeper" / "b", _recipe(case, tmp_path / "model"))
    assert render.in_digest(a.in_dir) == render.in_digest(b.in_dir)
    other = FuzzCase(search, case.class_names, imgs[:2], case.val)
    c = render.build_workspace(tmp_path / "c", _recipe(other, tmp_path / "model"))
    assert render.in_digest(c.in_dir) != render.in_digest(a.in_dir)


def test_the_workspace_command_rebuilds_a_kept_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ymir_conformance.__main__ import main

    stub_model(tmp_path / "kept" / "model", ObjectType.DETECTION)
    case = FuzzCase(CANDIDATES, ("person", "cat", "dog"), (FuzzImage("LA", "png", 1, 1),))
    recipe = {**_recipe(case, None), "model": "model"}
    (tmp_path / "kept" / "case.json").write_text(json.dumps(recipe))
    original = render.build_workspace(tmp_path / "original", {**recipe, "model": str(tmp_path / "kept" / "model")})
    assert main(["workspace", str(tmp_path / "again"), "--fuzz-case", str(tmp_path / "kept" / "case.json")]) == 0
    out = capsys.readouterr().out
    assert "1 candidate image, mode LA, PNG, 1\u00d71 px" in out and "docker run" in out and "my/executor:1" in out
    assert f"/in digest {render.in_digest(original.in_dir)}" in out


def test_words_and_coverage() -> None:
    case = FuzzCase(CANDIDATES, ("a",), (FuzzImage("L", "png", 1, 1),))
    assert case.describe() == "1 candidate image, mode L, PNG, 1\u00d71 px"
    cov = coverage([case, FuzzCase(CANDIDATES, ("a",), (FuzzImage("RGB", "jpg", 8000, 500, orientation=6),))])
    assert cov["modes"] == {"L": 1, "RGB": 1} and cov["orientations"] == [6] and cov["one_pixel_images"] == 1
    assert cov["largest"] == (8000, 500) and cov["smallest"] == (1, 1)


def test_crash_line_picks_the_decisive_exception() -> None:
    tail = ["Traceback (most recent call last):", '  File "x.py", line 3, in f',
            "ValueError: axes don't match array", "ymir_ref: task failed: [160004] ValueError: axes don't match array"]
    assert crash_line(tail) == "ValueError: axes don't match array"
    assert crash_line(["just a line"]) == "just a line"
    assert crash_line([]) == "(no log)"


@pytest.mark.parametrize(("value", "expected"), [(None, 0), ("", 0), ("40", 40), (" 0 ", 0)])
def test_fuzz_counts(value: str | None, expected: int) -> None:
    assert parse_count(value, "--ymir-fuzz", "candidate inputs") == expected


@pytest.mark.parametrize("value", ["-1", "x", "1.5", "100001"])
def test_bad_fuzz_counts_are_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="--ymir-fuzz"):
        parse_count(value, "--ymir-fuzz", "candidate inputs")
