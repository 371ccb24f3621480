"""The /in layout per release: index files, container paths, no-annotation mode, 1.1, candidates."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import xml.etree.ElementTree as ET

import pytest

from ymir_conformance.datasets import (
    EDGE_CLASS_NAMES,
    Scene,
    export_candidates,
    export_training_set,
    generate_scenes,
)
from ymir_conformance.model import ObjectType
from ymir_conformance.platform import Release

HostPath = Callable[[Path, str], Path]
# The nine 2.x index files, spelled out from the contract rather than taken from export.INDEX_FILES_2X.
INDEX_2X = {f"{pred}{split}-index.tsv" for pred in ("", "pred-") for split in ("train", "val", "test")} | {
    f"idx-{kind}.tsv" for kind in ("assets", "gt", "pred")
}


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("export_format", ["none:raw", "yolo:raw", "coco:raw"])
def test_no_annotations_leaves_split_indexes_empty(
    tmp_path: Path, det_scenes: list[Scene], class_names: tuple[str, ...], export_format: str
) -> None:
    summary = export_training_set(
        tmp_path, train=det_scenes[:5], val=det_scenes[5:], class_names=class_names,
        export_format=export_format, release=Release(2, 4),  # coco is unknown before 2.5
    )
    assert summary.annotation_format is None and summary.objects == 0
    assert {p.name for p in tmp_path.glob("*.tsv")} == INDEX_2X
    for name in INDEX_2X - {"idx-assets.tsv"}:
        assert (tmp_path / name).read_text() == "", name
    assert _lines(tmp_path / "idx-assets.tsv") == [f"/in/assets/{s.asset_relpath}" for s in det_scenes]
    assert not any((tmp_path / "annotations").iterdir())
    assert summary.images == {"train": 5, "val": len(det_scenes) - 5, "test": 0}


def test_empty_export_format_is_voc(tmp_path: Path, det_scenes: list[Scene], class_names: tuple[str, ...]) -> None:
    summary = export_training_set(tmp_path, train=det_scenes[:2], val=[], class_names=class_names, export_format="")
    assert summary.annotation_format == "voc"
    assert all(line.endswith(".xml") for line in _lines(tmp_path / "train-index.tsv"))
    assert (tmp_path / "val-index.tsv").read_text() == ""


def test_invalid_export_format_writes_nothing(
    tmp_path: Path, det_scenes: list[Scene], class_names: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError):
        export_training_set(tmp_path / "in", train=det_scenes, val=[], class_names=class_names, export_format="voc")
    assert not (tmp_path / "in").exists()


def test_release_1_1_layout(
    tmp_path: Path, det_scenes: list[Scene], class_names: tuple[str, ...], host_path: HostPath
) -> None:
    summary = export_training_set(
        tmp_path, train=det_scenes[:8], val=det_scenes[8:], class_names=class_names,
        export_format="coco:raw", release=Release(1, 1),
    )
    assert summary.annotation_format == "ark"
    assert {p.name for p in tmp_path.glob("*.tsv")} == {"train-index.tsv", "val-index.tsv"}
    assert not (tmp_path / "predictions").exists()
    pil_ext = {"jpg": "jpeg", "png": "png"}
    listed = 0
    for split, scenes in (("train", det_scenes[:8]), ("val", det_scenes[8:])):
        indexed = [s for s in scenes if s.ext in pil_ext]
        lines = _lines(tmp_path / f"{split}-index.tsv")
        assert len(lines) == len(indexed)
        for line, scene in zip(lines, indexed):
            asset, anno = line.split("\t")
            xx = scene.sha1[-2:]
            assert asset == f"/in/assets/./{xx}/{scene.sha1}.{pil_ext[scene.ext]}"
            assert anno == f"/in/annotations/./{xx}/{scene.sha1}.txt"
            assert host_path(tmp_path, asset).read_bytes() == scene.image_bytes
            for row in host_path(tmp_path, anno).read_text().splitlines():
                assert len(row.split(", ")) == 5
            listed += 1
    bmps = [s for s in det_scenes if s.ext == "bmp"]
    assert bmps and summary.unindexed == len(bmps) and summary.total_images == listed
    with pytest.raises(ValueError, match="1.1"):
        export_training_set(
            tmp_path / "t", train=[], val=[], test=det_scenes[:1], class_names=class_names,
            export_format="", release=Release(1, 1),
        )


def test_duplicates_are_exported_once(tmp_path: Path, det_scenes: list[Scene], class_names: tuple[str, ...]) -> None:
    summary = export_training_set(
        tmp_path, train=det_scenes[:3], val=det_scenes[2:4], class_names=class_names, export_format="ark:raw"
    )
    assert summary.duplicates_skipped == 1
    assert summary.images == {"train": 3, "val": 1, "test": 0}
    assert summary.split_of[det_scenes[2].sha1] == "train"


def test_splits_may_be_generators(tmp_path: Path, class_names: tuple[str, ...]) -> None:
    summary = export_training_set(
        tmp_path,
        train=generate_scenes(1, 5, ObjectType.DETECTION, class_names),
        val=generate_scenes(2, 3, ObjectType.DETECTION, class_names),
        class_names=class_names,
        export_format="det-voc:raw",
    )
    assert summary.images == {"train": 5, "val": 3, "test": 0}
    assert summary.files_written == 8 + 8 + 8 + len(INDEX_2X)  # assets, annotations, predictions (no objects)


def test_edge_cases_export_with_unknown_ext(
    tmp_path: Path, edge_det_scenes: list[Scene], host_path: HostPath
) -> None:
    export_training_set(
        tmp_path, train=edge_det_scenes, val=[], class_names=EDGE_CLASS_NAMES, export_format="det-voc:raw"
    )
    unknown = next(s for s in edge_det_scenes if s.ext == "unknown")
    assets = _lines(tmp_path / "idx-assets.tsv")
    names: list[str] = []
    assert f"/in/assets/{unknown.sha1[-2:]}/{unknown.sha1}.unknown" in assets
    for line in _lines(tmp_path / "train-index.tsv"):
        asset, anno = line.split("\t")
        assert host_path(tmp_path, asset).is_file() and host_path(tmp_path, anno).is_file()
        root = ET.fromstring(host_path(tmp_path, anno).read_text(encoding="utf-8"))
        names.extend(node.text or "" for node in root.iter("name"))
    assert set(names) == set(EDGE_CLASS_NAMES)


def test_candidates_dataset_form(tmp_path: Path, det_scenes: list[Scene], host_path: HostPath) -> None:
    paths = export_candidates(tmp_path, det_scenes + det_scenes[:2])
    assert paths == [f"/in/assets/{s.asset_relpath}" for s in det_scenes]
    assert _lines(tmp_path / "candidate-index.tsv") == paths
    assert "\t" not in (tmp_path / "candidate-index.tsv").read_text()
    for path, scene in zip(paths, det_scenes):
        assert host_path(tmp_path, path).read_bytes() == scene.image_bytes


def test_candidates_single_image_infer_form(tmp_path: Path, det_scenes: list[Scene], host_path: HostPath) -> None:
    paths = export_candidates(tmp_path, det_scenes[:3], flat_names=True)
    assert paths == [f"/in/assets/{s.name}" for s in det_scenes[:3]]
    assert (tmp_path / "assets" / det_scenes[0].name).read_bytes() == det_scenes[0].image_bytes
    with pytest.raises(ValueError, match="duplicate"):
        export_candidates(tmp_path / "dup", [det_scenes[0], det_scenes[0]], flat_names=True)


def test_candidates_release_1_1(tmp_path: Path, det_scenes: list[Scene]) -> None:
    paths = export_candidates(tmp_path, det_scenes[:1], release=Release(1, 1))
    # 1.1's infer._prepare_assets builds candidate paths with os.path.relpath: no "./" (only its training indexes
    # keep it; tests/differential compares this with ymir-cmd 1.1.0 itself)
    assert paths[0].startswith("/in/assets/") and "/./" not in paths[0]
