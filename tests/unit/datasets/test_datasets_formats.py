"""export_format parsing (contract §4) and the formats offered per object type and release."""
from __future__ import annotations

import pytest

from ymir_conformance.datasets import formats_for, parse_export_format
from ymir_conformance.model import ObjectType
from ymir_conformance.platform import RELEASES, Release

R = Release.parse

PARSE_TABLE = [
    # value, release, expected
    (None, "2.5", ("voc", "raw")),
    ("", "2.5", ("voc", "raw")),
    ("", "2.0", ("voc", "raw")),
    ("ark:raw", "2.5", ("ark", "raw")),
    ("det-ark:raw", "2.0", ("det-ark", "raw")),
    ("DET-VOC:raw", "2.3", ("det-voc", "raw")),
    ("voc:RAW", "2.5", ("voc", "raw")),
    ("ls_json:raw", "2.4", ("ls_json", "raw")),
    ("det-ls-json:raw", "2.0", ("det-ls-json", "raw")),
    ("ls_json:raw", "2.5", (None, "raw")),
    ("det-ls-json:raw", "2.5", (None, "raw")),
    ("seg-coco:raw", "2.0", (None, "raw")),
    ("seg-coco:raw", "2.1", ("seg-coco", "raw")),
    ("seg-coco:raw", "2.5", ("seg-coco", "raw")),
    ("coco:raw", "2.4", (None, "raw")),
    ("coco:raw", "2.5", ("coco", "raw")),
    ("seg-mask:raw", "2.0", ("seg-mask", "raw")),
    ("seg-mask:raw", "2.1", (None, "raw")),
    ("seg-poly:raw", "2.0", ("seg-poly", "raw")),
    ("none:raw", "2.5", (None, "raw")),
    ("none:raw", "2.2", (None, "raw")),
    ("yolo:raw", "2.5", (None, "raw")),
    (" ark:raw", "2.5", (None, "raw")),  # not stripped: an unknown name
    ("ark:raw", "1.1", ("ark", "raw")),  # 1.x ignores export_format
    ("coco:lmdb", "1.1", ("ark", "raw")),
    ("nonsense", "1.1", ("ark", "raw")),
]


@pytest.mark.parametrize(("value", "release", "expected"), PARSE_TABLE)
def test_parse_export_format_table(value: str | None, release: str, expected: tuple[str | None, str]) -> None:
    assert parse_export_format(value, R(release)) == expected


@pytest.mark.parametrize("value", ["ark", "ark:raw:x", "::", "ark;raw", "voc:lmdb", "voc:zip", "voc:"])
def test_parse_export_format_rejects_what_the_platform_fails_on(value: str) -> None:
    with pytest.raises(ValueError, match="export_format"):
        parse_export_format(value, R("2.5"))


def test_parse_export_format_defaults_to_latest() -> None:
    assert parse_export_format("coco:raw") == ("coco", "raw")


FORMATS_TABLE = [
    (ObjectType.DETECTION, "2.5", ["det-ark", "det-voc", "coco"]),
    (ObjectType.DETECTION, "2.4", ["det-ark", "det-voc", "det-ls-json"]),
    (ObjectType.DETECTION, "2.0", ["det-ark", "det-voc", "det-ls-json"]),
    (ObjectType.DETECTION, "1.1", ["det-ark"]),
    (ObjectType.INSTANCE_SEGMENTATION, "2.5", ["seg-coco", "coco"]),
    (ObjectType.INSTANCE_SEGMENTATION, "2.1", ["seg-coco"]),
    (ObjectType.INSTANCE_SEGMENTATION, "2.0", []),
    (ObjectType.SEMANTIC_SEGMENTATION, "2.3", ["seg-coco"]),
    (ObjectType.SEMANTIC_SEGMENTATION, "2.0", ["seg-mask"]),
    (ObjectType.SEMANTIC_SEGMENTATION, "1.1", []),
    (ObjectType.MULTI_MODAL, "2.5", ["coco"]),
]


@pytest.mark.parametrize(("object_type", "release", "expected"), FORMATS_TABLE)
def test_formats_for(object_type: ObjectType, release: str, expected: list[str]) -> None:
    assert formats_for(object_type, R(release)) == expected


@pytest.mark.parametrize("release", RELEASES, ids=str)
@pytest.mark.parametrize("object_type", list(ObjectType), ids=lambda t: t.short)
def test_every_offered_format_gives_annotations(object_type: ObjectType, release: Release) -> None:
    for name in formats_for(object_type, release):
        assert parse_export_format(f"{name}:raw", release)[0] is not None
